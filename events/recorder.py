"""The one way events are written.

`seq` comes from incrementing `Run.event_seq` in the same UPDATE that may also change the run
(status, lease, checkpoint). That UPDATE locks the run row until the transaction commits, so events of
one run commit in `seq` order: a reader polling `seq > cursor` can never skip an event that commits late.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F, Q

from events.models import Event, EventType
from runs.models import Run


def without_nul(value: Any) -> Any:
    """PostgreSQL cannot store NUL in text or JSON: replace it (in keys and values) with U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(item) for item in value]
    return value


def record_event(
    run_id: int,
    event_type: EventType,
    payload: dict[str, Any] | None = None,
    *,
    condition: Q | None = None,
    changes: dict[str, Any] | None = None,
) -> Event | None:
    """Append an event to a run, applying `changes` to the run row in the same statement.

    Returns None, writing nothing, when the run does not exist or does not match `condition`.
    """
    payload = without_nul(payload or {})
    changes = {
        key: without_nul(item) if isinstance(item, dict | list | str) else item
        for key, item in (changes or {}).items()
    }
    query = Run.objects.filter(pk=run_id)
    if condition is not None:
        query = query.filter(condition)
    with transaction.atomic(savepoint=False):
        if not query.update(event_seq=F("event_seq") + 1, **changes):
            return None
        seq = Run.objects.filter(pk=run_id).values_list("event_seq", flat=True).get()
        return Event.objects.create(run_id=run_id, seq=seq, type=event_type, payload=payload)
