"""django-q2 entry points: load by id, call a service. Safe to run twice."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_q.tasks import async_task

SWEEP_SCHEDULE_NAME = "agent-runner-sweep"


def enqueue_run(run_id: int) -> None:
    async_task("runs.tasks.execute_run", run_id)


def execute_run(run_id: int) -> str:
    from runs.execution import execute_run as execute

    return execute(run_id)


def sweep() -> dict[str, Any]:
    from runs.services import sweep as run_sweep

    return run_sweep()


def ensure_sweep_schedule(**kwargs: Any) -> None:
    """Create (or correct) the periodic sweep after migrate; idempotent."""
    from django_q.models import Schedule

    using = kwargs.get("using", "default")
    Schedule.objects.using(using).update_or_create(
        name=SWEEP_SCHEDULE_NAME,
        defaults={
            "func": "runs.tasks.sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.WORKER_SWEEP_MINUTES,
            "repeats": -1,
        },
    )
