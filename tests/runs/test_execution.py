"""A worker executing the simple agent in this process: events, checkpoints, control, directives, fencing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import timezone

from config.errors import LeaseLost, RunInterrupted
from events.models import Event, EventType
from runs import execution, lifecycle, services
from runs.execution import RunContext, execute_run
from runs.lifecycle import Action
from runs.models import Run, RunStatus
from tests.conftest import WorkerThread

T = EventType


def types(run: Run) -> list[str]:
    return list(Event.objects.filter(run=run).order_by("seq").values_list("type", flat=True))


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@pytest.mark.django_db
def test_it_executes_the_simple_agent_to_completion(make_run):
    run = make_run(options={"max_steps": 3})
    assert execute_run(run.pk) == "completed"
    run.refresh_from_db()
    assert (run.status, run.current_iteration, run.lease_owner) == (RunStatus.COMPLETED, 3, None)
    assert types(run) == [
        T.RUN_CREATED, T.RUN_STARTED, T.AGENT_THINKING, T.PLAN_GENERATED,
        T.EXECUTING, T.STEP_COMPLETED, T.EXECUTING, T.STEP_COMPLETED, T.EXECUTING, T.STEP_COMPLETED,
        T.RUN_COMPLETED,
    ]  # fmt: skip
    assert list(run.events.values_list("seq", flat=True)) == list(range(1, 12))
    thinking = run.events.get(type=T.AGENT_THINKING)
    assert "Simple agent" in thinking.payload["message"]


@pytest.mark.django_db
def test_it_does_nothing_when_run_twice(make_run):
    run = make_run(options={"max_steps": 1})
    assert execute_run(run.pk) == "completed"
    count = run.events.count()
    assert execute_run(run.pk) == "not claimed"
    assert run.events.count() == count


@pytest.mark.django_db
def test_it_applies_each_directive_once_in_order(make_run):
    run = make_run(options={"max_steps": 2})
    services.send_directive(run.pk, text="first", actor="alice")
    services.send_directive(run.pk, text="second", actor="alice")
    execute_run(run.pk)
    applied = run.events.filter(type=T.DIRECTIVE_APPLIED).order_by("seq")
    received = run.events.filter(type=T.DIRECTIVE_RECEIVED).order_by("seq")
    assert [e.payload["text"] for e in applied] == ["first", "second"]
    assert [e.payload["directive_seq"] for e in applied] == [e.seq for e in received]
    run.refresh_from_db()
    assert run.directive_cursor == received.last().seq
    assert run.checkpoint["directives"] == ["first", "second"]


@pytest.mark.django_db
def test_it_fails_the_run_with_the_agents_error(make_run, monkeypatch):
    class BrokenAgent:
        def execute(self, context: RunContext) -> dict[str, Any]:
            context.record(T.AGENT_THINKING, {"message": "about to break"})
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(execution, "get_agent", lambda run: BrokenAgent())
    run = make_run()
    assert execute_run(run.pk) == "failed"
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error == "RuntimeError: disk on fire"
    assert run.events.order_by("seq").last().payload["reason"] == "RuntimeError: disk on fire"


@pytest.mark.django_db
def test_it_stops_writing_once_another_worker_holds_the_lease(make_run):
    run = make_run()
    claimed = lifecycle.claim(run.pk, "worker-a")
    context = RunContext(claimed, "worker-a")
    Run.objects.filter(pk=run.pk).update(lease_owner="worker-b")
    before = run.events.count()
    with pytest.raises(LeaseLost):
        context.record(T.EXECUTING, {"step": 1})
    with pytest.raises(LeaseLost):
        context.check()
    assert run.events.count() == before


@pytest.mark.django_db
def test_it_renews_its_lease_while_working(make_run, settings):
    settings.RUN_LEASE_SECONDS = 0.3
    run = make_run()
    context = RunContext(lifecycle.claim(run.pk, "worker-a"), "worker-a")
    first_expiry = Run.objects.get(pk=run.pk).lease_expires_at
    context.wait(0.25)
    assert Run.objects.get(pk=run.pk).lease_expires_at > first_expiry


@pytest.mark.django_db(transaction=True)
def test_it_pauses_within_a_second_and_resumes_at_the_next_step(make_run):
    run = make_run(options={"max_steps": 4, "step_seconds": 0.3})
    worker = WorkerThread(run.pk)
    worker.start()
    wait_for(lambda: run.events.filter(type=T.STEP_COMPLETED).exists())
    paused_at = time.monotonic()
    lifecycle.apply_action(run.pk, Action.PAUSE, actor="alice")
    worker.join(timeout=2)
    assert not worker.is_alive() and worker.result == "interrupted: PAUSED"
    assert time.monotonic() - paused_at < 1.0
    paused = Run.objects.get(pk=run.pk)
    assert (paused.status, paused.lease_owner) == (RunStatus.PAUSED, None)
    done_before = paused.current_iteration
    services.send_directive(run.pk, text="while paused", actor="alice")
    lifecycle.apply_action(run.pk, Action.RESUME, actor="alice")
    assert execute_run(run.pk) == "completed"
    steps = list(run.events.filter(type=T.STEP_COMPLETED).values_list("payload__step", flat=True))
    assert steps == [1, 2, 3, 4]
    restarted = run.events.filter(type=T.RUN_STARTED).order_by("seq").last()
    assert restarted.payload["from_step"] == done_before + 1
    assert run.events.filter(type=T.DIRECTIVE_APPLIED, payload__text="while paused").count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_stops_within_a_second_and_writes_nothing_after(make_run):
    run = make_run(options={"max_steps": 5, "step_seconds": 0.4})
    worker = WorkerThread(run.pk)
    worker.start()
    wait_for(lambda: run.events.filter(type=T.EXECUTING).exists())
    stopped_at = time.monotonic()
    stop_event_seq = lifecycle.apply_action(run.pk, Action.STOP, actor="alice").event_seq
    worker.join(timeout=2)
    assert not worker.is_alive() and worker.result == "interrupted: STOPPED"
    assert time.monotonic() - stopped_at < 1.0
    final = Run.objects.get(pk=run.pk)
    assert (final.status, final.lease_owner, final.event_seq) == (RunStatus.STOPPED, None, stop_event_seq)
    assert types(run)[-1] == T.RUN_STOPPED


@pytest.mark.django_db
def test_it_continues_from_the_checkpoint_after_a_lost_worker(make_run, django_capture_on_commit_callbacks):
    run = make_run(options={"max_steps": 3})
    claimed = lifecycle.claim(run.pk, "dead-worker")
    context = RunContext(claimed, "dead-worker")
    context.record(T.AGENT_THINKING, {})
    plan = ["a", "b", "c"]
    context.record(T.PLAN_GENERATED, {"steps": plan}, checkpoint={"plan": plan, "directives": []})
    context.record(T.STEP_COMPLETED, {"step": 1}, current_iteration=1)
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=False):
        result = services.sweep()
    assert result["recovered"] == [run.pk]
    assert execute_run(run.pk) == "completed"
    steps = list(run.events.filter(type=T.STEP_COMPLETED).values_list("payload__step", flat=True))
    assert steps == [1, 2, 3]
    assert run.events.filter(type=T.WORKER_LOST).count() == 1
    assert run.events.filter(type=T.PLAN_GENERATED).count() == 1


@pytest.mark.django_db
def test_it_finds_new_directives_without_reading_the_events_between(make_run):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from events.recorder import record_event
    from runs import selectors

    run = make_run()
    for n in range(300):
        record_event(run.pk, T.COMMAND_OUTPUT, {"text": f"line {n}"})
    services.send_directive(run.pk, text="use tabs")
    record_event(run.pk, T.COMMAND_OUTPUT, {"text": "after"})
    with CaptureQueriesContext(connection) as queries:
        assert [payload["text"] for _, payload in selectors.directives_after(run.pk, 0)] == ["use tabs"]
    assert selectors.directives_after(run.pk, 302) == []
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            sql = queries.captured_queries[0]["sql"]
            plan = " ".join(str(row) for row in cursor.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "USING INDEX event_directives" in plan, plan


def run_writes(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if 'UPDATE "runs_run"' in q["sql"]]


@pytest.mark.django_db
def test_it_claims_runs_and_completes_a_simple_run_of_instant_steps_in_one_write(make_run):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    run = make_run(options={"max_steps": 2, "step_seconds": 0})
    with CaptureQueriesContext(connection) as queries:
        assert execute_run(run.pk) == "completed"
    assert len(run_writes(queries)) == 1  # the claim, every event of the run and RUN_COMPLETED
    assert types(run) == [
        T.RUN_CREATED, T.RUN_STARTED, T.AGENT_THINKING, T.PLAN_GENERATED,
        T.EXECUTING, T.STEP_COMPLETED, T.EXECUTING, T.STEP_COMPLETED, T.RUN_COMPLETED,
    ]  # fmt: skip
    assert list(run.events.values_list("seq", flat=True)) == list(range(1, 10))
    run.refresh_from_db()
    assert (run.status, run.current_iteration, run.event_seq) == (RunStatus.COMPLETED, 2, 9)
    assert (run.attempt, run.lease_owner, run.lease_expires_at) == (1, None, None)
    assert run.started_at <= run.finished_at
    assert run.checkpoint["plan"] == [f"Step {n} of 2 toward: {run.goal}" for n in (1, 2)]
    started = run.events.get(type=T.RUN_STARTED).payload
    assert (started["attempt"], started["from_step"]) == (1, 1)
    created = list(run.events.order_by("seq").values_list("created_at", flat=True))
    assert created == sorted(created)  # each event keeps the time it was recorded


class RacingAgent:
    """The simple agent, with something happening to its run between the worker's read and its first
    write: what a second worker or an operator can do in that gap."""

    batch_events = True

    def __init__(self, meanwhile) -> None:
        self.meanwhile = meanwhile

    def execute(self, context: RunContext) -> dict[str, Any]:
        from runs.agents.simple import SimpleAgent

        self.meanwhile(context.run_id)
        return SimpleAgent().execute(context)


@pytest.mark.django_db
def test_it_writes_nothing_when_another_worker_claimed_the_run_before_its_first_write(make_run, monkeypatch):
    run = make_run(options={"max_steps": 1, "step_seconds": 0})
    monkeypatch.setattr(
        execution, "get_agent", lambda run: RacingAgent(lambda pk: lifecycle.claim(pk, "worker-b"))
    )
    assert execute_run(run.pk) == "not claimed"
    run.refresh_from_db()
    assert (run.status, run.lease_owner, run.attempt) == (RunStatus.RUNNING, "worker-b", 1)
    assert types(run) == [T.RUN_CREATED, T.RUN_STARTED]
    assert run.events.get(type=T.RUN_STARTED).payload["worker"] == "worker-b"


@pytest.mark.django_db
def test_it_writes_nothing_when_the_run_was_paused_before_its_first_write(make_run, monkeypatch):
    run = make_run(options={"max_steps": 2, "step_seconds": 0.01})
    pause = lambda pk: lifecycle.apply_action(pk, Action.PAUSE, actor="alice")  # noqa: E731
    monkeypatch.setattr(execution, "get_agent", lambda run: RacingAgent(pause))
    assert execute_run(run.pk) == "not claimed"  # its first write comes with the first step's wait
    run.refresh_from_db()
    assert (run.status, run.lease_owner, run.attempt, run.started_at) == (RunStatus.PAUSED, None, 0, None)
    assert types(run) == [T.RUN_CREATED, T.RUN_PAUSED]


@pytest.mark.django_db(transaction=True)
def test_it_shows_a_started_simple_run_before_its_first_step_ends(make_run):
    run = make_run(options={"max_steps": 1, "step_seconds": 1.0})
    worker = WorkerThread(run.pk)
    worker.start()
    wait_for(lambda: Run.objects.get(pk=run.pk).status == RunStatus.RUNNING, timeout=0.8)
    assert types(run) == [T.RUN_CREATED, T.RUN_STARTED, T.AGENT_THINKING, T.PLAN_GENERATED, T.EXECUTING]
    assert Run.objects.get(pk=run.pk).lease_owner is not None
    worker.join(timeout=5)
    assert worker.result == "completed"


@pytest.mark.django_db
def test_it_claims_a_run_whose_agent_cannot_be_made_and_fails_it(make_run):
    run = make_run()
    # Its agent profile was deleted after the run was queued.
    Run.objects.filter(pk=run.pk).update(options={**run.options, "agent": "no-such-profile"})
    assert execute_run(run.pk) == "failed"
    run.refresh_from_db()
    assert (run.status, run.lease_owner, run.attempt) == (RunStatus.FAILED, None, 1)
    assert types(run) == [T.RUN_CREATED, T.RUN_STARTED, T.RUN_FAILED]
    assert "no-such-profile" in run.error


@pytest.mark.django_db
def test_it_reads_an_instant_run_once_and_its_parent_never(make_run):
    """Claim read, then one write: no directive or parent read when the run row, read at the claim, says
    there are none."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    run = make_run(options={"max_steps": 1, "step_seconds": 0})
    with CaptureQueriesContext(connection) as queries:
        assert execute_run(run.pk) == "completed"
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert len(reads) == 1, reads
    assert "events_event" not in reads[0]


@pytest.mark.django_db
def test_it_sees_a_directive_as_soon_as_a_pause(make_run, monkeypatch):
    """What the worker read of the run at most CONTROL_CHECK_SECONDS ago decides whether to read the
    directives; an older view is read again first."""
    run = make_run()
    context = RunContext(lifecycle.claim(run.pk, "worker-a"), "worker-a")
    assert context.apply_directives() == []
    services.send_directive(run.pk, text="use tabs")
    now = time.monotonic()
    monkeypatch.setattr(execution.time, "monotonic", lambda: now + execution.CONTROL_CHECK_SECONDS / 2)
    assert context.apply_directives() == []  # the claim's view is still fresh: applied at the next look
    monkeypatch.setattr(execution.time, "monotonic", lambda: now + execution.CONTROL_CHECK_SECONDS * 2)
    assert context.apply_directives() == ["use tabs"]
    assert context.apply_directives() == []  # once
    services.send_directive(run.pk, text="go slower")
    assert context.check_and_apply_directives() == ["go slower"]  # a check reads the run anyway
    applied = run.events.filter(type=T.DIRECTIVE_APPLIED).values_list("payload__text", flat=True)
    assert list(applied) == ["use tabs", "go slower"]


@pytest.mark.django_db
def test_it_writes_a_batch_before_it_waits_or_checks(make_run):
    run = make_run()
    context = RunContext(lifecycle.claim(run.pk, "worker-a"), "worker-a")
    with context.batch():
        context.record(T.AGENT_THINKING, {"n": 1})
        context.record(T.EXECUTING, {"n": 2}, current_iteration=0)
        assert types(run)[-1] == T.RUN_STARTED
        context.wait(0.01)
        assert types(run)[-2:] == [T.AGENT_THINKING, T.EXECUTING]
        event = context.record(T.STEP_COMPLETED, {"n": 3}, current_iteration=1)
        assert event.pk is None
        context.check()
        assert (event.seq, types(run)[-1]) == (5, T.STEP_COMPLETED)
        context.record(T.EXECUTING, {"n": 4})
    assert types(run)[-1] == T.EXECUTING  # leaving the block writes the rest
    assert Run.objects.get(pk=run.pk).current_iteration == 1


@pytest.mark.django_db
def test_it_writes_a_batch_once_it_is_full_or_old(make_run, monkeypatch):
    run = make_run()
    context = RunContext(lifecycle.claim(run.pk, "worker-a"), "worker-a")
    with context.batch():
        for n in range(execution.BATCH_MAX_EVENTS):
            context.record(T.COMMAND_OUTPUT, {"n": n})
        assert run.events.filter(type=T.COMMAND_OUTPUT).count() == execution.BATCH_MAX_EVENTS
        context.record(T.COMMAND_OUTPUT, {"n": "late"})
        monkeypatch.setattr(execution.time, "monotonic", lambda: time.monotonic_ns() / 1e9 + 1)
        context.record(T.COMMAND_OUTPUT, {"n": "later"})
        assert run.events.filter(type=T.COMMAND_OUTPUT).count() == execution.BATCH_MAX_EVENTS + 2


@pytest.mark.django_db
def test_it_writes_a_paused_runs_last_batch_alone_and_gives_the_run_back(make_run):
    run = make_run(options={"max_steps": 1, "step_seconds": 0})
    context = RunContext(lifecycle.claim(run.pk, "worker-a"), "worker-a")
    with context.batch():
        context.record(T.STEP_COMPLETED, {"step": 1}, current_iteration=1)
        lifecycle.apply_action(run.pk, Action.PAUSE, actor="alice")
        assert context.complete({"steps": 1}) == "interrupted"
    run.refresh_from_db()
    assert (run.status, run.lease_owner, run.current_iteration) == (RunStatus.PAUSED, None, 1)
    assert types(run)[-2:] == [T.RUN_PAUSED, T.STEP_COMPLETED]
    assert not run.events.filter(type=T.RUN_COMPLETED).exists()


@pytest.mark.django_db
def test_it_drops_a_stopped_runs_last_batch(make_run):
    run = make_run(options={"max_steps": 1, "step_seconds": 0})
    context = RunContext(lifecycle.claim(run.pk, "worker-a"), "worker-a")
    with pytest.raises(RunInterrupted), context.batch():
        context.record(T.STEP_COMPLETED, {"step": 1}, current_iteration=1)
        stop_seq = lifecycle.apply_action(run.pk, Action.STOP, actor="alice").event_seq
        context.complete({"steps": 1})
    run.refresh_from_db()
    assert (run.status, run.event_seq, run.current_iteration) == (RunStatus.STOPPED, stop_seq, 0)
    assert types(run)[-1] == T.RUN_STOPPED


@pytest.mark.django_db
def test_it_adds_up_increments_recorded_in_one_batch(make_run):
    from django.db.models import F

    run = make_run()
    context = RunContext(lifecycle.claim(run.pk, "worker-a"), "worker-a")
    with context.batch():
        context.record(T.LLM_CALL, {"n": 1}, prompt_tokens=F("prompt_tokens") + 5, checkpoint={"a": 1})
        context.record(T.LLM_CALL, {"n": 2}, prompt_tokens=F("prompt_tokens") + 7, checkpoint={"a": 2})
    run.refresh_from_db()
    assert (run.prompt_tokens, run.checkpoint, types(run)[-2:]) == (12, {"a": 2}, [T.LLM_CALL, T.LLM_CALL])
