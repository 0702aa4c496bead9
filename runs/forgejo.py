"""Forgejo: push a run's branch and open a pull request instead of merging locally.

Configured by FORGEJO_URL + FORGEJO_TOKEN and the project's `forgejo_repo` ("owner/name"). The branch is
pushed to the project's `repo_url`, or FORGEJO_URL/owner/name.git; the token travels in an HTTP header
given to git for that one command, never in a remote URL, an event or a log.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings

from config.errors import Conflict, InvalidInput
from projects.models import Project
from runs.models import Run
from runs.workspace import GitError, git

API_TIMEOUT_SECONDS = 15.0


def is_configured(project: Project) -> bool:
    return bool(settings.FORGEJO_URL and settings.FORGEJO_TOKEN and project.forgejo_repo)


def push_url(project: Project) -> str:
    return project.repo_url or f"{settings.FORGEJO_URL.rstrip('/')}/{project.forgejo_repo}.git"


def _headers() -> dict[str, str]:
    return {"Authorization": f"token {settings.FORGEJO_TOKEN}", "Accept": "application/json"}


def open_pull_request(run: Run, *, comment: str = "") -> dict[str, Any]:
    """Push the run's branch and open a pull request into its base branch; returns {"url", "number"}."""
    project = run.project
    if not is_configured(project):
        raise InvalidInput(
            "strategy pull_request needs FORGEJO_URL and FORGEJO_TOKEN in the environment and the project's "
            "forgejo_repo (owner/name).",
            field="strategy",
        )
    if not run.base_branch:
        raise Conflict(f"Run {run.pk} has no base branch to open a pull request against.")
    header = f"http.extraHeader=Authorization: token {settings.FORGEJO_TOKEN}"
    try:
        git(
            "-c",
            header,
            "push",
            push_url(project),
            f"{run.branch}:refs/heads/{run.branch}",
            cwd=project.local_path,
        )
    except GitError as exc:
        raise Conflict(
            f"Pushing {run.branch} to Forgejo failed: {str(exc).replace(settings.FORGEJO_TOKEN, '***')}"
        ) from None
    owner, _, name = project.forgejo_repo.partition("/")
    body = {
        "title": f"Agent Runner run {run.pk}: {run.name}"[:255],
        "body": f"{run.goal}\n\n{comment}".strip(),
        "head": run.branch,
        "base": run.base_branch,
    }
    url = f"{settings.FORGEJO_URL.rstrip('/')}/api/v1/repos/{owner}/{name}/pulls"
    try:
        response = httpx.post(url, json=body, headers=_headers(), timeout=API_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise Conflict(f"Forgejo at {settings.FORGEJO_URL} did not answer: {type(exc).__name__}") from None
    if response.status_code != 201:
        raise Conflict(
            f"Forgejo refused the pull request (HTTP {response.status_code}): {response.text[:300]}"
        )
    created = response.json()
    return {"url": created.get("html_url") or created.get("url", ""), "number": created.get("number")}
