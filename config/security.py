"""Content Security Policy for the console; API responses (JSON, and DRF's browsable HTML with its inline
handlers) and the API documentation pages get the looser policy their third-party pages need."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.utils.csp import CSP

# Swagger UI and ReDoc (from drf-spectacular-sidecar) and the browsable API set inline styles and handlers.
DOCS_POLICY = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "worker-src": [CSP.SELF, "blob:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}
LOOSE_PREFIXES = ("/api/", "/docs", "/redoc")


class ConsoleContentSecurityPolicyMiddleware(ContentSecurityPolicyMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if request.path.startswith(LOOSE_PREFIXES) and not hasattr(response, "_csp_config"):
            response._csp_config = DOCS_POLICY
        return super().process_response(request, response)
