"""A throw-away Agent Runner installation for benchmarks: its own database, gunicorn and qcluster."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 0.50) * 1000, 1),
        "p95_ms": round(percentile(values, 0.95) * 1000, 1),
        "p99_ms": round(percentile(values, 0.99) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
    }


def report(result: dict[str, Any]) -> None:
    """Hand a benchmark's result to bench/run.py (which runs each benchmark in its own process)."""
    target = os.environ.get("BENCH_RESULT_FILE")
    if target:
        Path(target).write_text(json.dumps(result))


def make_repository(path: Path) -> None:
    """Make `path` a git repository with one commit, as the project of a writing agent or pipeline must be."""
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, timeout=30)
    (path / "README.md").write_text("# bench\n")
    subprocess.run(["git", "-C", str(path), *identity, "add", "."], check=True, timeout=30)
    subprocess.run(
        ["git", "-C", str(path), *identity, "commit", "-q", "-m", "initial"], check=True, timeout=30
    )


def django_setup(install: Installation) -> None:
    """Use the installation's database from this process too (for fixtures and direct queries)."""
    for key in ("DATABASE_URL", "AGENT_RUNNER_VAR_DIR", "PROJECT_ROOTS"):
        os.environ[key] = install.env[key]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


class Installation:
    """Migrated database + admin token; start_web() / start_workers() spawn real processes."""

    def __init__(self, **env: str) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="agent-runner-bench-")
        root = Path(self.tmp.name)
        database = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{root / 'bench.sqlite3'}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database,
            "AGENT_RUNNER_VAR_DIR": str(root),
            "PROJECT_ROOTS": str(root),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.root = root
        self.processes: list[subprocess.Popen] = []
        self.manage("migrate", "--noinput", "-v", "0")
        if database.startswith("postgres"):
            self.manage("flush", "--noinput")
            self.manage("migrate", "--noinput", "-v", "0")
        self.project_dir = root / "project"
        self.project_dir.mkdir()
        self.username, self.password = "bench", "bench-pass-1"  # the superuser, for console logins
        self.token = self.manage(
            "shell",
            "-v",
            "0",
            "-c",
            "from django.contrib.auth.models import User; from rest_framework.authtoken.models import Token; "
            f"u = User.objects.create_superuser({self.username!r}, password={self.password!r}); "
            "print(Token.objects.create(user=u).key)",
        ).split()[-1]
        self.url = ""

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [PYTHON, str(BASE_DIR / "manage.py"), *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed: {done.stderr[-2000:]}")
        return done.stdout

    def spawn(self, *command: str, log: Path | None = None) -> subprocess.Popen:
        """Start a process in its own session; its stdout and stderr go to `log` (appended) or nowhere."""
        output = log.open("ab") if log is not None else subprocess.DEVNULL
        try:
            process = subprocess.Popen(
                command, cwd=BASE_DIR, env=self.env, stdout=output, stderr=output, start_new_session=True,
            )  # fmt: skip
        finally:
            if log is not None:
                output.close()  # the child holds its own copy
        self.processes.append(process)
        return process

    def start_web(self, log: Path | None = None) -> str:
        """gunicorn (gthread) on a free port, with the processes and threads `manage.py serve` gives it; with
        `log`, its error log and, as `make run` has, its access log go to that file."""
        django_setup(self)
        from django.conf import settings

        workers, threads = settings.WEB_CONCURRENCY, settings.WEB_THREADS
        port = free_port()
        access_log = ["--access-logfile", "-"] if log is not None else []
        self.spawn(
            str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--threads", str(threads), "--worker-class", "gthread", *access_log, log=log,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not come up")

    @property
    def engine(self) -> str:
        return "postgresql" if self.env["DATABASE_URL"].startswith("postgres") else "sqlite"

    def start_workers(self, log: Path | None = None) -> subprocess.Popen:
        self.workers = self.spawn(PYTHON, str(BASE_DIR / "manage.py"), "qcluster", log=log)
        return self.workers

    def stop_workers(self) -> None:
        process = getattr(self, "workers", None)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Token {self.token}"}, timeout=30)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        self.tmp.cleanup()

    def __enter__(self) -> Installation:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
