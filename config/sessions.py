"""Console sessions: Django's database sessions, with the session row read in one SQL statement.

Every console request reads its session; through the query compiler `Session.objects.get(...)` cost
~0.25 ms of CPU, about an eighth of a run page's poll (measured; bench/load.py). Saving, cycling and
deleting sessions stay Django's.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
    def _get_session_from_db(self) -> Any:
        model = self.model
        alias = router.db_for_read(model)
        connection = connections[alias]
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT session_data, expire_date FROM {table} "  # noqa: S608 (the model's table)
                "WHERE session_key = %s AND expire_date > %s",
                [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        # Only session_data is read from it (load); expire_date is kept as the database gave it.
        return model.from_db(alias, ["session_key", "session_data", "expire_date"], [self.session_key, *row])
