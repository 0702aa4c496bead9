"""Small display helpers for the console templates."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from django import template
from django.template.loader import get_template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

SUMMARY_KEYS = ("message", "description", "text", "reason", "summary", "result", "tool", "steps", "to")


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@register.filter
def event_summary(payload: Any) -> str:
    """One line that says what an event is about, from the first telling key of its payload."""
    if not isinstance(payload, dict):
        return ""
    parts = []
    if "step" in payload:
        parts.append(f"step {payload['step']}" + (f"/{payload['of']}" if "of" in payload else ""))
    for key in SUMMARY_KEYS:
        value = payload.get(key)
        if value and isinstance(value, str | list):
            text = "; ".join(map(str, value)) if isinstance(value, list) else str(value)
            parts.append(text if key not in ("to", "worker") else f"{key} {text}")
            break
    if payload.get("actor"):
        parts.append(f"by {payload['actor']}")
    line = " · ".join(parts)
    return line if len(line) <= 240 else f"{line[:237]}…"


@register.simple_tag
def duration(start: Any, end: Any = None) -> str:
    """'6s', '2m 5s', '1h 3m' between two datetimes (end: now); '—' before the start."""
    from django.utils import timezone

    if not start:
        return "—"
    seconds = int(((end or timezone.now()) - start).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


@register.filter
def ago(value: Any) -> str:
    """'just now', '4 minutes ago', '2 hours ago': the largest unit only, the exact time goes in a title."""
    from django.utils import timezone
    from django.utils.timesince import timesince

    if not value:
        return "—"
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value, depth=1)} ago"


@register.filter
def compact_items(value: Any) -> list[tuple[str, str]]:
    """A dict as (key, short text) pairs for one line of a header; nested values as compact JSON, cut."""
    if not isinstance(value, dict):
        return []
    pairs = []
    for key, item in value.items():
        text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        pairs.append((str(key), text if len(text) <= 60 else f"{text[:59]}…"))
    return pairs


@register.simple_tag
def cached_services() -> list[dict[str, Any]] | None:
    """The status bar's last probe results for a page render: read from the cache, never probed here."""
    from config import status

    return status.cached()


class _RenderedRows:
    """Rendered event rows by event, newest kept: an event never changes, so its row is rendered once per
    process however many operators watch the run (the poll of a run page costs this much less; see
    bench/load.py). Rows over ROW_LIMIT bytes are not kept, so the cache stays small whatever it holds."""

    SIZE = 4096
    ROW_LIMIT = 16 * 1024

    def __init__(self) -> None:
        self._rows: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, event: Any) -> str:
        # The time is in the key too, so that a database rebuilt under a running process (ids start again)
        # never shows another event's row.
        key = (event.pk, event.run_id, event.seq, event.type, event.created_at)
        with self._lock:
            row = self._rows.get(key)
            if row is not None:
                self._rows.move_to_end(key)
                return row
        row = get_template("runs/detail.html#event-row").render({"event": event})
        if len(row) <= self.ROW_LIMIT:
            with self._lock:
                self._rows[key] = row
                if len(self._rows) > self.SIZE:
                    self._rows.popitem(last=False)
        return row


_rendered_rows = _RenderedRows()


@register.simple_tag
def event_rows(events: list[Any]) -> str:
    """The log's rows for `events`, each rendered once per process."""
    return mark_safe("".join(_rendered_rows.get(event) for event in events))  # noqa: S308 - rendered templates


@register.filter
def status_badge(status: str) -> str:
    """A run's status as a badge: its name, coloured by its class."""
    return format_html('<span class="badge status-{}">{}</span>', str(status).lower(), status)
