"""Reads of runs shared by the API and the console."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from runs.models import Run


def run_list(
    *,
    status: str | None = None,
    project: int | None = None,
    run_type: str | None = None,
    q: str | None = None,
) -> QuerySet[Run]:
    """Runs newest first, filtered; project and creator joined so a page costs constant queries."""
    runs = Run.objects.select_related("project", "created_by").order_by("-created_at", "-id")
    if status:
        runs = runs.filter(status=status)
    if project:
        runs = runs.filter(project_id=project)
    if run_type:
        runs = runs.filter(run_type=run_type)
    if q:
        runs = runs.filter(Q(name__icontains=q) | Q(goal__icontains=q))
    return runs
