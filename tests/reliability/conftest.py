"""Real worker processes (`manage.py qcluster`) against the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import BASE_DIR, worker_database_url
from tests.runs.conftest import scripted_llm  # noqa: F401 (fixture)


class Cluster:
    def __init__(self, log: Path, **env: str) -> None:
        environment = {
            **os.environ,
            "DATABASE_URL": worker_database_url(),
            "RUN_LEASE_SECONDS": "2",
            "WORKER_CONCURRENCY": "2",
            "WORKER_LOG_LEVEL": "INFO",
            "WORKSPACE_ROOT": str(settings.WORKSPACE_ROOT),  # this test's, never the checkout's var/
            **env,
        }
        self.log = log
        self._log_handle = open(log, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.process = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), "qcluster"],
            cwd=BASE_DIR, env=environment, stdout=self._log_handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)
        self._log_handle.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    started: list[Cluster] = []

    def start(**env: str) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster-{len(started)}.log", **env)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.kill()


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
