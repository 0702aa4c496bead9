"""Shared fixtures: users alice / bob, API clients, projects inside a temporary PROJECT_ROOTS, runs."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from projects.models import Project
from runs.models import Run
from runs.services import create_run

BASE_DIR = Path(__file__).resolve().parent.parent


def pytest_report_header(config: Any) -> str:
    url = os.environ.get("DATABASE_URL", "")
    return f"database: {url.split('@')[-1] if url else 'SQLite (default)'}"


@pytest.fixture(autouse=True)
def workspace_root(tmp_path: Path, settings: Any) -> Path:
    """Run worktrees of each test in its own temporary directory."""
    settings.WORKSPACE_ROOT = tmp_path / "workspaces"
    return settings.WORKSPACE_ROOT


@pytest.fixture
def project_root(tmp_path: Path, settings: Any) -> Path:
    root = tmp_path / "projects"
    root.mkdir()
    settings.PROJECT_ROOTS = [str(root)]
    return root


@pytest.fixture
def make_repo(project_root: Path):
    """A real git repository with one commit, inside the project roots."""

    def make(name: str = "repo") -> Path:
        path = project_root / name
        path.mkdir()
        git = ["git", "-C", str(path), "-c", "user.name=Test", "-c", "user.email=test@example.com"]
        subprocess.run([*git[:3], "init", "-q", "-b", "main"], check=True)
        (path / "README.md").write_text("# demo\n")
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "initial"], check=True)
        return path

    return make


@pytest.fixture
def alice(db: None):
    return get_user_model().objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(db: None):
    return get_user_model().objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def api(alice) -> APIClient:
    """An API client authenticated with alice's token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def project(make_repo) -> Project:
    return Project.objects.create(name="demo", local_path=str(make_repo("demo")))


@pytest.fixture
def make_run(project: Project):
    def make(**kwargs: Any) -> Run:
        options = {"agent": "simple", "step_seconds": 0, **kwargs.pop("options", {})}
        return create_run(
            project_id=kwargs.pop("project_id", project.pk),
            goal=kwargs.pop("goal", "Do the thing"),
            run_options=options,
            **kwargs,
        )

    return make


def worker_database_url() -> str:
    """DATABASE_URL under which a worker subprocess opens the test database this test uses."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


class WorkerThread(threading.Thread):
    """execute_run in a thread with its own database connection, as a worker process would."""

    def __init__(self, run_id: int) -> None:
        super().__init__(daemon=True)
        self.run_id = run_id
        self.result: str | None = None

    def run(self) -> None:
        from runs.execution import execute_run

        try:
            self.result = execute_run(self.run_id)
        finally:
            connection.close()
