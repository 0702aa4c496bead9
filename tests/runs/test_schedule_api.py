"""Schedules and agent profiles over the API."""

from __future__ import annotations

import pytest

from runs.models import Schedule


@pytest.mark.django_db
def test_it_creates_changes_and_deletes_schedules(api, project):
    body = {"name": "nightly", "project_id": project.pk, "goal": "checks", "cron": "0 2 * * *",
            "options": {"agent": "simple"}}  # fmt: skip
    created = api.post("/api/schedules/", body, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    assert (
        data["next_run_at"]
        and data["enabled"] is True
        and created["Location"] == f"/api/schedules/{data['id']}/"
    )
    assert [s["name"] for s in api.get("/api/schedules").json()] == ["nightly"]
    changed = api.patch(f"/api/schedules/{data['id']}/", {"enabled": False}, format="json").json()
    assert changed["enabled"] is False and changed["next_run_at"] is None
    assert api.delete(f"/api/schedules/{data['id']}/").status_code == 204
    assert api.get(f"/api/schedules/{data['id']}/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "whenever"}, "cron"),
        ({"project_id": 999}, "project_id"),
        ({"goal": ""}, "goal"),
        ({"name": ""}, "name"),
        ({"options": {"agent": "nobody"}}, "options"),
        ({"run_type": "pipeline", "options": {"commands": ["rm -rf /"]}}, "options"),
        ({"enabled": None}, "enabled"),
    ],
)
def test_it_refuses_bad_schedules(api, project, body, field):
    base = {
        "name": "n",
        "project_id": project.pk,
        "goal": "g",
        "cron": "*/5 * * * *",
        "options": {"agent": "simple"},
    }
    response = api.post("/api/schedules/", {**base, **body}, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()
    assert not Schedule.objects.exists()


@pytest.mark.django_db
def test_it_lists_agent_profiles(api):
    names = [p["name"] for p in api.get("/api/agent-profiles/").json()]
    assert {"coder", "planner", "reviewer"} <= set(names)
