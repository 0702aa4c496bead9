"""What a worker does with a run: claim it, drive its agent, and leave cleanly.

The agent talks to the run only through `RunContext`, which fences every write with the worker's lease,
renews the lease while the agent works, and turns a pause or stop into `RunInterrupted` within
`CONTROL_CHECK_SECONDS`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import Any

from django.conf import settings

from config.errors import LeaseLost, RunInterrupted
from events.models import Event, EventType
from events.recorder import record_event
from runs import lifecycle, selectors
from runs.agents import get_agent
from runs.models import Run, RunStatus
from runs.workflow import WorkflowWaiting

logger = logging.getLogger(__name__)

CONTROL_CHECK_SECONDS = 0.2


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RunContext:
    """The run as one leased worker sees it."""

    def __init__(self, run: Run, owner: str) -> None:
        self.run = run
        self.owner = owner
        self._renewed_at = time.monotonic()
        self._checked_at = 0.0

    @property
    def run_id(self) -> int:
        return self.run.pk

    def check(self) -> None:
        """Raise RunInterrupted on pause or stop, LeaseLost when the run is no longer ours."""
        self._checked_at = time.monotonic()
        row = Run.objects.filter(pk=self.run_id).order_by().values_list("status", "lease_owner").first()
        if row is None or row[1] != self.owner:
            raise LeaseLost(f"run {self.run_id}: lease of {self.owner} is gone")
        if row[0] != RunStatus.RUNNING:
            raise RunInterrupted(row[0])
        if self._checked_at - self._renewed_at > settings.RUN_LEASE_SECONDS / 3:
            if not lifecycle.renew_lease(self.run_id, self.owner):
                raise LeaseLost(f"run {self.run_id}: lease of {self.owner} could not be renewed")
            self._renewed_at = self._checked_at

    def wait(self, seconds: float) -> None:
        """Wait while staying responsive to pause and stop."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(CONTROL_CHECK_SECONDS, remaining))
            self.check()

    def record(self, event_type: EventType, payload: dict[str, Any] | None = None, **changes: Any) -> Event:
        """Record an agent event (and run-row changes such as the checkpoint) under the lease."""
        event = record_event(
            self.run_id, event_type, payload, condition=lifecycle.worker_fence(self.owner), changes=changes
        )
        if event is None:
            self.check()
            raise LeaseLost(f"run {self.run_id}: write refused for {self.owner}")
        for field, value in changes.items():
            setattr(self.run, field, value)
        return event

    def apply_directives(self) -> list[str]:
        """Apply each directive received since the last one applied, once each, in order."""
        applied: list[str] = []
        pending = selectors.directives_after(self.run_id, self.run.directive_cursor)
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
    run = lifecycle.claim(run_id, owner)
    if run is None:
        return "not claimed"
    context = RunContext(run, owner)
    try:
        summary = get_agent(run).execute(context)
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
        lifecycle.fail(run_id, f"{type(exc).__name__}: {exc}", owner=owner)
        return "failed"
    if lifecycle.complete(run_id, owner, summary, changed_files=bool(summary.get("commits"))) is None:
        # A pause or stop arrived after the last step: it wins; a resumed run completes on its next claim.
        lifecycle.release_lease(run_id, owner)
        return "interrupted"
    return "completed"
