"""Model rows read as SQL and converted as the ORM converts them, for the reads on hot paths.

Through the query compiler a one-row read cost 0.2-0.7 ms of CPU on a 2-core machine, and `Manager.raw()`
still spent most of its time resolving the same columns' converters and model (measured; bench/throughput.py,
bench/load.py). Here the converters of a column list are looked up once per connection; the statement is
written by the caller.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


@functools.lru_cache(maxsize=64)
def _converters(
    model: type[Model], names: tuple[str, ...], db: BaseDatabaseWrapper
) -> list[tuple[int, Converter, Any]]:
    """(column index, converter, column) for each converter the ORM would apply to these fields."""
    columns = [model._meta.get_field(name).get_col(model._meta.db_table) for name in names]
    return [
        (index, converter, column)
        for index, column in enumerate(columns)
        for converter in db.ops.get_db_converters(column) + column.get_db_converters(db)
    ]


def convert(rows: Sequence[Sequence[Any]], model: type[Model], names: tuple[str, ...]) -> list[list[Any]]:
    """Rows of these fields' columns, converted as the ORM converts them (JSON decoded, datetimes aware)."""
    db = connections[DEFAULT_DB_ALIAS]  # this thread's connection: converters are bound to its backend
    converters = _converters(model, names, db)
    converted = []
    for row in rows:
        values = list(row)
        for index, converter, column in converters:
            values[index] = converter(values[index], column, db)
        converted.append(values)
    return converted


def select(model: type[Model], names: tuple[str, ...], sql: str, params: Sequence[Any]) -> list[list[Any]]:
    """Rows of `SELECT <names' columns> <sql>`, converted. For `Model.from_db()`, `names` must be in the
    model's field order (it gives values to fields in that order)."""
    columns = ", ".join(model._meta.get_field(name).column for name in names)
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(f"SELECT {columns} {sql}", params)
        rows = cursor.fetchall()
    return convert(rows, model, names)


def field_names(model: type[Model]) -> tuple[str, ...]:
    """The attnames of the model's concrete fields, in its field order: the whole row, for `from_db()`."""
    return tuple(field.attname for field in model._meta.concrete_fields)


def instances[M: Model](model: type[M], names: tuple[str, ...], sql: str, params: Sequence[Any]) -> list[M]:
    """Model instances of the rows of `SELECT <names' columns> <sql>`, as the ORM would load them (fields
    not in `names` are deferred)."""
    return [model.from_db(DEFAULT_DB_ALIAS, names, row) for row in select(model, names, sql, params)]
