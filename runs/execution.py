"""What a worker does with a run: claim it, drive its agent, and leave cleanly.

The agent talks to the run only through `RunContext`, which fences every write with the worker's lease,
renews the lease while the agent works, and turns a pause or stop into `RunInterrupted` within
`CONTROL_CHECK_SECONDS`. Events an agent records at one moment, with nothing done between them, can be
written together (`RunContext.batch`): one write instead of one per event, which on SQLite is what the
workers queue for. For such an agent the claim itself goes with its first batch: a run whose steps take
no time is claimed, run and completed in one write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import F, Value
from django.db.models.expressions import CombinedExpression

from config.errors import LeaseLost, NotClaimed, RunInterrupted
from events.models import Event, EventType
from events.recorder import new_event, record_events
from runs import lifecycle, selectors
from runs.agents import get_agent
from runs.models import Run, RunStatus
from runs.workflow import WorkflowWaiting

logger = logging.getLogger(__name__)

CONTROL_CHECK_SECONDS = 0.2
BATCH_MAX_EVENTS = 100  # a batch is written once it holds this many, or is CONTROL_CHECK_SECONDS old


def _merged(previous: Any, value: Any) -> Any:
    """A run change recorded after `previous` in one batch: increments of the same field add up."""
    if _increment(previous) is not None and _increment(value) is not None:
        return F(value.lhs.name) + (_increment(previous) + _increment(value))
    return value


def _increment(value: Any) -> int | None:
    """n of an `F(field) + n` change, else None."""
    if isinstance(value, CombinedExpression) and value.connector == "+" and isinstance(value.lhs, F):
        return value.rhs.value if isinstance(value.rhs, Value) else None
    return None


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RunContext:
    """The run as one leased worker sees it."""

    def __init__(self, run: Run, owner: str, *, claim: lifecycle.Claim | None = None) -> None:
        """`run` is claimed by `owner`, or `claim` is its claim, not yet written: it is written with the
        first write of the agent's events (or its completion), and until then the run is not the worker's."""
        self.run = run
        self.owner = owner
        self._claim = claim
        self._renewed_at = time.monotonic()
        # When the run's row was last read (the claim read it), and the last directive it had then.
        self._checked_at = self._renewed_at
        self._directive_seq = run.directive_seq
        self._batching = False
        self._pending: list[Event] = []
        self._pending_changes: dict[str, Any] = {}
        self._pending_since = 0.0

    @property
    def run_id(self) -> int:
        return self.run.pk

    def check(self) -> None:
        """Raise RunInterrupted on pause or stop, LeaseLost when the run is no longer ours."""
        self.flush()
        row = self._read_control()
        if row is None or row[1] != self.owner:
            raise LeaseLost(f"run {self.run_id}: lease of {self.owner} is gone")
        if row[0] != RunStatus.RUNNING:
            raise RunInterrupted(row[0])
        if self._checked_at - self._renewed_at > settings.RUN_LEASE_SECONDS / 3:
            if not lifecycle.renew_lease(self.run_id, self.owner):
                raise LeaseLost(f"run {self.run_id}: lease of {self.owner} could not be renewed")
            self._renewed_at = self._checked_at

    def check_and_apply_directives(self) -> list[str]:
        """`check()`, then `apply_directives()`: what an agent does between its turns. One read when no
        directive came."""
        self.check()
        return self.apply_directives()

    def _read_control(self) -> tuple[str, str | None, int] | None:
        row = selectors.run_control(self.run_id)
        self._checked_at = time.monotonic()
        if row is not None:
            self._directive_seq = row[2]
        return row

    def wait(self, seconds: float) -> None:
        """Wait while staying responsive to pause and stop (what was recorded before is written first)."""
        if seconds > 0:
            self.flush()
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(CONTROL_CHECK_SECONDS, remaining))
            self.check()

    def record(self, event_type: EventType, payload: dict[str, Any] | None = None, **changes: Any) -> Event:
        """Record an agent event (and run-row changes such as the checkpoint) under the lease. Inside
        `batch()` the event gets its seq and id when the batch is written."""
        event = new_event(self.run_id, event_type, payload)
        if self._batching:
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.append(event)
            for field, value in changes.items():
                self._pending_changes[field] = _merged(self._pending_changes.get(field), value)
            if len(self._pending) >= BATCH_MAX_EVENTS or (
                time.monotonic() - self._pending_since >= CONTROL_CHECK_SECONDS
            ):
                self.flush()
        else:
            self._write([event], changes)
        for field, value in changes.items():
            setattr(self.run, field, value)
        return event

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Events recorded inside are written together, in one fenced write, when the block ends, when
        the agent waits or checks for control, or once the batch is full or CONTROL_CHECK_SECONDS old.
        Changes merge in order: the last value of a field wins, and increments (F(field) + n) add up."""
        if self._batching:
            yield
            return
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            self.flush()

    @property
    def claimed(self) -> bool:
        """Whether the claim is written (the run is the worker's until its lease is lost)."""
        return self._claim is None

    def flush(self) -> None:
        """Write the batch recorded so far, if any, and the claim if it is not written yet."""
        if self._pending or self._claim is not None:
            self._write(*self._take_pending())

    def _take_pending(self) -> tuple[list[Event], dict[str, Any]]:
        taken = self._pending, self._pending_changes
        self._pending, self._pending_changes = [], {}
        return taken

    def complete(self, summary: dict[str, Any]) -> str:
        """Complete the run with the batch recorded so far written in the same statement. A pause or stop
        that arrived after the last step wins: the batch is written alone (or refused, if stopped) and the
        lease given back; a resumed run completes on its next claim."""
        events, changes = self._take_pending()
        claim, self._claim = self._claim, None
        changed_files = bool(summary.get("commits"))
        done = lifecycle.complete(
            self.run_id, self.owner, summary, changed_files=changed_files, preceding=events,
            preceding_changes=changes, parent_id=self.run.parent_id, claim=claim,
        )  # fmt: skip
        if done is not None:
            return "completed"
        if claim is not None:
            raise self._not_claimed()
        if events:
            self._write(events, changes)
        lifecycle.release_lease(self.run_id, self.owner)
        return "interrupted"

    def _write(self, events: list[Event], changes: dict[str, Any]) -> None:
        if self._claim is not None:
            claim, self._claim = self._claim, None
            if not lifecycle.write_claim(claim, events, changes):
                raise self._not_claimed()
            return
        if record_events(self.run_id, events, condition=lifecycle.worker_fence(self.owner), changes=changes):
            return
        self.check()
        raise LeaseLost(f"run {self.run_id}: write refused for {self.owner}")

    def _not_claimed(self) -> NotClaimed:
        return NotClaimed(f"run {self.run_id}: taken, paused or stopped before {self.owner} wrote its claim")

    def apply_directives(self) -> list[str]:
        """Apply each directive received since the last one applied, once each, in order. What the worker
        last read of the run (when it claimed it or checked for control) says whether there are any, if
        that is at most CONTROL_CHECK_SECONDS old: a directive is seen as soon as a pause or stop is."""
        if time.monotonic() - self._checked_at > CONTROL_CHECK_SECONDS:
            self._read_control()
        if self._directive_seq <= self.run.directive_cursor:
            return []
        return self._apply(selectors.directives_after(self.run_id, self.run.directive_cursor))

    def _apply(self, pending: list[tuple[int, dict[str, Any]]]) -> list[str]:
        applied: list[str] = []
        for seq, payload in pending:
            text = payload.get("text", "")
            self.record(
                EventType.DIRECTIVE_APPLIED,
                {"directive_seq": seq, "text": text, "step": self.run.current_iteration + 1},
                directive_cursor=seq,
            )
            applied.append(text)
        return applied


def execute_run(run_id: int) -> str:
    """Entry point of a worker task: returns what happened, for django-q2's result."""
    owner = worker_identity()
    claim = lifecycle.prepare_claim(run_id, owner)
    if claim is None:
        return "not claimed"
    run = claim.run
    context = RunContext(run, owner, claim=claim)
    try:
        agent = get_agent(run)
        if getattr(agent, "batch_events", False):
            with context.batch():  # the claim is written with the first batch
                summary = agent.execute(context)
                return context.complete(summary)
        context.flush()  # the claim, before an agent that calls out does anything
        return context.complete(agent.execute(context))
    except NotClaimed:
        return "not claimed"
    except RunInterrupted as interrupted:
        lifecycle.release_lease(run_id, owner)
        return f"interrupted: {interrupted.status}"
    except WorkflowWaiting:
        lifecycle.release_lease(run_id, owner, requeue=False)
        return "waiting for child runs"
    except LeaseLost as lost:
        logger.warning("%s; leaving without further writes", lost)
        return "lease lost"
    except Exception as exc:  # the agent's failure is the run's failure, told in its events
        logger.exception("run %s failed", run_id)
        if not context.claimed:  # it failed before anything was written (an unknown agent, say)
            try:
                context.flush()
            except NotClaimed:
                return "not claimed"
        lifecycle.fail(run_id, f"{type(exc).__name__}: {exc}", owner=owner, parent_id=run.parent_id)
        return "failed"
