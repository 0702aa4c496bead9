"""The review endpoints: diff, approve, reject, roll back — through HTTP."""

from __future__ import annotations

import pytest

from events.models import EventType
from runs.models import ReviewState, Run


@pytest.fixture
def pending_run(finished_run) -> Run:
    return finished_run()


@pytest.mark.django_db
def test_it_serves_the_diff(api, pending_run):
    body = api.get(f"/api/runs/{pending_run.pk}/diff/").json()
    assert body["files"] == [{"path": "hello.py", "added": 2, "deleted": 0, "binary": False}]
    assert body["base"] == pending_run.base_commit and "+def hello():" in body["diff"]
    assert [c["message"] for c in body["commits"]] == ["Write hello.py"]
    assert api.get("/api/runs/999999/diff/").status_code == 404


@pytest.mark.django_db
def test_it_approves_and_rolls_back_over_http(api, pending_run):
    response = api.post(
        f"/api/runs/{pending_run.pk}/approve/", {"comment": "ok", "strategy": "merge"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["review_state"], body["reviewed_by"], body["review_comment"]) == ("approved", "alice", "ok")
    assert len(body["merge_commit"]) == 40
    again = api.post(f"/api/runs/{pending_run.pk}/approve/", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    rolled = api.post(f"/api/runs/{pending_run.pk}/rollback/")
    assert rolled.status_code == 200 and rolled.json()["review_state"] == "rolled_back"
    assert pending_run.events.filter(type=EventType.CHANGES_ROLLED_BACK).count() == 1


@pytest.mark.django_db
def test_it_rejects_over_http(api, pending_run):
    response = api.post(f"/api/runs/{pending_run.pk}/reject", {"comment": "no"}, format="json")
    assert response.status_code == 200
    assert Run.objects.get(pk=pending_run.pk).review_state == ReviewState.REJECTED


@pytest.mark.django_db
def test_it_refuses_bad_review_input(api, pending_run):
    bad = api.post(f"/api/runs/{pending_run.pk}/approve/", {"strategy": "rebase"}, format="json")
    assert bad.status_code == 400 and "strategy" in bad.json()
    assert Run.objects.get(pk=pending_run.pk).review_state == ReviewState.PENDING
    assert api.post("/api/runs/999999/reject/").status_code == 404
