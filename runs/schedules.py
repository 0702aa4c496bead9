"""Recurring runs. The periodic sweep calls `fire_due`; each due schedule creates one run and moves its
next time forward from now, so slots missed during downtime are not replayed as a burst."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import CroniterBadCronError, croniter
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.errors import DomainError, InvalidInput
from runs.models import Run, Schedule

logger = logging.getLogger(__name__)


def clean_cron(expression: Any) -> str:
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInput('A cron expression is required, e.g. "0 2 * * *".', field="cron")
    expression = " ".join(expression.split())
    try:
        croniter(expression)
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise InvalidInput(f"{expression!r} is not a cron expression: {exc}", field="cron") from None
    if len(expression.split()) != 5:
        raise InvalidInput("Use five cron fields: minute hour day-of-month month day-of-week.", field="cron")
    return expression


def next_time(expression: str, after: datetime) -> datetime:
    zone = ZoneInfo(settings.TIME_ZONE)
    return croniter(expression, after.astimezone(zone)).get_next(datetime)


def save_schedule(schedule: Schedule) -> Schedule:
    """Validate and store a schedule, computing when it next fires."""
    from runs import options

    schedule.cron = clean_cron(schedule.cron)
    schedule.goal = options.clean_goal(schedule.goal)
    schedule.options = options.clean_options(schedule.options)
    schedule.run_metadata = options.clean_metadata(schedule.run_metadata)
    schedule.next_run_at = next_time(schedule.cron, timezone.now()) if schedule.enabled else None
    schedule.save()
    return schedule


def fire_due(now: datetime | None = None) -> list[int]:
    """Create a run for every enabled schedule that is due; returns the new runs' ids."""
    from runs.services import create_run

    now = now or timezone.now()
    created: list[int] = []
    for schedule in Schedule.objects.filter(enabled=True, next_run_at__lte=now).select_related("project"):
        upcoming = next_time(schedule.cron, now)
        with transaction.atomic():
            taken = Schedule.objects.filter(pk=schedule.pk, next_run_at=schedule.next_run_at).update(
                next_run_at=upcoming, last_run_at=now
            )
            if not taken:
                continue  # another sweep fired it
            try:
                run = create_run(
                    project_id=schedule.project_id,
                    goal=schedule.goal,
                    name=f"{schedule.name}-{now:%Y%m%d-%H%M}",
                    run_type=schedule.run_type,
                    run_options=schedule.options,
                    metadata=schedule.run_metadata,
                    created_by=schedule.created_by,
                )
            except DomainError as error:
                logger.warning("schedule %s could not create its run: %s", schedule.name, error.message)
                continue
            Run.objects.filter(pk=run.pk).update(schedule=schedule)
            created.append(run.pk)
    return created
