"""The worker's and the poll's SQL reads give what the ORM gives, field by field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import EventType
from events.recorder import record_event
from runs import selectors
from runs.models import Run


@pytest.fixture
def busy_run(make_run, alice):
    run = make_run(options={"max_steps": 4, "note": "caf\u00e9"}, metadata={"ticket": 7}, created_by=alice)
    started = timezone.now() - timedelta(minutes=3)
    Run.objects.filter(pk=run.pk).update(
        status="RUNNING", error="", current_iteration=2, started_at=started, branch="agent/run-x",
        base_commit="a" * 40, prompt_tokens=120, completion_tokens=33, checkpoint={"plan": ["a", "b"]},
        lease_owner="host:1:abc", lease_expires_at=started + timedelta(minutes=10), attempt=2,
    )  # fmt: skip
    return Run.objects.get(pk=run.pk)


@pytest.mark.django_db
def test_it_reads_the_whole_run_for_the_worker_as_the_orm_does(busy_run):
    read = selectors.run_for_worker(busy_run.pk)
    for field in Run._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(busy_run, field.attname), field.name
    assert read.project == busy_run.project
    assert selectors.run_for_worker(999_999) is None


@pytest.mark.django_db
def test_it_reads_the_live_fields_as_the_orm_does(busy_run, django_assert_num_queries):
    with django_assert_num_queries(1):
        read = selectors.run_live(busy_run.pk)
        for name in ("id", *selectors.LIVE_FIELDS):
            assert getattr(read, name) == getattr(busy_run, name), name
    assert read.goal == busy_run.goal  # a field left out costs a query of its own, and is still right
    assert selectors.run_live(999_999) is None


@pytest.mark.django_db
def test_it_reads_directives_and_parents(make_run):
    from runs import services

    parent, run = make_run(), make_run()
    Run.objects.filter(pk=run.pk).update(parent=parent)
    record_event(run.pk, EventType.COMMAND_OUTPUT, {"text": "x"})
    services.send_directive(run.pk, text="use tabs \u2192 spaces", actor="alice")
    assert selectors.directives_after(run.pk, 0) == [(3, {"text": "use tabs \u2192 spaces", "actor": "alice"})]
    assert selectors.parent_id_of(run.pk) == parent.pk
    assert selectors.parent_id_of(parent.pk) is None
    assert selectors.parent_id_of(999_999) is None


@pytest.mark.django_db
def test_it_reads_what_a_working_agent_checks(busy_run, make_run):
    from runs import services

    assert selectors.run_control(busy_run.pk) == ("RUNNING", "host:1:abc", 0)
    assert selectors.run_control(make_run().pk) == ("QUEUED", None, 0)
    assert selectors.run_control(999_999) is None
    first = services.send_directive(busy_run.pk, text="one", actor="alice")
    assert selectors.run_control(busy_run.pk)[2] == first.seq  # the seq of the directive's own event
    record_event(busy_run.pk, EventType.COMMAND_OUTPUT, {"text": "x"})
    second = services.send_directive(busy_run.pk, text="two", actor="alice")
    assert selectors.run_control(busy_run.pk)[2] == second.seq == first.seq + 2
