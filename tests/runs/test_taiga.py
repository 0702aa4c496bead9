"""Taiga comments for a run's status changes, against a fake Taiga API over real HTTP."""

from __future__ import annotations

import pytest
from django_q.models import OrmQ
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from events.models import EventType
from runs import lifecycle, taiga
from runs.lifecycle import Action
from runs.models import Run


@pytest.fixture
def taiga_server(settings, project):
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    settings.TAIGA_URL = server.url_for("/").rstrip("/")
    settings.TAIGA_TOKEN = "taiga-secret"
    project.taiga_project = "demo"
    project.save()
    server.comments = []

    def patch_story(request: Request) -> Response:
        assert request.headers["Authorization"] == "Bearer taiga-secret"
        server.comments.append(request.get_json())
        return Response('{"id": 55, "version": 5}', content_type="application/json")

    server.expect_request("/api/v1/projects/by_slug", query_string="slug=demo").respond_with_json({"id": 3})
    server.expect_request("/api/v1/resolver", query_string="project=demo&ref=12").respond_with_json(
        {"project": 3, "us": 55}
    )
    server.expect_request("/api/v1/userstories/55", method="GET").respond_with_json({"id": 55, "version": 4})
    server.expect_request("/api/v1/userstories/55", method="PATCH").respond_with_handler(patch_story)
    yield server
    server.clear()
    server.stop()


@pytest.mark.django_db
def test_it_comments_status_changes_on_the_referenced_story(taiga_server, make_run):
    run = make_run(metadata={"taiga_ref": "#12"})
    taiga.report(run.pk, EventType.RUN_STOPPED)
    assert taiga_server.comments == [
        {"comment": f"Agent Runner run #{run.pk} ({run.name}) stopped.", "version": 4}
    ]
    assert Run.objects.get(pk=run.pk).taiga_item == {"kind": "us", "id": 55, "ref": "12"}


@pytest.mark.django_db
def test_it_creates_a_task_when_asked(taiga_server, make_run):
    created = []

    def create(request: Request) -> Response:
        created.append(request.get_json())
        return Response('{"id": 90, "ref": 31}', status=201, content_type="application/json")

    taiga_server.expect_request("/api/v1/tasks", method="POST").respond_with_handler(create)
    taiga_server.expect_request("/api/v1/tasks/90", method="GET").respond_with_json({"id": 90, "version": 1})
    taiga_server.expect_request("/api/v1/tasks/90", method="PATCH").respond_with_json(
        {"id": 90, "version": 2}
    )
    run = make_run(options={"taiga_create": True})
    taiga.report(run.pk, EventType.RUN_COMPLETED, "Changes await review.")
    assert created[0]["project"] == 3 and created[0]["subject"] == run.name
    assert Run.objects.get(pk=run.pk).taiga_item["id"] == 90


@pytest.mark.django_db
def test_it_records_an_integration_error_when_taiga_is_down(settings, project, make_run):
    settings.TAIGA_URL = "http://127.0.0.1:9"
    settings.TAIGA_TOKEN = "taiga-secret"
    project.taiga_project = "demo"
    project.save()
    run = make_run(metadata={"taiga_ref": 12})
    taiga.report(run.pk, EventType.RUN_FAILED)
    error = run.events.get(type=EventType.INTEGRATION_ERROR)
    assert error.payload["service"] == "taiga" and "did not answer" in error.payload["error"]
    assert Run.objects.get(pk=run.pk).status == "QUEUED", "Taiga failing never fails the run"


@pytest.mark.django_db
def test_it_queues_a_report_after_each_status_change(
    taiga_server, make_run, django_capture_on_commit_callbacks
):
    run = make_run(metadata={"taiga_ref": 12})
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        lifecycle.apply_action(run.pk, Action.PAUSE, actor="alice")
    assert len(callbacks) == 1
    assert OrmQ.objects.count() == 1


@pytest.mark.django_db
def test_it_stays_quiet_when_taiga_is_not_configured(settings, make_run, django_capture_on_commit_callbacks):
    settings.TAIGA_URL = ""
    run = make_run(metadata={"taiga_ref": 12})
    with django_capture_on_commit_callbacks() as callbacks:
        lifecycle.apply_action(run.pk, Action.PAUSE, actor="alice")
    assert callbacks == []
