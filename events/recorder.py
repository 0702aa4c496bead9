"""The one way events are written.

`seq` comes from incrementing `Run.event_seq` in the same UPDATE that may also change the run
(status, lease, checkpoint). That UPDATE locks the run row until the transaction commits, so events of
one run commit in `seq` order: a reader polling `seq > cursor` can never skip an event that commits late.

Every step of every run passes through here, so a write costs two statements, `UPDATE ... RETURNING
event_seq` and `INSERT ... RETURNING id, seq` (for one event or several recorded together; on PostgreSQL
one, the UPDATE being a CTE of the INSERT), written as SQL from the models' own field definitions.
Building the same statements through the ORM's query compiler cost three times what the database spent
on them (profiled: bench/throughput.py). Conditions are Q objects of plain lookups; changes are values or
`F(field) + n` increments.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Model, Q, Value
from django.db.models.expressions import CombinedExpression
from django.utils import timezone

from events.models import Event, EventType
from runs.models import Run

_OPERATORS = {"exact": "= %s", "lt": "< %s", "lte": "<= %s", "gt": "> %s", "gte": ">= %s"}
_RUN = Run._meta
_EVENT = Event._meta
# run_id, seq and type go to the database as they are; these two are converted by their fields.
_PAYLOAD, _CREATED = _EVENT.get_field("payload"), _EVENT.get_field("created_at")


def without_nul(value: Any) -> Any:
    """PostgreSQL cannot store NUL in text or JSON: replace it (in keys and values) with U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(item) for item in value]
    return value


@functools.cache
def _column(name: str) -> tuple[str, Any]:
    field = _RUN.pk if name == "pk" else _RUN.get_field(name)
    return f'"{field.column}"', field  # quoted as both SQLite and PostgreSQL quote identifiers


# The statements' fixed parts. Column names in the variable parts come from the models' fields; values
# are always parameters.
_UPDATE = (
    'UPDATE "runs_run" SET "event_seq" = "event_seq" + %s{assignments} '
    'WHERE "id" = %s{where} RETURNING "event_seq"'
)
_INSERT = (
    'INSERT INTO "events_event" ("run_id", "seq", "type", "payload", "created_at") '
    'VALUES {rows} RETURNING "id", "seq"'
)
_INSERT_ROW = "(%s, %s, %s, %s, %s)"
_PG_WRITE = (
    "WITH run AS ({update}) "
    'INSERT INTO "events_event" ("run_id", "seq", "type", "payload", "created_at") '
    "SELECT %s, run.event_seq - %s + entry.n, entry.type, entry.payload::jsonb, "
    "entry.created_at::timestamptz "
    'FROM run, (VALUES {rows}) AS entry (n, type, payload, created_at) RETURNING "id", "seq"'
)


def _where(condition: Q, db: BaseDatabaseWrapper, sql: list[str], params: list[Any]) -> None:
    """`condition` as SQL: ANDed lookups exact, in, isnull, lt, lte, gt, gte on the run's own fields."""
    if condition.connector != Q.AND or condition.negated:
        raise ValueError(f"record_event conditions are ANDed lookups, not {condition!r}")
    for child in condition.children:
        if isinstance(child, Q):
            _where(child, db, sql, params)
            continue
        lookup, value = child
        name, _, operator = lookup.partition("__")
        column, field = _column(name)
        if operator == "isnull":
            sql.append(f"{column} IS {'' if value else 'NOT '}NULL")
        elif operator == "in":
            values = list(value)
            if not values:
                sql.append("1 = 0")
                continue
            sql.append(f"{column} IN ({', '.join(['%s'] * len(values))})")
            params.extend(field.get_db_prep_value(item, db) for item in values)
        elif (operator or "exact") in _OPERATORS:
            if value is None:
                raise ValueError(f"use {name}__isnull=True, not {lookup}=None")
            sql.append(f"{column} {_OPERATORS[operator or 'exact']}")
            params.append(field.get_db_prep_value(value, db))
        else:
            raise ValueError(f"record_event conditions cannot use the lookup {lookup!r}")


def _assignments(changes: dict[str, Any], db: BaseDatabaseWrapper, sql: list[str], params: list[Any]) -> None:
    for name, value in changes.items():
        column, field = _column(name)
        if isinstance(value, CombinedExpression):  # F("tokens") + 120
            lhs, rhs = value.lhs, value.rhs
            if not (value.connector == "+" and isinstance(lhs, F) and isinstance(rhs, Value)):
                raise ValueError(f"record_event changes take values or F(field) + n, not {value!r}")
            sql.append(f"{column} = {_column(lhs.name)[0]} + %s")
            params.append(rhs.value)
        elif hasattr(value, "resolve_expression"):
            raise ValueError(f"record_event changes take values or F(field) + n, not {value!r}")
        else:
            if isinstance(value, Model):
                value = value.pk
            elif isinstance(value, dict | list | str):
                value = without_nul(value)
            sql.append(f"{column} = %s")
            params.append(field.get_db_prep_save(value, db))


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
    written = record_events(run_id, [(event_type, payload)], condition=condition, changes=changes)
    return written[0] if written else None


def record_events(
    run_id: int,
    entries: list[tuple[EventType, dict[str, Any] | None]] | list[Event],
    *,
    condition: Q | None = None,
    changes: dict[str, Any] | None = None,
) -> list[Event] | None:
    """Append several events to a run in one write: the UPDATE takes as many numbers as there are events,
    one multi-row INSERT writes them. `entries` are (type, payload) pairs, or
    unsaved Events of this run (which keep their created_at and get their seq and id here).

    All or nothing: returns None, writing nothing, when the run does not exist or does not match
    `condition`.
    """
    db = connections[DEFAULT_DB_ALIAS]
    events = [
        entry if isinstance(entry, Event) else new_event(run_id, entry[0], entry[1]) for entry in entries
    ]
    if not events:
        raise ValueError("record_events needs at least one event")
    assignments: list[str] = []
    where: list[str] = []
    params: list[Any] = [len(events)]
    _assignments(changes or {}, db, assignments, params)
    params.append(run_id)
    if condition is not None:
        _where(condition, db, where, params)
    # Everything is prepared before the transaction: on SQLite it holds the one write lock.
    rows = [
        [event.run_id, 0, str(event.type), _PAYLOAD.get_db_prep_save(event.payload, db),
         _CREATED.get_db_prep_save(event.created_at, db)]
        for event in events
    ]  # fmt: skip
    update = _UPDATE.format(
        assignments="".join(f", {item}" for item in assignments),
        where="".join(f" AND {item}" for item in where),
    )
    if db.vendor == "postgresql":
        ids = _write_in_one_statement(db, update, params, rows)
    else:
        ids = _write_in_one_transaction(db, update, params, rows)
    if ids is None:
        return None
    first = min(ids)
    for offset, event in enumerate(events):
        event.seq = first + offset
        event.pk = ids[event.seq]
        event._state.adding = False
        event._state.db = db.alias
    return events


def new_event(run_id: int, event_type: EventType, payload: dict[str, Any] | None = None) -> Event:
    """An unsaved event, stamped now, for `record_events` to write (alone or with others)."""
    payload = without_nul(payload or {})
    return Event(run_id=run_id, type=event_type, payload=payload, created_at=timezone.now())


def _write_in_one_transaction(
    db: BaseDatabaseWrapper, update: str, params: list[Any], rows: list[list[Any]]
) -> dict[int, int] | None:
    """The UPDATE, then the INSERT with the numbers it gave; {seq: id}, or None when no run matched."""
    with transaction.atomic(using=db.alias, savepoint=False), db.cursor() as cursor:
        cursor.execute(update, params)
        row = cursor.fetchone()
        if row is None:
            return None
        first = row[0] - len(rows) + 1
        values: list[Any] = []
        for offset, event_row in enumerate(rows):
            event_row[1] = first + offset
            values.extend(event_row)
        cursor.execute(_INSERT.format(rows=", ".join([_INSERT_ROW] * len(rows))), values)
        return {seq: pk for pk, seq in cursor.fetchall()}  # RETURNING gives rows in no set order


def _write_in_one_statement(
    db: BaseDatabaseWrapper, update: str, params: list[Any], rows: list[list[Any]]
) -> dict[int, int] | None:
    """PostgreSQL: the UPDATE as a CTE that the INSERT numbers its rows from, one round trip instead of
    four (BEGIN, UPDATE, INSERT, COMMIT). The UPDATE's row lock is held until the statement commits, so
    the order of commits is the order of seq, as with two statements."""
    values: list[Any] = [rows[0][0], len(rows)]
    for offset, (_, _, event_type, payload, created_at) in enumerate(rows, start=1):
        values.extend((offset, event_type, payload, created_at))
    sql = _PG_WRITE.format(update=update, rows=", ".join(["(%s, %s, %s, %s)"] * len(rows)))
    with db.cursor() as cursor:
        cursor.execute(sql, [*params, *values])
        written = cursor.fetchall()
    return {seq: pk for pk, seq in written} if written else None
