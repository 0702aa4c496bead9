"""SQLite shared by several processes: writers queue on a file lock instead of polling in SQLite's busy
handler.

SQLite lets one writer in at a time. A writer that finds the database locked sleeps in SQLite's busy
handler for 1, 2, 5, 10 ... up to 100 ms before it looks again, so with a few busy processes (web threads,
django-q2's pusher and monitor, the workers) the lock mostly sits free while they sleep. Measured with two
workers (bench/throughput.py, py-spy): workers spent a third of their time in BEGIN IMMEDIATE and the
pusher two thirds in its dequeue UPDATE.

Here every write transaction, and every write statement outside one, first takes an exclusive flock on
`<database>-writers.lock`. A waiter sleeps in the kernel and is woken the moment the holder lets go: no
polling, no CPU spent waiting (polling in Python every 20-500 us, tried first, cost about 1 ms of CPU per
run under contention, and a helper thread to bound the wait cost a third of the throughput). Like a row
lock on PostgreSQL (whose lock_timeout is off by default), the wait has no time limit: write transactions
last milliseconds, and the kernel drops the lock of a process that dies, so a killed worker never leaves
it held. A process frozen inside a write transaction (SIGSTOP) holds it until it resumes, as it would
hold SQLite's own lock. Readers never take it (WAL lets them read while one writer writes). SQLite's own
busy handler (OPTIONS["timeout"]) stays as the backstop for writers that do not come through Django (the
sqlite3 shell, say).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from typing import Any

from django.db.backends.sqlite3 import base

# Statements that never write, or that belong to a transaction the lock already covers.
_NOT_WRITES = ("SELECT", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA", "EXPLAIN")


class WritersLock:
    """An exclusive flock on one file, per connection; reopened after a fork."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0
        self._held = False

    @property
    def held(self) -> bool:
        return self._held and self._pid == os.getpid()

    def acquire(self) -> None:
        if self._pid != os.getpid():  # a fork inherited the descriptor: the lock is the parent's
            self._fd, self._pid, self._held = None, os.getpid(), False
        if self._held:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # sleeps in the kernel (without the GIL) until its turn
        self._held = True

    def release(self) -> None:
        if self.held and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._held = False

    def close(self) -> None:
        self.release()
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


class CursorWrapper(base.SQLiteCursorWrapper):
    writers: WritersLock | None = None

    @contextlib.contextmanager
    def _turn(self, query: str) -> Iterator[None]:
        """A write statement outside a transaction takes its turn for just that statement."""
        lone_write = (
            self.writers is not None
            and not self.writers.held
            and not self.connection.in_transaction
            and not query.lstrip()[:9].upper().startswith(_NOT_WRITES)
        )
        if not lone_write:
            yield
            return
        self.writers.acquire()
        try:
            yield
        finally:
            self.writers.release()

    def execute(self, query: str, params: Any = None) -> Any:
        with self._turn(query):
            return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        with self._turn(query):
            return super().executemany(query, param_list)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writers: WritersLock | None = None

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        path = f"{self.settings_dict['NAME']}-writers.lock"
        if self._writers is not None and self._writers.path != path:  # the test runner renamed the database
            self._writers.close()
            self._writers = None
        if self._writers is None and not self.is_in_memory_db():
            self._writers = WritersLock(path)
        return connection

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = self.connection.cursor(factory=CursorWrapper)
        cursor.writers = self._writers
        return cursor

    def _start_transaction_under_autocommit(self) -> None:
        if self._writers is not None:
            self._writers.acquire()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writers()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._release_writers()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._release_writers()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            if self._writers is not None:
                self._writers.close()

    def _release_writers(self) -> None:
        # COMMIT may fail and leave the transaction open; the lock goes only once it is closed.
        if self._writers is not None and not (self.connection and self.connection.in_transaction):
            self._writers.release()
