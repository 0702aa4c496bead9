"""Reads of runs shared by the API and the console, and the reads on the worker's hot path.

The worker reads its run when it claims it, checks its status (and whether directives came) between
steps and reads directives when some came; the run page's poll reads the run's live fields and a page of
events. Through the query compiler each of these cost 0.2-0.7 ms of CPU on a 2-core machine, and
`Manager.raw()` still spent 0.15 ms of the 0.17 ms of a claim's read resolving the same 37 columns'
converters and model (measured; bench/throughput.py). So those few are SQL, read through `config.rows`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from config.rows import convert, field_names, instances, select
from events.models import Event
from runs.models import Run


def run_list(
    *,
    status: str | None = None,
    project: int | None = None,
    run_type: str | None = None,
    q: str | None = None,
) -> QuerySet[Run]:
    """Runs newest first, filtered; project and creator joined so a page costs constant queries."""
    runs = Run.objects.select_related("project", "created_by").order_by("-created_at", "-id")
    if status:
        runs = runs.filter(status=status)
    if project:
        runs = runs.filter(project_id=project)
    if run_type:
        runs = runs.filter(run_type=run_type)
    if q:
        runs = runs.filter(Q(name__icontains=q) | Q(goal__icontains=q))
    return runs


_RUN_FIELDS = field_names(Run)


def run_for_worker(run_id: int) -> Run | None:
    """The whole run row (its project is loaded when an agent asks for it)."""
    found = instances(Run, _RUN_FIELDS, "FROM runs_run WHERE id = %s", [run_id])
    return found[0] if found else None


# What the header of a run's page shows, for the poll that refreshes it: read without the query compiler.
LIVE_FIELDS = ("status", "error", "current_iteration", "options", "started_at", "finished_at", "branch",
               "base_commit", "prompt_tokens", "completion_tokens")  # fmt: skip
# In the model's field order, which is the order Model.from_db() gives values to fields in.
_LIVE_COLUMNS = tuple(name for name in _RUN_FIELDS if name == "id" or name in LIVE_FIELDS)


def run_live(run_id: int) -> Run | None:
    """The run with only LIVE_FIELDS loaded (reading any other field costs a query of its own)."""
    found = instances(Run, _LIVE_COLUMNS, "FROM runs_run WHERE id = %s", [run_id])
    return found[0] if found else None


def run_control(run_id: int) -> tuple[str, str | None, int] | None:
    """(status, lease_owner, directive_seq): what a working agent checks between its steps, several times a
    second (it reads the directives themselves only when directive_seq is past the last one it applied)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, lease_owner, directive_seq FROM runs_run WHERE id = %s", [run_id])
        return cursor.fetchone()


def parent_id_of(run_id: int) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT parent_id FROM runs_run WHERE id = %s", [run_id])
        row = cursor.fetchone()
    return row[0] if row else None


def directives_after(run_id: int, seq: int) -> list[tuple[int, dict[str, Any]]]:
    """(seq, payload) of each DIRECTIVE_RECEIVED after `seq`, in order. The type is written into the SQL,
    not passed as a parameter, so that the database can use the partial index event_directives and never
    read the events between."""
    sql = "FROM events_event WHERE run_id = %s AND type = 'DIRECTIVE_RECEIVED' AND seq > %s ORDER BY seq"
    return [(row_seq, payload) for row_seq, payload in select(Event, ("seq", "payload"), sql, [run_id, seq])]


_EVENT_FIELDS = field_names(Event)


def events_after(run_id: int, after: int, limit: int) -> list[Event]:
    """The run's events with seq > `after`, in order, at most `limit`: what the run page's poll shows."""
    sql = "FROM events_event WHERE run_id = %s AND seq > %s ORDER BY seq LIMIT %s"
    return instances(Event, _EVENT_FIELDS, sql, [run_id, after, limit])


# seq, type, payload, created_at: the columns of the events API, converted as the ORM converts them.
EventRow = tuple[int, str, Any, datetime]
EVENT_ROW_FIELDS = ("seq", "type", "payload", "created_at")

# One statement answers both "does the run exist?" and "which events follow `after`?": no row when the run
# does not exist, one row of NULLs when it has no such events. The page is read through the unique (run,
# seq) index and limited inside the subquery, so only that page is sorted again, however long the run.
_EVENT_PAGE = (
    "SELECT page.seq, page.type, page.payload, page.created_at FROM runs_run LEFT JOIN "
    "(SELECT seq, type, payload, created_at FROM events_event WHERE run_id = %s AND seq > %s "
    "ORDER BY seq LIMIT %s) page ON 1 = 1 "
    "WHERE runs_run.id = %s ORDER BY page.seq"
)


def event_page(run_id: int, *, after: int, limit: int) -> list[EventRow] | None:
    """Up to `limit` events of the run with seq > `after`, in order; None when the run does not exist.

    Read as plain rows, without the query compiler or model instances: through the ORM a page of 100
    events cost ~1.3 ms of CPU, as SQL ~0.25 ms (measured; bench/events_api.py).
    """
    with connection.cursor() as cursor:
        cursor.execute(_EVENT_PAGE, [run_id, after, limit, run_id])
        rows = cursor.fetchall()
    if not rows:
        return None
    if rows[0][0] is None:
        return []
    return [tuple(values) for values in convert(rows, Event, EVENT_ROW_FIELDS)]
