"""The admin: lists with constant queries, run actions through the lifecycle, events read-only."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import Event, EventType
from events.recorder import record_event
from runs.models import Run, RunStatus


@pytest.fixture
def admin_client_(client, db):
    get_user_model().objects.create_superuser("root", password="root-password-1")
    client.login(username="root", password="root-password-1")
    return client


@pytest.mark.django_db
def test_it_lists_runs_with_a_constant_number_of_queries(admin_client_, make_run):
    make_run()
    with CaptureQueriesContext(connection) as few:
        assert admin_client_.get("/admin/runs/run/").status_code == 200
    for _ in range(20):
        make_run()
    with CaptureQueriesContext(connection) as many:
        assert admin_client_.get("/admin/runs/run/").status_code == 200
    assert len(many) == len(few)


@pytest.mark.django_db
def test_it_pauses_and_stops_through_the_lifecycle(admin_client_, make_run):
    queued, other = make_run(), make_run()
    Run.objects.filter(pk=other.pk).update(status=RunStatus.COMPLETED)
    response = admin_client_.post(
        "/admin/runs/run/", {"action": "pause_runs", "_selected_action": [queued.pk, other.pk]}, follow=True
    )
    assert response.status_code == 200
    assert Run.objects.get(pk=queued.pk).status == RunStatus.PAUSED
    assert Run.objects.get(pk=other.pk).status == RunStatus.COMPLETED
    assert "Cannot pause run" in response.content.decode()
    paused = Event.objects.get(run=queued, type=EventType.RUN_PAUSED)
    assert paused.payload["actor"] == "root"
    admin_client_.post("/admin/runs/run/", {"action": "stop_runs", "_selected_action": [queued.pk]})
    assert Run.objects.get(pk=queued.pk).status == RunStatus.STOPPED


@pytest.mark.django_db
def test_it_shows_only_the_latest_events_on_a_run_page(admin_client_, make_run):
    run = make_run()
    for n in range(80):
        record_event(run.pk, EventType.AGENT_THINKING, {"n": n})
    page = html.unescape(admin_client_.get(f"/admin/runs/run/{run.pk}/change/").content.decode())
    assert '"n": 79' in page and '"n": 10}' not in page
    assert f"run__id__exact={run.pk}" in page
    listing = admin_client_.get(f"/admin/events/event/?run__id__exact={run.pk}")
    assert listing.status_code == 200
    assert "81 events" in page


@pytest.mark.django_db
def test_it_keeps_events_read_only(admin_client_, make_run):
    event = make_run().events.get()
    assert admin_client_.post(f"/admin/events/event/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Event.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_it_approves_and_rejects_from_the_admin(admin_client_, finished_run):
    first, second = finished_run(), finished_run(path="b.py")
    admin_client_.post("/admin/runs/run/", {"action": "approve_runs", "_selected_action": [first.pk]})
    admin_client_.post("/admin/runs/run/", {"action": "reject_runs", "_selected_action": [second.pk]})
    assert Run.objects.get(pk=first.pk).review_state == "approved"
    assert Run.objects.get(pk=second.pk).review_state == "rejected"
    admin_client_.post("/admin/runs/run/", {"action": "rollback_runs", "_selected_action": [first.pk]})
    assert Run.objects.get(pk=first.pk).review_state == "rolled_back"
