"""Approve as a Forgejo pull request: push to a real bare repository, call a fake Forgejo API over HTTP."""

from __future__ import annotations

import json
import subprocess

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from config.errors import Conflict, InvalidInput
from events.models import Event, EventType
from runs import review
from runs.models import ReviewState, Run
from tests.runs.test_review import git


@pytest.fixture
def forgejo(settings, tmp_path):
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    settings.FORGEJO_URL = server.url_for("/").rstrip("/")
    settings.FORGEJO_TOKEN = "forgejo-secret-token"
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    server.remote = remote
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def pending(finished_run):
    run = finished_run()
    project = run.project
    project.forgejo_repo = "acme/demo"
    project.repo_url = ""
    project.save()
    return Run.objects.select_related("project").get(pk=run.pk)


def pulls_handler(seen: list):
    def handle(request: Request) -> Response:
        seen.append({"headers": dict(request.headers), "body": request.get_json()})
        body = request.get_json()
        assert set(body) >= {"title", "head", "base", "body"}
        payload = {"number": 7, "html_url": "http://forgejo.test/acme/demo/pulls/7", "state": "open"}
        return Response(json.dumps(payload), status=201, content_type="application/json")

    return handle


@pytest.mark.django_db
def test_it_pushes_the_branch_and_opens_a_pull_request(forgejo, pending, alice):
    pending.project.repo_url = str(forgejo.remote)
    pending.project.save()
    seen: list = []
    forgejo.expect_request("/api/v1/repos/acme/demo/pulls", method="POST").respond_with_handler(
        pulls_handler(seen)
    )
    approved = review.approve(pending.pk, user=alice, comment="please merge", strategy="pull_request")
    assert approved.review_state == ReviewState.APPROVED
    assert (
        approved.pull_request_url == "http://forgejo.test/acme/demo/pulls/7" and approved.merge_commit == ""
    )
    assert seen[0]["headers"]["Authorization"] == "token forgejo-secret-token"
    assert seen[0]["body"]["head"] == pending.branch and seen[0]["body"]["base"] == "main"
    pushed = git(forgejo.remote, "rev-parse", pending.branch).strip()
    assert pushed == git(pending.project.local_path, "rev-parse", pending.branch).strip()
    opened = Event.objects.get(run=pending, type=EventType.PR_OPENED)
    assert opened.payload["number"] == 7
    assert "forgejo-secret-token" not in json.dumps(list(Event.objects.filter(run=pending).values("payload")))
    with pytest.raises(Conflict, match="pull request"):
        review.rollback(pending.pk)


@pytest.mark.django_db
def test_it_reports_a_refused_pull_request_and_keeps_the_review_pending(forgejo, pending):
    pending.project.repo_url = str(forgejo.remote)
    pending.project.save()
    forgejo.expect_request("/api/v1/repos/acme/demo/pulls", method="POST").respond_with_json(
        {"message": "pull request already exists"}, status=409
    )
    with pytest.raises(Conflict, match="HTTP 409"):
        review.approve(pending.pk, strategy="pull_request")
    assert Run.objects.get(pk=pending.pk).review_state == ReviewState.PENDING


@pytest.mark.django_db
def test_it_needs_forgejo_configured(pending, settings):
    settings.FORGEJO_URL = ""
    with pytest.raises(InvalidInput, match="FORGEJO_URL"):
        review.approve(pending.pk, strategy="pull_request")
