"""Shared API pieces: the one exception handler, the error body, and the schema's path filter."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from django.urls import URLPattern, path
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import DomainError, InvalidInput


class ErrorSerializer(serializers.Serializer):
    """Every error: a sentence that says what to fix and a stable code. 400s add the failing fields,
    each a list of messages, beside these two keys."""

    detail = serializers.CharField()
    code = serializers.CharField()


ERRORS = {
    400: ErrorSerializer,
    401: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
    409: ErrorSerializer,
    413: ErrorSerializer,
}
THROTTLED_ERRORS = {**ERRORS, 429: ErrorSerializer}


def _flatten(errors: Any, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        return [m for key, value in errors.items() for m in _flatten(value, f"{prefix}{key}.")]
    if isinstance(errors, list):
        return [m for value in errors for m in _flatten(value, prefix)]
    field = prefix.rstrip(".")
    return [f"{field}: {errors}" if field and field != "non_field_errors" else str(errors)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        detail = f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        return Response({"detail": detail, "code": "too_large"}, status=413)
    if isinstance(exc, OverflowError):  # a number beyond what the database stores
        return Response({"detail": "A number in the request is too large.", "code": "invalid"}, status=400)
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body[exc.field] = [exc.message]
        return Response(body, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        messages = _flatten(fields)
        response.data = {"detail": "; ".join(messages) or "Invalid input.", "code": "invalid", **fields}
        response.status_code = status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = {"detail": str(exc.detail), "code": code}
    return response


def json_object(request: Any) -> dict[str, Any]:
    """The request body, which every write endpoint takes as one JSON object."""
    if not isinstance(request.data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return request.data


def reject_nulls(body: dict[str, Any], *fields: str) -> None:
    """A field that is sent must have a value: null is not "leave unchanged"."""
    for field in fields:
        if field in body and body[field] is None:
            raise InvalidInput(f"{field} cannot be null; leave it out to keep it as it is.", field=field)


def both_slashes(route: str, view: Any, name: str) -> list[URLPattern]:
    """Serve `route/` and `route` alike (no redirect, so POSTs keep their bodies)."""
    return [path(f"{route}/", view, name=name), path(route, view, name=f"{name}-noslash")]


def only_canonical_paths(
    endpoints: list[tuple[str, str, str, Any]], **kwargs: Any
) -> list[tuple[str, str, str, Any]]:
    """Document each endpoint once, in its trailing-slash form."""
    return [endpoint for endpoint in endpoints if endpoint[0].endswith("/")]


class WriteRateThrottle(ScopedRateThrottle):
    """Rate-limits the writes of a view (its `throttle_scope`), per user; reads are never throttled."""

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return super().allow_request(request, view)


def api_not_found(request: Any, exception: Exception | None = None) -> Any:
    """404 for any unknown URL: JSON under /api/, the usual page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"No endpoint at {request.path}.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)


def api_server_error(request: Any) -> Any:
    from django.http import JsonResponse
    from django.views.defaults import server_error

    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "Internal error; it has been logged.", "code": "server_error"}, status=500
        )
    return server_error(request)
