"""The transition table of DESIGN section 3, applied through the one lifecycle module."""

from __future__ import annotations

import pytest
from django.utils import timezone

from config.errors import InvalidTransition, NotFound
from events.models import Event, EventType
from runs import lifecycle
from runs.lifecycle import Action
from runs.models import Run, RunStatus

S = RunStatus
EXPECTED = {
    # (from, started?): {action: to or None for 409}
    (S.QUEUED, False): {Action.PAUSE: S.PAUSED, Action.RESUME: None, Action.STOP: S.STOPPED},
    (S.RUNNING, True): {Action.PAUSE: S.PAUSED, Action.RESUME: None, Action.STOP: S.STOPPED},
    (S.PAUSED, True): {Action.PAUSE: None, Action.RESUME: S.RUNNING, Action.STOP: S.STOPPED},
    (S.PAUSED, False): {Action.PAUSE: None, Action.RESUME: S.QUEUED, Action.STOP: S.STOPPED},
    (S.STOPPED, True): {Action.PAUSE: None, Action.RESUME: None, Action.STOP: None},
    (S.COMPLETED, True): {Action.PAUSE: None, Action.RESUME: None, Action.STOP: None},
    (S.FAILED, True): {Action.PAUSE: None, Action.RESUME: None, Action.STOP: None},
}
CASES = [
    (status, started, action, to) for (status, started), row in EXPECTED.items() for action, to in row.items()
]
EVENT_OF = {
    Action.PAUSE: EventType.RUN_PAUSED,
    Action.RESUME: EventType.RUN_RESUMED,
    Action.STOP: EventType.RUN_STOPPED,
}


def put_in(run: Run, status: RunStatus, started: bool) -> Run:
    """Test setup only: place a run in a state without going through a worker."""
    Run.objects.filter(pk=run.pk).update(status=status, started_at=timezone.now() if started else None)
    return Run.objects.get(pk=run.pk)


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "started", "action", "to"), CASES)
def test_it_applies_the_transition_table(
    make_run, status, started, action, to, django_capture_on_commit_callbacks
):
    run = put_in(make_run(), status, started)
    events_before = run.events.count()
    if to is None:
        with pytest.raises(InvalidTransition):
            lifecycle.apply_action(run.pk, action, actor="alice")
        after = Run.objects.get(pk=run.pk)
        assert (after.status, after.event_seq, after.finished_at) == (status, run.event_seq, run.finished_at)
        assert run.events.count() == events_before
        return
    with django_capture_on_commit_callbacks() as callbacks:
        updated = lifecycle.apply_action(run.pk, action, actor="alice")
    assert updated.status == to
    last = run.events.order_by("-seq").first()
    assert last.type == EVENT_OF[action]
    assert last.payload == {"actor": "alice", "from": status, "to": to}
    assert last.seq == events_before + 1 == updated.event_seq
    assert (updated.finished_at is not None) == (to == S.STOPPED)
    assert len(callbacks) == (1 if action is Action.RESUME else 0), "resume enqueues the run again"


@pytest.mark.django_db
def test_it_lists_allowed_actions_per_status():
    assert lifecycle.allowed_actions(S.QUEUED) == [Action.PAUSE, Action.STOP]
    assert lifecycle.allowed_actions(S.RUNNING) == [Action.PAUSE, Action.STOP]
    assert lifecycle.allowed_actions(S.PAUSED) == [Action.RESUME, Action.STOP]
    for terminal in (S.STOPPED, S.COMPLETED, S.FAILED):
        assert lifecycle.allowed_actions(terminal) == []


@pytest.mark.django_db
def test_it_raises_not_found_for_a_missing_run():
    with pytest.raises(NotFound):
        lifecycle.apply_action(999_999, Action.PAUSE)


@pytest.mark.django_db
def test_it_claims_a_run_once(make_run):
    run = make_run()
    claimed = lifecycle.claim(run.pk, "worker-a")
    assert claimed is not None
    assert (claimed.status, claimed.lease_owner, claimed.attempt) == (S.RUNNING, "worker-a", 1)
    assert claimed.started_at is not None and claimed.lease_expires_at > timezone.now()
    assert lifecycle.claim(run.pk, "worker-b") is None
    started = Event.objects.filter(run=run, type=EventType.RUN_STARTED)
    assert [e.payload["worker"] for e in started] == ["worker-a"]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [S.PAUSED, S.STOPPED, S.COMPLETED, S.FAILED])
def test_it_does_not_claim_a_run_that_is_not_runnable(make_run, status):
    run = put_in(make_run(), status, True)
    assert lifecycle.claim(run.pk, "worker-a") is None
    assert Run.objects.get(pk=run.pk).lease_owner is None


@pytest.mark.django_db
def test_it_completes_only_under_the_lease(make_run):
    run = make_run()
    lifecycle.claim(run.pk, "worker-a")
    assert lifecycle.complete(run.pk, "worker-b") is None
    assert Run.objects.get(pk=run.pk).status == S.RUNNING
    assert lifecycle.complete(run.pk, "worker-a") is not None
    done = Run.objects.get(pk=run.pk)
    assert (done.status, done.lease_owner) == (S.COMPLETED, None)
    assert done.finished_at is not None


@pytest.mark.django_db
def test_it_never_changes_a_terminal_run(make_run):
    run = make_run()
    lifecycle.apply_action(run.pk, Action.STOP)
    assert lifecycle.fail(run.pk, "late failure") is None
    assert lifecycle.claim(run.pk, "worker-a") is None
    stopped = Run.objects.get(pk=run.pk)
    assert (stopped.status, stopped.error) == (S.STOPPED, "")


@pytest.mark.django_db
def test_it_fails_with_the_reason(make_run):
    run = make_run()
    lifecycle.claim(run.pk, "worker-a")
    event = lifecycle.fail(run.pk, "boom", owner="worker-a")
    failed = Run.objects.get(pk=run.pk)
    assert (failed.status, failed.error, failed.lease_owner) == (S.FAILED, "boom", None)
    assert (event.type, event.payload["reason"]) == (EventType.RUN_FAILED, "boom")


@pytest.mark.django_db
def test_it_recovers_a_lost_worker_then_gives_up(make_run, settings, django_capture_on_commit_callbacks):
    settings.RUN_MAX_ATTEMPTS = 2
    run = make_run()
    for attempt, expected in ((1, "requeued"), (2, "failed")):
        lifecycle.claim(run.pk, f"worker-{attempt}")
        assert lifecycle.recover_lost_worker(run.pk, f"worker-{attempt}") is None, (
            "the lease has not expired yet"
        )
        Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timezone.timedelta(seconds=1))
        with django_capture_on_commit_callbacks() as callbacks:
            assert lifecycle.recover_lost_worker(run.pk, f"worker-{attempt}") == expected
        assert len(callbacks) == (1 if expected == "requeued" else 0)
    final = Run.objects.get(pk=run.pk)
    assert final.status == S.FAILED and "Worker lost 2 times" in final.error
    types = list(final.events.values_list("type", flat=True))
    assert types.count(EventType.WORKER_LOST) == 2 and types[-1] == EventType.RUN_FAILED


@pytest.mark.django_db
def test_it_does_not_claim_from_a_read_that_another_claim_made_stale(make_run, monkeypatch):
    run = make_run()
    stale = Run.objects.get(pk=run.pk)  # what a slow worker read before another one claimed and let go
    assert lifecycle.claim(run.pk, "worker-a") is not None
    assert lifecycle.release_lease(run.pk, "worker-a")
    monkeypatch.setattr(lifecycle.selectors, "run_for_worker", lambda run_id: stale)
    assert lifecycle.claim(run.pk, "worker-b") is None
    fresh = Run.objects.get(pk=run.pk)
    assert (fresh.attempt, fresh.lease_owner) == (1, None)
    assert Event.objects.filter(run=run, type=EventType.RUN_STARTED).count() == 1
