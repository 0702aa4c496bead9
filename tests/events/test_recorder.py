"""The one event recorder: seq 1, 2, 3... per run, conditional writes, nothing on a miss."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.db.models import F, Q

from events.models import Event, EventType
from events.recorder import record_event
from runs.models import Run, RunStatus


@pytest.mark.django_db
def test_it_numbers_events_per_run_from_one(make_run):
    first, second = make_run(), make_run()
    for _ in range(3):
        record_event(first.pk, EventType.AGENT_THINKING)
    record_event(second.pk, EventType.AGENT_THINKING)
    assert list(first.events.values_list("seq", flat=True)) == [1, 2, 3, 4]  # RUN_CREATED is 1
    assert list(second.events.values_list("seq", flat=True)) == [1, 2]


@pytest.mark.django_db
def test_it_writes_nothing_when_the_condition_does_not_hold(make_run):
    run = make_run()
    assert record_event(run.pk, EventType.EXECUTING, condition=Q(status=RunStatus.RUNNING)) is None
    assert record_event(999_999, EventType.EXECUTING) is None
    assert Run.objects.get(pk=run.pk).event_seq == 1
    assert run.events.count() == 1


@pytest.mark.django_db
def test_it_changes_the_run_in_the_same_statement(make_run):
    run = make_run()
    event = record_event(run.pk, EventType.STEP_COMPLETED, {"step": 1}, changes={"current_iteration": 1})
    run.refresh_from_db()
    assert (run.current_iteration, run.event_seq, event.seq) == (1, 2, 2)


@pytest.mark.django_db(transaction=True)
def test_it_never_skips_or_repeats_a_seq_under_concurrent_writers(make_run):
    run = make_run()
    errors: list[Exception] = []

    def write() -> None:
        try:
            for _ in range(25):
                record_event(run.pk, EventType.AGENT_THINKING)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(Event.objects.filter(run=run).values_list("seq", flat=True)) == list(range(1, 102))


@pytest.mark.django_db
def test_it_applies_conditions_of_plain_lookups(make_run):
    run = make_run()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, lease_owner="w1", attempt=2)
    holds = [
        Q(status__in=[RunStatus.RUNNING, RunStatus.PAUSED], lease_owner="w1"),
        Q(lease_owner__isnull=False, attempt__gt=1, attempt__lte=2) & Q(current_iteration__lt=1),
        Q(status=RunStatus.RUNNING) & (Q(attempt__gte=2) & Q(error="")),
    ]
    misses = [
        Q(status__in=[]),
        Q(lease_owner__isnull=True),
        Q(lease_owner="w2"),
        Q(attempt__lt=2),
        Q(status=RunStatus.RUNNING, attempt=3),
    ]
    for condition in holds:
        assert record_event(run.pk, EventType.AGENT_THINKING, condition=condition) is not None, condition
    for condition in misses:
        assert record_event(run.pk, EventType.AGENT_THINKING, condition=condition) is None, condition
    assert Run.objects.get(pk=run.pk).event_seq == 1 + len(holds)


@pytest.mark.django_db
def test_it_increments_counters_and_stores_values_of_every_kind(make_run, alice):
    run = make_run()
    record_event(
        run.pk,
        EventType.LLM_CALL,
        {"text": "a\x00b"},
        changes={
            "prompt_tokens": F("prompt_tokens") + 120,
            "checkpoint": {"plan": ["x\x00"], "n": 1},
            "reviewed_by": alice,
            "finished_at": None,
            "error": "",
        },
    )
    event = record_event(run.pk, EventType.LLM_CALL, changes={"prompt_tokens": F("prompt_tokens") + 5})
    run.refresh_from_db()
    assert (run.prompt_tokens, run.checkpoint, run.reviewed_by_id) == (125, {"plan": ["x\ufffd"], "n": 1}, alice.pk)
    stored = Event.objects.get(pk=event.pk)
    assert (stored.seq, stored.type, stored.created_at) == (event.seq, "LLM_CALL", event.created_at)
    assert Event.objects.get(run=run, seq=2).payload == {"text": "a\ufffdb"}


@pytest.mark.django_db
def test_it_refuses_what_it_cannot_write_in_one_statement(make_run):
    run = make_run()
    with pytest.raises(ValueError, match="ANDed lookups"):
        record_event(run.pk, EventType.AGENT_THINKING, condition=Q(status="RUNNING") | Q(attempt=1))
    with pytest.raises(ValueError, match="ANDed lookups"):
        record_event(run.pk, EventType.AGENT_THINKING, condition=~Q(status="RUNNING"))
    with pytest.raises(ValueError, match="lookup 'goal__icontains'"):
        record_event(run.pk, EventType.AGENT_THINKING, condition=Q(goal__icontains="x"))
    with pytest.raises(ValueError, match="isnull"):
        record_event(run.pk, EventType.AGENT_THINKING, condition=Q(lease_owner=None))
    with pytest.raises(ValueError, match=r"F\(field\) \+ n"):
        record_event(run.pk, EventType.AGENT_THINKING, changes={"attempt": F("attempt") * 2})
    assert Run.objects.get(pk=run.pk).event_seq == 1


@pytest.mark.django_db
def test_it_writes_several_events_in_one_write_all_or_nothing(make_run):
    from django.test.utils import CaptureQueriesContext

    from events.recorder import new_event, record_events

    run = make_run()
    early = new_event(run.pk, EventType.AGENT_THINKING, {"n": 1})
    with CaptureQueriesContext(connection) as queries:
        written = record_events(
            run.pk, [early, (EventType.EXECUTING, {"n": "\x00"}), (EventType.STEP_COMPLETED, None)],
            changes={"current_iteration": 1},
        )  # fmt: skip
    statements = [q["sql"] for q in queries.captured_queries]
    assert len([sql for sql in statements if 'UPDATE "runs_run"' in sql]) == 1
    assert len([sql for sql in statements if 'INSERT INTO "events_event"' in sql]) == 1
    if connection.vendor == "postgresql":
        assert len(statements) == 1  # one round trip: the UPDATE is a CTE of the INSERT
    assert [event.seq for event in written] == [2, 3, 4]
    assert written[0] is early
    stored = list(run.events.order_by("seq").values_list("pk", "seq", "type", "payload", "created_at"))
    assert stored[1:] == [(e.pk, e.seq, e.type, e.payload, e.created_at) for e in written]
    assert stored[2][3] == {"n": "\ufffd"}
    assert Run.objects.get(pk=run.pk).current_iteration == 1
    refused = record_events(run.pk, [(EventType.EXECUTING, {}), (EventType.EXECUTING, {})],
                            condition=Q(status=RunStatus.RUNNING))  # fmt: skip
    assert refused is None
    assert Run.objects.get(pk=run.pk).event_seq == 4 and run.events.count() == 4
    with pytest.raises(ValueError, match="at least one"):
        record_events(run.pk, [])
