"""Schedules: cron validation, firing on time with a controlled clock, no burst after downtime, console
and admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from config.errors import InvalidInput
from runs import schedules
from runs.models import Run, Schedule


def at(hour: int, minute: int, day: int = 24) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def nightly(project):
    schedule = Schedule(name="nightly", project=project, goal="run the checks", run_type="agent",
                        options={"agent": "simple", "max_steps": 1, "step_seconds": 0}, cron="0 2 * * *")  # fmt: skip
    return schedules.save_schedule(schedule)


@pytest.mark.django_db
@pytest.mark.parametrize("cron", ["", "every night", "61 * * * *", "* * *", "0 2 * * * *"])
def test_it_refuses_bad_cron_expressions(cron):
    with pytest.raises(InvalidInput):
        schedules.clean_cron(cron)


@pytest.mark.django_db
def test_it_fires_a_due_schedule_once_and_links_the_run(nightly):
    nightly.next_run_at = at(2, 0)
    nightly.save()
    assert schedules.fire_due(at(1, 59)) == []
    created = schedules.fire_due(at(2, 0))
    assert len(created) == 1 and schedules.fire_due(at(2, 0)) == []
    run = Run.objects.get(pk=created[0])
    assert run.schedule == nightly and run.goal == "run the checks" and run.name == "nightly-20261124-0200"
    nightly.refresh_from_db()
    assert nightly.last_run_at == at(2, 0) and nightly.next_run_at == at(2, 0, day=25)


@pytest.mark.django_db
def test_it_does_not_replay_missed_slots_as_a_burst(nightly):
    nightly.next_run_at = at(2, 0, day=20)
    nightly.save()
    created = schedules.fire_due(at(9, 30, day=24))  # four nights were missed while nothing ran
    assert len(created) == 1
    nightly.refresh_from_db()
    assert nightly.next_run_at == at(2, 0, day=25)


@pytest.mark.django_db
def test_it_fires_from_the_periodic_sweep(nightly, django_capture_on_commit_callbacks):
    from runs.services import sweep

    nightly.next_run_at = datetime.now(UTC) - timedelta(seconds=1)
    nightly.save()
    with django_capture_on_commit_callbacks(execute=False):
        assert len(sweep()["scheduled"]) == 1
    assert Run.objects.filter(schedule=nightly).count() == 1


@pytest.mark.django_db
def test_it_skips_disabled_schedules(nightly):
    nightly.enabled = False
    schedules.save_schedule(nightly)
    assert nightly.next_run_at is None and schedules.fire_due(at(23, 59, day=30)) == []


@pytest.mark.django_db
def test_it_creates_and_toggles_schedules_in_the_console(client, alice, project):
    client.login(username="alice", password="alice-password-1")
    bad = client.post(
        "/schedules/", {"name": "n", "project": project.pk, "goal": "g", "run_type": "agent", "cron": "nope"}
    )
    assert bad.status_code == 400 and "not a cron expression" in bad.content.decode()
    refused = client.post("/schedules/", {"name": "p", "project": project.pk, "goal": "g", "run_type": "pipeline",
                                          "cron": "*/5 * * * *", "run_options": '{"commands": ["rm -rf /"]}'})  # fmt: skip
    assert refused.status_code == 400 and "Not allowed" in refused.content.decode()
    good = client.post("/schedules/", {"name": "checks", "project": project.pk, "goal": "g", "run_type": "agent",
                                       "cron": "*/5 * * * *", "run_options": '{"agent": "simple"}'}, follow=True)  # fmt: skip
    schedule = Schedule.objects.get()
    assert "Schedule checks saved" in good.content.decode() and schedule.next_run_at is not None
    client.post(f"/schedules/{schedule.pk}/toggle/")
    assert Schedule.objects.get().enabled is False


@pytest.mark.django_db
def test_it_edits_schedules_in_the_admin(client, project):
    get_user_model().objects.create_superuser("root", password="root-password-1")
    client.login(username="root", password="root-password-1")
    response = client.post("/admin/runs/schedule/add/", {
        "name": "weekly", "project": project.pk, "goal": "g", "run_type": "agent", "options": '{"agent": "simple"}',
        "run_metadata": "{}", "cron": "0 3 * * 1", "enabled": "on",
    })  # fmt: skip
    assert response.status_code == 302
    schedule = Schedule.objects.get(name="weekly")
    assert schedule.next_run_at is not None and schedule.next_run_at.weekday() == 0
    bad = client.post("/admin/runs/schedule/add/", {"name": "x", "project": project.pk, "goal": "g", "run_type": "agent",
                                                   "options": "{}", "run_metadata": "{}", "cron": "whenever"})  # fmt: skip
    assert bad.status_code == 200 and "not a cron expression" in bad.content.decode()


@pytest.mark.django_db
def test_it_edits_a_schedule_in_the_console(client, alice, nightly):
    client.login(username="alice", password="alice-password-1")
    page = client.get(f"/schedules/{nightly.pk}/").content.decode()
    assert 'value="0 2 * * *"' in page
    bad = client.post(f"/schedules/{nightly.pk}/", {"name": "nightly", "project": nightly.project_id, "goal": "g",
                                                    "run_type": "agent", "cron": "nope"})  # fmt: skip
    assert bad.status_code == 400 and Schedule.objects.get().cron == "0 2 * * *"
    saved = client.post(f"/schedules/{nightly.pk}/", {"name": "nightly", "project": nightly.project_id,
                                                      "goal": "new goal", "run_type": "agent", "cron": "30 4 * * *",
                                                      "run_options": '{"agent": "simple"}'}, follow=True)  # fmt: skip
    assert "Schedule nightly saved" in saved.content.decode()
    schedule = Schedule.objects.get()
    assert (schedule.cron, schedule.goal) == ("30 4 * * *", "new goal") and schedule.next_run_at.minute == 30
