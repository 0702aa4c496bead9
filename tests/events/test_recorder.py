"""The one event recorder: seq 1, 2, 3... per run, conditional writes, nothing on a miss."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.db.models import Q

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
