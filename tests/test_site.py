"""Site-wide contract: health, auth on every endpoint, CSRF, schema and docs served offline."""

from __future__ import annotations

import re

import pytest
from django.db import DatabaseError
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

OPEN = {"api/auth/token/", "api/auth/token"}


def api_routes() -> list[str]:
    """Every /api/ route of the URL configuration, with sample ids filled in."""
    routes: list[str] = []

    def walk(patterns, prefix: str = "") -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/"):
                routes.append(re.sub(r"<(?:int|id):\w+>", "1", route))

    walk(get_resolver().url_patterns)
    return routes


def test_it_finds_the_api_routes():
    routes = api_routes()
    assert "api/runs/1/pause/" in routes and "api/worker/process/" in routes and len(routes) > 20


@pytest.mark.django_db
@pytest.mark.parametrize("route", [r for r in api_routes() if r not in OPEN])
def test_it_requires_credentials_everywhere(anon, route):
    for method in ("get", "post"):
        response = getattr(anon, method)(f"/{route}")
        assert response.status_code in (401, 405), (method, route, response.status_code)
        if response.status_code == 401 and "json" in response["Content-Type"]:
            assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_it_reports_health_without_login(anon):
    response = anon.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_it_reports_a_database_outage(anon, monkeypatch):
    from django.db.backends.utils import CursorWrapper

    def broken(*args, **kwargs):
        raise DatabaseError("gone")

    monkeypatch.setattr(CursorWrapper, "execute", broken)
    response = anon.get("/health/")
    assert response.status_code == 503 and response.json()["status"] == "error"


@pytest.mark.django_db
def test_it_exchanges_credentials_for_a_token(anon, alice):
    response = anon.post(
        "/api/auth/token/", {"username": "alice", "password": "alice-password-1"}, format="json"
    )
    assert response.status_code == 200 and set(response.json()) == {"token"}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/runs/").status_code == 200
    bad = anon.post("/api/auth/token/", {"username": "alice", "password": "wrong"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"


@pytest.mark.django_db
def test_it_answers_as_drf_for_bad_tokens_and_inactive_users(anon, alice, bob):
    from rest_framework.authtoken.models import Token

    key = Token.objects.create(user=bob).key
    bob.is_active = False
    bob.save()
    for header, detail in [
        (f"Token {key}", "User inactive or deleted."),
        ("Token not-a-token", "Invalid token."),
        ("Token", "Invalid token header. No credentials provided."),
        ("Token a b", "Invalid token header. Token string should not contain spaces."),
    ]:
        response = anon.get("/api/runs/", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401 and response["WWW-Authenticate"] == "Token", header
        assert response.json() == {"detail": detail, "code": "authentication_failed"}, header
    token = Token.objects.create(user=alice)
    request = APIClient().get("/api/runs/", HTTP_AUTHORIZATION=f"Token {token.key}").wsgi_request
    assert request.user == alice and request.auth == token and request.auth.created == token.created


@pytest.mark.django_db
def test_it_enforces_csrf_for_sessions(alice, project):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password="alice-password-1")
    assert client.get("/api/runs/").status_code == 200
    response = client.post("/api/runs/", {"project_id": project.pk, "goal": "x"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


@pytest.mark.django_db
def test_it_serves_the_schema_and_the_docs_offline(client, api, alice):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["openapi"].startswith("3.")
    for path in ("/api/runs/", "/api/runs/{run_id}/pause/", "/api/runs/{run_id}/events/", "/api/projects/"):
        assert path in schema["paths"]
    create = schema["paths"]["/api/runs/"]["post"]["responses"]
    assert {"201", "400", "401"} <= set(create)
    assert "409" in schema["paths"]["/api/runs/{run_id}/stop/"]["post"]["responses"]
    for page in ("/docs", "/redoc"):
        anonymous = client.get(page)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    client.login(username="alice", password="alice-password-1")
    for page in ("/docs", "/redoc"):
        html = client.get(page).content.decode()
        assert "cdn." not in html and "unpkg" not in html and "/static/drf_spectacular_sidecar/" in html


@pytest.mark.django_db
def test_it_serves_the_browsable_api_to_a_logged_in_user(client, alice):
    client.login(username="alice", password="alice-password-1")
    response = client.get("/api/runs/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and b"<html" in response.content


@pytest.mark.django_db
def test_it_reports_worker_status_and_sweeps_on_demand(api, make_run):
    make_run()
    status = api.get("/api/worker/status/").json()
    assert set(status) == {"alive", "clusters", "queued", "running", "paused"}
    assert status["queued"] == 1 and status["alive"] is False
    swept = api.post("/api/worker/process/").json()
    assert set(swept) == {"recovered", "failed", "enqueued", "scheduled", "swept_at"}


@pytest.mark.django_db
def test_it_sends_a_strict_content_security_policy_on_console_pages(client, alice):
    client.login(username="alice", password="alice-password-1")
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-inline" in client.get("/docs")["Content-Security-Policy"], "Swagger UI needs inline styles"


def test_it_passes_the_deployment_checks_with_production_settings():
    import os
    import secrets
    import subprocess
    import sys

    from tests.conftest import BASE_DIR

    env = {
        **os.environ,
        "DJANGO_SECURE": "true",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_ALLOWED_HOSTS": "runner.example.com",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set for the browser tests only
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
