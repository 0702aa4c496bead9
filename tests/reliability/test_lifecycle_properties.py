"""The lifecycle under arbitrary interleavings: a hypothesis state machine, and real threads racing."""

from __future__ import annotations

import contextlib
import random
import threading

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from config.errors import DomainError
from events.models import Event, EventType
from runs import lifecycle, services
from runs.execution import RunContext
from runs.lifecycle import Action
from runs.models import TERMINAL_STATUSES, Run, RunStatus

# The status an event leaves a run in, to replay a run's history from its events.
AFTER = {
    EventType.RUN_STARTED: RunStatus.RUNNING,
    EventType.RUN_PAUSED: RunStatus.PAUSED,
    EventType.RUN_STOPPED: RunStatus.STOPPED,
    EventType.RUN_COMPLETED: RunStatus.COMPLETED,
    EventType.RUN_FAILED: RunStatus.FAILED,
}


def replay_is_legal(run_id: int) -> None:
    """Walk the events: every status change must be allowed from the status before it."""
    status = RunStatus.QUEUED
    seqs = []
    for event in Event.objects.filter(run_id=run_id).order_by("seq"):
        seqs.append(event.seq)
        assert status not in TERMINAL_STATUSES, f"{event.type} after terminal {status}"
        if event.type == EventType.RUN_RESUMED:
            assert status == RunStatus.PAUSED
            status = RunStatus(event.payload["to"])
        elif event.type in (EventType.RUN_PAUSED, EventType.RUN_STOPPED):
            assert (
                status
                in lifecycle.TRANSITIONS[Action.PAUSE if event.type == EventType.RUN_PAUSED else Action.STOP]
            )
            status = AFTER[event.type]
        elif event.type == EventType.RUN_STARTED:
            assert status in (RunStatus.QUEUED, RunStatus.RUNNING)
            status = RunStatus.RUNNING
        elif event.type == EventType.RUN_COMPLETED:
            assert status == RunStatus.RUNNING
            status = RunStatus.COMPLETED
        elif event.type == EventType.RUN_FAILED:
            status = RunStatus.FAILED
    assert seqs == list(range(1, len(seqs) + 1)), "seq strictly increasing without gaps"
    assert Run.objects.get(pk=run_id).status == status, "the events tell the run's status"


@pytest.mark.django_db
def test_it_keeps_the_lifecycle_invariants_under_any_sequence_of_operations(project):
    class Lifecycle(RuleBasedStateMachine):
        @initialize()
        def create(self) -> None:
            self.run = services.create_run(
                project_id=project.pk, goal="prop", run_options={"agent": "simple"}
            )
            self.terminal_seen: RunStatus | None = None
            self.owner: str | None = None
            self.workers = 0
            self.directives = 0

        def refresh(self) -> Run:
            return Run.objects.get(pk=self.run.pk)

        @rule(action=st.sampled_from(list(Action)))
        def operator(self, action: Action) -> None:
            with contextlib.suppress(DomainError):
                lifecycle.apply_action(self.run.pk, action, actor="prop")

        @rule()
        def worker_claims(self) -> None:
            self.workers += 1
            owner = f"worker-{self.workers}"
            if lifecycle.claim(self.run.pk, owner) is not None:
                self.owner = owner

        @rule(succeed=st.booleans())
        def worker_finishes(self, succeed: bool) -> None:
            if self.owner is None:
                return
            if succeed:
                lifecycle.complete(self.run.pk, self.owner)
            else:
                lifecycle.fail(self.run.pk, "boom", owner=self.owner)

        @rule()
        def worker_releases(self) -> None:
            if self.owner is not None:
                lifecycle.release_lease(self.run.pk, self.owner)

        @rule()
        def worker_dies(self) -> None:
            if self.owner is None:
                return
            Run.objects.filter(pk=self.run.pk, lease_owner=self.owner).update(
                lease_expires_at=timezone.now() - timezone.timedelta(seconds=1)
            )
            lifecycle.recover_lost_worker(self.run.pk, self.owner)

        @rule(text=st.text(alphabet="abc", min_size=1, max_size=3))
        def directive(self, text: str) -> None:
            try:
                services.send_directive(self.run.pk, text=text)
                self.directives += 1
            except DomainError:
                pass

        @rule()
        def worker_applies_directives(self) -> None:
            run = self.refresh()
            if (
                self.owner is None
                or run.lease_owner != self.owner
                or run.status not in (RunStatus.RUNNING, RunStatus.PAUSED)
            ):
                return
            RunContext(run, self.owner).apply_directives()

        @invariant()
        def terminal_is_final(self) -> None:
            status = self.refresh().status
            if self.terminal_seen is not None:
                assert status == self.terminal_seen
            elif status in TERMINAL_STATUSES:
                self.terminal_seen = status

        @invariant()
        def one_live_lease_at_most(self) -> None:
            run = self.refresh()
            if run.lease_owner is not None:
                assert run.lease_owner == self.owner, "only the last worker that claimed can hold the lease"
            if run.status in (RunStatus.COMPLETED, RunStatus.FAILED):
                assert run.lease_owner is None, "finishing releases the lease"
            if run.status == RunStatus.QUEUED:
                assert run.lease_owner is None

        @invariant()
        def history_is_legal_and_gapless(self) -> None:
            replay_is_legal(self.run.pk)

        @invariant()
        def each_directive_applied_at_most_once(self) -> None:
            applied = list(
                Event.objects.filter(run=self.run, type=EventType.DIRECTIVE_APPLIED).values_list(
                    "payload__directive_seq", flat=True
                )
            )
            assert len(applied) == len(set(applied)) and applied == sorted(applied)

    Lifecycle.TestCase.settings = settings(
        max_examples=60, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
    )
    Lifecycle.TestCase().runTest()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_never_makes_an_illegal_transition_when_threads_race(make_run):
    runs = [make_run() for _ in range(10)]
    errors: list[BaseException] = []

    def operator(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(60):
                run = rng.choice(runs)
                action = rng.choice([*Action, "claim", "complete"])
                try:
                    if action == "claim":
                        lifecycle.claim(run.pk, f"t{seed}")
                    elif action == "complete":
                        lifecycle.complete(run.pk, f"t{seed}")
                    else:
                        lifecycle.apply_action(run.pk, action, actor=f"t{seed}")
                except DomainError:
                    pass
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=operator, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for run in runs:
        replay_is_legal(run.pk)
