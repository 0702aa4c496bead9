"""Limits: body size, rate limits, NUL bytes and invalid UTF-8, huge command output."""

from __future__ import annotations

import resource

import pytest
from django.core.cache import cache

from events.models import Event
from projects.models import Project
from runs.agents.tools import OUTPUT_LIMIT_BYTES, Toolbox
from runs.models import Run


@pytest.mark.django_db
def test_it_refuses_a_body_over_the_limit(api, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    body = {"project_id": project.pk, "goal": "x", "metadata": {"blob": "y" * 200_000}}
    response = api.post("/api/runs/", body, format="json")
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_it_rate_limits_run_creation_and_directives(api, project, settings, make_run):
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"runs": "3/min", "directives": "2/min"},
    }
    from rest_framework.settings import api_settings
    from rest_framework.throttling import ScopedRateThrottle

    ScopedRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        codes = [
            api.post("/api/runs/", {"project_id": project.pk, "goal": "g"}, format="json").status_code
            for _ in range(4)
        ]
        assert codes == [201, 201, 201, 429]
        limited = api.post("/api/runs/", {"project_id": project.pk, "goal": "g"}, format="json").json()
        assert limited["code"] == "throttled" and "available in" in limited["detail"]
        assert api.get("/api/runs/").status_code == 200, "reads are not throttled"
        run = Run.objects.first()
        sent = [
            api.post(f"/api/runs/{run.pk}/directive/", {"text": "t"}, format="json").status_code
            for _ in range(3)
        ]
        assert sent == [201, 201, 429]
    finally:
        cache.clear()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/projects/", {"name": "a\x00b", "local_path": "/x"}, "name"),
        ("/api/runs/", {"goal": "a\x00b"}, "goal"),
        ("/api/runs/", {"goal": "g", "name": "n\x00"}, "name"),
        ("/api/runs/", {"goal": "g", "metadata": {"k\x00": "v"}}, "metadata"),
        ("/api/runs/", {"goal": "g", "options": {"note": "\x00"}}, "options"),
    ],
)
def test_it_refuses_nul_bytes_cleanly(api, project, url, body, field):
    if url == "/api/runs/":
        body = {"project_id": project.pk, **body}
    response = api.post(url, body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Run.objects.exists() and Project.objects.count() == 1


@pytest.mark.django_db
def test_it_refuses_nul_in_directives(api, make_run):
    run = make_run()
    response = api.post(f"/api/runs/{run.pk}/directive/", {"text": "a\x00b"}, format="json")
    assert (
        response.status_code == 400 and not Event.objects.filter(run=run, type="DIRECTIVE_RECEIVED").exists()
    )


@pytest.mark.django_db
def test_it_refuses_invalid_utf8(api, project):
    raw = b'{"project_id": ' + str(project.pk).encode() + b', "goal": "caf\xe9"}'
    response = api.post("/api/runs/", raw, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "parse_error"
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_it_keeps_unicode_text_intact(api, project):
    goal = "Réparer le bogue 🐛 — 修复"
    created = api.post(
        "/api/runs/", {"project_id": project.pk, "goal": goal, "options": {"agent": "simple"}}, format="json"
    )
    assert created.status_code == 201 and Run.objects.get().goal == goal


def test_it_keeps_100_mb_of_command_output_truncated_without_holding_it(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    tools = Toolbox(workspace, allowed_commands=["head"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result = tools.run_command(["head", "-c", str(100 * 1024 * 1024), "/dev/zero"])
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result["output_bytes"] == 100 * 1024 * 1024 and result["exit_code"] == 0
    assert len(result["output"].encode()) <= OUTPUT_LIMIT_BYTES + 200 and "bytes cut" in result["output"]
    assert grown_kib < 100 * 1024, f"the worker grew by {grown_kib} KiB"


@pytest.mark.django_db
def test_it_stores_nul_bytes_from_tools_and_models_as_replacement_characters(make_run):
    from events.recorder import record_event

    run = make_run()
    event = record_event(
        run.pk,
        "TOOL_CALL",
        {"output_tail": "a\x00b", "k\x00": ["\x00"]},
        changes={"checkpoint": {"m": "\x00"}},
    )
    event.refresh_from_db()
    assert event.payload == {"output_tail": "a\ufffdb", "k\ufffd": ["\ufffd"]}
    assert Run.objects.get(pk=run.pk).checkpoint == {"m": "\ufffd"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url", "body", "status"),
    [
        ("get", "/api/runs/?project=334264095860659702985872144416636928", None, 400),
        ("get", "/api/runs/99999999999999999999999/", None, 404),
        ("get", "/api/runs/1/events/?after=99999999999999999999999", None, 400),
        ("post", "/api/runs/", {"project_id": 99999999999999999999999, "goal": "g"}, 400),
        ("get", "/runs/99999999999999999999999/", None, 404),
    ],
)
def test_it_answers_huge_numbers_without_a_server_error(api, method, url, body, status):
    response = getattr(api, method)(url, body, format="json") if body else getattr(api, method)(url)
    assert response.status_code == status
