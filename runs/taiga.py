"""Taiga: a run reports to a user story or task (`metadata.taiga_ref`, or one it creates with
`options.taiga_create`). Status changes and the review outcome become comments there. Taiga being down is
an INTEGRATION_ERROR event, never a failure of the run.

Configured by TAIGA_URL + TAIGA_TOKEN and the project's `taiga_project` (its slug).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction

from events.models import EventType
from events.recorder import record_event
from runs.models import Run

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10.0
KIND_PATHS = {"us": "userstories", "task": "tasks", "issue": "issues"}
# Events worth a comment on the Taiga item.
REPORTED = {
    EventType.RUN_STARTED: "started",
    EventType.RUN_PAUSED: "paused",
    EventType.RUN_RESUMED: "resumed",
    EventType.RUN_STOPPED: "stopped",
    EventType.RUN_COMPLETED: "completed",
    EventType.RUN_FAILED: "failed",
    EventType.CHANGES_APPROVED: "approved",
    EventType.CHANGES_REJECTED: "rejected",
    EventType.CHANGES_ROLLED_BACK: "rolled back",
}


class TaigaError(Exception):
    pass


def is_configured(run: Run) -> bool:
    wants = bool(run.run_metadata.get("taiga_ref") or run.options.get("taiga_create") or run.taiga_item)
    return bool(settings.TAIGA_URL and settings.TAIGA_TOKEN and run.project.taiga_project and wants)


def _api(method: str, path: str, **kwargs: Any) -> Any:
    url = f"{settings.TAIGA_URL.rstrip('/')}/api/v1/{path.lstrip('/')}"
    headers = {"Authorization": f"Bearer {settings.TAIGA_TOKEN}", "Content-Type": "application/json"}
    try:
        response = httpx.request(method, url, headers=headers, timeout=TIMEOUT_SECONDS, **kwargs)
    except httpx.HTTPError as exc:
        raise TaigaError(f"Taiga at {settings.TAIGA_URL} did not answer: {type(exc).__name__}") from None
    if response.status_code >= 400:
        raise TaigaError(
            f"Taiga {method} /api/v1/{path} answered HTTP {response.status_code}: {response.text[:200]}"
        )
    return response.json() if response.content else None


def _resolve(run: Run) -> dict[str, Any]:
    """The Taiga item of the run, looked up once and remembered on the run."""
    if run.taiga_item:
        return run.taiga_item
    slug = run.project.taiga_project
    project = _api("GET", "projects/by_slug", params={"slug": slug})
    if run.options.get("taiga_create"):
        created = _api(
            "POST",
            "tasks",
            json={"project": project["id"], "subject": run.name[:500], "description": run.goal},
        )
        item = {"kind": "task", "id": created["id"], "ref": created.get("ref")}
    else:
        ref = str(run.run_metadata["taiga_ref"]).lstrip("#")
        resolved = _api("GET", "resolver", params={"project": slug, "ref": ref})
        kind = next((k for k in KIND_PATHS if k in resolved), None)
        if kind is None:
            raise TaigaError(f"Taiga has no user story, task or issue #{ref} in {slug}")
        item = {"kind": kind, "id": resolved[kind], "ref": ref}
    Run.objects.filter(pk=run.pk).update(taiga_item=item)
    run.taiga_item = item
    return item


def comment(run: Run, text: str) -> None:
    item = _resolve(run)
    path = f"{KIND_PATHS[item['kind']]}/{item['id']}"
    current = _api("GET", path)
    _api("PATCH", path, json={"comment": text, "version": current["version"]})


def report(run_id: int, event_type: str, detail: str = "") -> None:
    """Post one status change to Taiga (a django-q2 task); failures become INTEGRATION_ERROR events."""
    run = Run.objects.select_related("project").get(pk=run_id)
    if not is_configured(run):
        return
    text = f"Agent Runner run #{run.pk} ({run.name}) {REPORTED.get(event_type, event_type)}. {detail}".strip()
    try:
        comment(run, text)
    except (TaigaError, KeyError, TypeError, ValueError) as exc:
        logger.warning("taiga: %s", exc)
        record_event(run_id, EventType.INTEGRATION_ERROR, {"service": "taiga", "error": str(exc)[:500]})


def report_on_commit(run_id: int, event_type: str, detail: str = "") -> None:
    """Called by the lifecycle after each status change; queues the comment once the change commits.
    Does nothing unless Taiga is configured (the task itself checks the run's project and reference)."""
    if event_type in REPORTED and settings.TAIGA_URL and settings.TAIGA_TOKEN:
        from django_q.tasks import async_task

        transaction.on_commit(lambda: async_task("runs.taiga.report", run_id, str(event_type), detail))
