"""Every change of a run's status, and of its worker lease, happens here.

Operator actions follow the transition table below:

    from        pause     resume                          stop
    QUEUED      PAUSED    409                             STOPPED
    RUNNING     PAUSED    409                             STOPPED
    PAUSED      409       RUNNING (QUEUED if never        STOPPED
                          started)
    terminal    409       409                             409

Workers claim runnable runs (QUEUED or RUNNING without a lease) and finish them (COMPLETED / FAILED).
Each change is one conditional UPDATE, made by the event recorder together with the event that tells of
it, in one transaction. STOPPED, COMPLETED and FAILED never change again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from types import EllipsisType
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from config.errors import InvalidTransition, NotFound
from events.models import Event, EventType
from events.recorder import new_event, record_event, record_events
from runs import selectors
from runs.models import ACTIVE_STATUSES, RUNNABLE_STATUSES, ReviewState, Run, RunStatus


class Action(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


def _resume_target(started: bool) -> RunStatus:
    return RunStatus.RUNNING if started else RunStatus.QUEUED


# action -> {from status: function(started) -> to status}
TRANSITIONS: dict[Action, dict[RunStatus, Callable[[bool], RunStatus]]] = {
    Action.PAUSE: {
        RunStatus.QUEUED: lambda started: RunStatus.PAUSED,
        RunStatus.RUNNING: lambda started: RunStatus.PAUSED,
    },
    Action.RESUME: {RunStatus.PAUSED: _resume_target},
    Action.STOP: {
        RunStatus.QUEUED: lambda started: RunStatus.STOPPED,
        RunStatus.RUNNING: lambda started: RunStatus.STOPPED,
        RunStatus.PAUSED: lambda started: RunStatus.STOPPED,
    },
}

ACTION_EVENTS = {
    Action.PAUSE: EventType.RUN_PAUSED,
    Action.RESUME: EventType.RUN_RESUMED,
    Action.STOP: EventType.RUN_STOPPED,
}

_CLEARED_LEASE = {"lease_owner": None, "lease_expires_at": None}


def allowed_actions(status: str) -> list[Action]:
    """The operator actions valid from `status`, for consoles that show only what can be done."""
    return [action for action, table in TRANSITIONS.items() if status in table]


def apply_action(run_id: int, action: Action, *, actor: str | None = None) -> Run:
    """Pause, resume or stop a run; raises InvalidTransition (409) or NotFound (404)."""
    table = TRANSITIONS[action]
    with transaction.atomic():
        for _ in range(5):
            row = Run.objects.filter(pk=run_id).values("status", "started_at").first()
            if row is None:
                raise NotFound(f"Run {run_id} does not exist.")
            current = RunStatus(row["status"])
            if current not in table:
                raise InvalidTransition(
                    f"Cannot {action} run {run_id}: it is {current}. Allowed from {', '.join(sorted(table))}."
                )
            target = table[current](row["started_at"] is not None)
            changes: dict[str, Any] = {"status": target}
            if action is Action.STOP:
                changes["finished_at"] = timezone.now()
            payload = {"actor": actor, "from": current, "to": target}
            if record_event(
                run_id, ACTION_EVENTS[action], payload, condition=Q(status=current), changes=changes
            ):
                _tell_integrations(run_id, ACTION_EVENTS[action])
                if action is Action.RESUME:
                    _enqueue_on_commit(run_id)
                _apply_to_children(run_id, action, actor)
                return Run.objects.select_related("project", "created_by").get(pk=run_id)
        raise InvalidTransition(f"Run {run_id} changed while it was being updated; try again.")


def _apply_to_children(run_id: int, action: Action, actor: str | None) -> None:
    """Pause, resume or stop of a workflow applies to its children that can take it."""
    sources = list(TRANSITIONS[action])
    for child_id in Run.objects.filter(parent_id=run_id, status__in=sources).values_list("pk", flat=True):
        with contextlib.suppress(InvalidTransition):
            apply_action(child_id, action, actor=actor)


@dataclass
class Claim:
    """A worker's claim of a run, made from the row as read: `run` already shows the claim's changes, and
    `write_claim` makes it real with one conditional write (with the events that follow it, for an agent
    whose first events come at once). The condition compares `attempt`, which every claim increments, so
    of two workers that read the same row only one claim is written."""

    run: Run
    condition: Q
    changes: dict[str, Any]
    started: Event  # RUN_STARTED, not yet written


def prepare_claim(run_id: int, owner: str) -> Claim | None:
    """Read the run (outside any transaction: the worker needs the row anyway) and prepare its claim; None
    when it is not runnable or another worker holds it. Nothing is written."""
    run = selectors.run_for_worker(run_id)
    if run is None or run.status not in RUNNABLE_STATUSES or run.lease_owner is not None:
        return None
    now = timezone.now()
    changes = {
        "status": RunStatus.RUNNING,
        "lease_owner": owner,
        "lease_expires_at": now + timedelta(seconds=settings.RUN_LEASE_SECONDS),
        "attempt": run.attempt + 1,
        "started_at": run.started_at or now,
    }
    started = new_event(
        run_id,
        EventType.RUN_STARTED,
        {"worker": owner, "attempt": run.attempt + 1, "from_step": run.current_iteration + 1},
    )
    condition = Q(status__in=RUNNABLE_STATUSES, lease_owner__isnull=True, attempt=run.attempt)
    for field, value in changes.items():
        setattr(run, field, value)
    return Claim(run, condition, changes, started)


def write_claim(
    claim: Claim, following: list[Event] | None = None, following_changes: dict[str, Any] | None = None
) -> bool:
    """Write the claim, with the events that `following` recorded after RUN_STARTED (and the run changes
    they bring) in the same statement. False, writing nothing, when another worker claimed the run since it
    was read, or an operator paused or stopped it."""
    written = record_events(
        claim.run.pk,
        [claim.started, *(following or [])],
        condition=claim.condition,
        changes={**claim.changes, **(following_changes or {})},
    )
    if written is None:
        return False
    claim.run.event_seq = written[-1].seq
    if claim.run.attempt == 1:
        _tell_integrations(claim.run.pk, EventType.RUN_STARTED)
    return True


def claim(run_id: int, owner: str) -> Run | None:
    """Take the run for one worker: `prepare_claim` and `write_claim`. None when it is not runnable or
    another worker holds it."""
    prepared = prepare_claim(run_id, owner)
    if prepared is None or not write_claim(prepared):
        return None
    return prepared.run


def renew_lease(run_id: int, owner: str) -> bool:
    expires = timezone.now() + timedelta(seconds=settings.RUN_LEASE_SECONDS)
    return bool(Run.objects.filter(pk=run_id, lease_owner=owner).update(lease_expires_at=expires))


def release_lease(run_id: int, owner: str, *, requeue: bool = True) -> bool:
    """Give the run back without a status change. Re-enqueues it if it was resumed between the worker
    noticing the pause and letting go; a workflow waiting for its children is woken by them instead
    (and by any child that finished while it was letting go)."""
    with transaction.atomic():
        released = bool(Run.objects.filter(pk=run_id, lease_owner=owner).update(**_CLEARED_LEASE))
        runnable = Run.objects.filter(pk=run_id, status__in=RUNNABLE_STATUSES).exists()
        if released and runnable and (requeue or _children_all_settled(run_id)):
            _enqueue_on_commit(run_id)
    return released


def _children_all_settled(run_id: int) -> bool:
    """A waiting workflow must look again when none of its children is still on the way."""
    return not Run.objects.filter(parent_id=run_id, status__in=ACTIVE_STATUSES).exists()


def worker_fence(owner: str) -> Q:
    """The condition every write of a working agent carries: it holds the lease and was not stopped."""
    return Q(lease_owner=owner, status__in=[RunStatus.RUNNING, RunStatus.PAUSED])


def complete(
    run_id: int,
    owner: str,
    payload: dict[str, Any] | None = None,
    *,
    changed_files: bool = False,
    preceding: list[Event] | None = None,
    preceding_changes: dict[str, Any] | None = None,
    parent_id: int | EllipsisType | None = ...,
    claim: Claim | None = None,
) -> Event | None:
    """Finish a run under its lease. A run that changed files waits for review (REVIEW_REQUESTED).

    `preceding` are the agent's last events, not yet written (with the run changes they bring): they are
    written in the same statement, before RUN_COMPLETED, or, when the run cannot complete, not at all.
    A run whose `claim` is not written yet (an agent that finished before its first write) is claimed and
    completed in that one statement, under the claim's condition.
    A worker that knows the run's parent passes `parent_id` (None: it has none); otherwise it is read.
    """
    condition = Q(lease_owner=owner, status=RunStatus.RUNNING)
    changes: dict[str, Any] = {**(preceding_changes or {})}
    events = [*(preceding or [])]
    if claim is not None:
        condition, changes, events = claim.condition, {**claim.changes, **changes}, [claim.started, *events]
    changes.update(status=RunStatus.COMPLETED, finished_at=timezone.now(), **_CLEARED_LEASE)
    completed_at = len(events)
    events.append(new_event(run_id, EventType.RUN_COMPLETED, payload))
    if changed_files:
        changes["review_state"] = ReviewState.PENDING
        events.append(new_event(run_id, EventType.REVIEW_REQUESTED, {"files_changed": True}))
    written = record_events(run_id, events, condition=condition, changes=changes)
    if written is None:
        return None
    if claim is not None and claim.run.attempt == 1:
        _tell_integrations(run_id, EventType.RUN_STARTED)
    detail = "Changes await review." if changed_files else ""
    _tell_integrations(run_id, EventType.RUN_COMPLETED, detail, parent_id=parent_id)
    return written[completed_at]


def fail(
    run_id: int,
    reason: str,
    *,
    owner: str | None = None,
    details: dict[str, Any] | None = None,
    parent_id: int | EllipsisType | None = ...,
) -> Event | None:
    """Fail a run that is still active (and, for a worker, still its own); `parent_id` as for complete()."""
    condition = Q(status__in=ACTIVE_STATUSES)
    if owner is not None:
        condition &= Q(lease_owner=owner)
    changes = {"status": RunStatus.FAILED, "error": reason, "finished_at": timezone.now(), **_CLEARED_LEASE}
    payload = {"reason": reason, **(details or {})}
    event = record_event(run_id, EventType.RUN_FAILED, payload, condition=condition, changes=changes)
    if event is not None:
        _tell_integrations(run_id, EventType.RUN_FAILED, reason[:300], parent_id=parent_id)
    return event


def recover_lost_worker(run_id: int, owner: str) -> str | None:
    """The lease of `owner` expired: record WORKER_LOST and queue the run again from its checkpoint, or
    fail it when it has lost RUN_MAX_ATTEMPTS workers. Returns "requeued", "failed" or None."""
    now = timezone.now()
    with transaction.atomic():
        row = Run.objects.filter(pk=run_id).values("status", "workers_lost", "current_iteration").first()
        if row is None:
            return None
        lost = row["workers_lost"] + 1
        event = record_event(
            run_id,
            EventType.WORKER_LOST,
            {"worker": owner, "workers_lost": lost, "checkpoint_step": row["current_iteration"]},
            condition=Q(lease_owner=owner, lease_expires_at__lt=now, status__in=ACTIVE_STATUSES),
            changes={"workers_lost": F("workers_lost") + 1, **_CLEARED_LEASE},
        )
        if event is None:
            return None
        if lost >= settings.RUN_MAX_ATTEMPTS:
            fail(
                run_id,
                f"Worker lost {lost} times (RUN_MAX_ATTEMPTS = {settings.RUN_MAX_ATTEMPTS}); giving up.",
            )
            return "failed"
        if row["status"] in RUNNABLE_STATUSES:
            _enqueue_on_commit(run_id)
        return "requeued"


class ReviewAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    ROLLBACK = "rollback"


# action -> (review state it applies to, review state it leads to, event)
REVIEW_TRANSITIONS: dict[ReviewAction, tuple[ReviewState, ReviewState, EventType]] = {
    ReviewAction.APPROVE: (ReviewState.PENDING, ReviewState.APPROVED, EventType.CHANGES_APPROVED),
    ReviewAction.REJECT: (ReviewState.PENDING, ReviewState.REJECTED, EventType.CHANGES_REJECTED),
    ReviewAction.ROLLBACK: (ReviewState.APPROVED, ReviewState.ROLLED_BACK, EventType.CHANGES_ROLLED_BACK),
}


def check_review(run_id: int, action: ReviewAction) -> Run:
    """The run, if `action` applies to it now; InvalidTransition (409) or NotFound otherwise."""
    run = Run.objects.select_related("project").filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"Run {run_id} does not exist.")
    source = REVIEW_TRANSITIONS[action][0]
    if run.status != RunStatus.COMPLETED or run.review_state != source:
        raise InvalidTransition(
            f"Cannot {action} run {run_id}: its review state is {run.review_state} (status {run.status}); "
            f"{action} applies to completed runs whose review state is {source}."
        )
    return run


def apply_review(
    run_id: int,
    action: ReviewAction,
    *,
    user: Any = None,
    comment: str = "",
    payload: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
) -> Run:
    """Move the run's review state and record what was done, in one conditional statement."""
    source, target, event_type = REVIEW_TRANSITIONS[action]
    actor = user.get_username() if user is not None and user.is_authenticated else None
    fields: dict[str, Any] = {"review_state": target, **(changes or {})}
    if action is not ReviewAction.ROLLBACK:
        fields.update(reviewed_by=user if actor else None, reviewed_at=timezone.now(), review_comment=comment)
    event = record_event(
        run_id,
        event_type,
        {"actor": actor, "comment": comment, **(payload or {})},
        condition=Q(status=RunStatus.COMPLETED, review_state=source),
        changes=fields,
    )
    if event is None:
        check_review(run_id, action)
        raise InvalidTransition(f"Run {run_id} changed while it was being reviewed; try again.")
    _tell_integrations(run_id, event_type, comment)
    return Run.objects.select_related("project", "created_by").get(pk=run_id)


def _tell_integrations(
    run_id: int, event_type: EventType, detail: str = "", *, parent_id: int | EllipsisType | None = ...
) -> None:
    from runs import taiga

    taiga.report_on_commit(run_id, event_type, detail)
    if event_type in (EventType.RUN_COMPLETED, EventType.RUN_FAILED, EventType.RUN_STOPPED):
        if parent_id is ...:
            parent_id = selectors.parent_id_of(run_id)
        if parent_id:
            _enqueue_on_commit(parent_id)  # its workflow goes on (or fails) now


def _enqueue_on_commit(run_id: int) -> None:
    from runs.tasks import enqueue_run

    transaction.on_commit(lambda: enqueue_run(run_id))
