"""Run the web server (gunicorn) and the workers (qcluster) together until Ctrl-C, then stop both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import environ
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start gunicorn on HOST:PORT and `manage.py qcluster`; stop both cleanly on Ctrl-C or SIGTERM."

    def handle(self, *args: Any, **options: Any) -> None:
        env = environ.Env()
        host = env.str("HOST", default="127.0.0.1")
        port = env.int("PORT", default=8000)
        bin_dir = os.path.dirname(sys.executable)
        commands = {
            "web": [
                os.path.join(bin_dir, "gunicorn"),
                "config.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(settings.WEB_CONCURRENCY),
                "--threads",
                str(settings.WEB_THREADS),
                "--worker-class",
                "gthread",
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "5",
            ],
            "worker": [sys.executable, os.path.join(settings.BASE_DIR, "manage.py"), "qcluster"],
        }
        processes = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR) for name, cmd in commands.items()}
        shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
        self.stdout.write(
            f"\nAgent Runner is up:\n"
            f"  console  http://{shown_host}:{port}/\n"
            f"  API      http://{shown_host}:{port}/api/   docs http://{shown_host}:{port}/docs\n"
            f"  admin    http://{shown_host}:{port}/admin/\n"
            f"  health   http://{shown_host}:{port}/health\n"
            f"  log in as {env.str('ADMIN_USERNAME', default='admin')} "
            "(password: ADMIN_PASSWORD, or the one printed when the user was created)\n"
            f"Press Ctrl-C to stop.\n"
        )
        self.stdout.flush()
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(p.poll() is None for p in processes.values()):
            time.sleep(0.2)
        exited = [name for name, p in processes.items() if p.poll() is not None]
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if exited and not stopping:
            self.stderr.write(f"{', '.join(exited)} exited unexpectedly; stopped the rest.")
            sys.exit(1)
        self.stdout.write("Stopped web and worker.")
