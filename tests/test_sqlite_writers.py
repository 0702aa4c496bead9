"""SQLite writers take turns on a file lock (config/sqlite): a waiter goes in as soon as the holder is done,
gives up after the busy timeout with "database is locked", and a holder that dies leaves nothing held."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import OperationalError, connection, transaction

from config.sqlite.base import WritersLock
from projects.models import Project

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the writers' lock is SQLite's")


def test_it_lets_one_holder_in_at_a_time_and_the_next_in_when_it_lets_go(tmp_path):
    path = str(tmp_path / "db-writers.lock")
    first, second = WritersLock(path, timeout=5), WritersLock(path, timeout=5)
    first.acquire()
    entered = threading.Event()

    def wait_for_turn() -> None:
        second.acquire()
        entered.set()

    waiter = threading.Thread(target=wait_for_turn)
    waiter.start()
    assert not entered.wait(0.3), "the second writer went in while the first held the lock"
    first.release()
    assert entered.wait(5)
    waiter.join()
    second.release()


def test_it_gives_up_after_the_busy_timeout_saying_the_database_is_locked(tmp_path):
    path = str(tmp_path / "db-writers.lock")
    holder, waiter = WritersLock(path, timeout=5), WritersLock(path, timeout=0.2)
    holder.acquire()
    started = time.monotonic()
    with pytest.raises(OperationalError, match="database is locked"):
        waiter.acquire()
    assert time.monotonic() - started >= 0.2
    holder.release()
    waiter.acquire()  # free again: the failed waiter is not left in a broken state
    waiter.release()


def test_it_is_free_again_when_its_holder_is_killed(tmp_path):
    path = str(tmp_path / "db-writers.lock")
    code = (
        "import sys, time; from config.sqlite.base import WritersLock; "
        f"lock = WritersLock({path!r}, 5); lock.acquire(); print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        waiter = WritersLock(path, timeout=0.2)
        with pytest.raises(OperationalError):
            waiter.acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        waiter.timeout = 5
        waiter.acquire()
        waiter.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


@pytest.mark.django_db(transaction=True)
def test_it_holds_the_lock_for_a_whole_transaction_and_for_a_lone_write(tmp_path):
    writers = connection._writers
    assert writers is not None and writers.path.endswith("-writers.lock")
    with transaction.atomic():
        assert writers.held
        Project.objects.create(name="inside", local_path=str(tmp_path))
        assert writers.held
    assert not writers.held
    seen: list[bool] = []
    original = WritersLock.acquire

    def spy(self: WritersLock) -> None:
        original(self)
        seen.append(self.held)

    WritersLock.acquire = spy
    try:
        Project.objects.filter(name="inside").update(name="outside")  # autocommit: one statement
        list(Project.objects.all())  # a read takes no turn
    finally:
        WritersLock.acquire = original
    assert seen == [True]
    assert not writers.held


@pytest.mark.django_db(transaction=True)
def test_it_lets_go_when_a_transaction_fails(tmp_path):
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        Project.objects.create(name="rolled-back", local_path=str(tmp_path))
        raise ZeroDivisionError
    assert not connection._writers.held
    assert not Project.objects.filter(name="rolled-back").exists()
