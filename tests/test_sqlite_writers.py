"""SQLite writers take turns on a file lock (config/sqlite): a waiter sleeps until the holder is done and
then goes in, and a holder that dies leaves nothing held."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
from django.db import connection, transaction

from config.sqlite.base import WritersLock
from projects.models import Project

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the writers' lock is SQLite's")


def test_it_lets_one_holder_in_at_a_time_and_the_next_in_when_it_lets_go(tmp_path):
    path = str(tmp_path / "db-writers.lock")
    first, second = WritersLock(path), WritersLock(path)
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
    assert second.held and not first.held
    second.release()
    first.acquire()  # free again, and a lock can be taken again after it let go
    first.release()


def test_it_is_free_again_when_its_holder_is_killed(tmp_path):
    path = str(tmp_path / "db-writers.lock")
    code = (
        "import sys, time; from config.sqlite.base import WritersLock; "
        f"lock = WritersLock({path!r}); lock.acquire(); print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        waiter = WritersLock(path)
        entered = threading.Event()
        thread = threading.Thread(target=lambda: (waiter.acquire(), entered.set()), daemon=True)
        thread.start()
        assert not entered.wait(0.3), "the waiter went in while the other process held the lock"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        assert entered.wait(5), "the lock of a killed process was not freed"
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
