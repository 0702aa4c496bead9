"""Writes and worker-level operations on runs. Status changes themselves live in runs.lifecycle."""

from __future__ import annotations

import logging
import shlex
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from config.errors import InvalidInput, InvalidTransition, NotFound
from events.models import Event, EventType
from events.recorder import record_event
from projects.models import Project
from runs import lifecycle, options, workspace
from runs.agents import agent_name_for
from runs.agents.tools import command_allowed
from runs.models import ACTIVE_STATUSES, RUNNABLE_STATUSES, AgentProfile, Run, RunStatus, RunType
from runs.schedules import fire_due
from runs.selectors import EventRow, event_page
from runs.tasks import enqueue_run
from runs.workflow import clean_steps

logger = logging.getLogger(__name__)


def actor_name(user: AbstractBaseUser | AnonymousUser | None) -> str | None:
    return user.get_username() if user is not None and user.is_authenticated else None


def get_run(run_id: int) -> Run:
    try:
        return Run.objects.select_related("project", "created_by").get(pk=run_id)
    except Run.DoesNotExist:
        raise NotFound(f"Run {run_id} does not exist.") from None


def create_run(
    *,
    project_id: Any,
    goal: Any,
    name: Any = None,
    run_type: Any = None,
    run_options: Any = None,
    metadata: Any = None,
    created_by: AbstractBaseUser | None = None,
    parent: Run | None = None,
    step_key: str = "",
) -> Run:
    """Validate, store the run with its RUN_CREATED event, and enqueue it once the transaction commits."""
    if (
        isinstance(project_id, bool)
        or not isinstance(project_id, int)
        or not 0 < project_id <= options.MAX_ID
    ):
        raise InvalidInput("project_id must be the integer id of a project.", field="project_id")
    clean = {
        "goal": options.clean_goal(goal),
        "name": options.clean_name(name),
        "run_type": options.clean_run_type(run_type),
        "options": options.clean_options(run_options),
        "run_metadata": options.clean_metadata(metadata),
    }
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise InvalidInput(f"Project {project_id} does not exist.", field="project_id")
    base_branch = _writing_run_branch(project, clean["options"], clean["run_type"])
    user = created_by if created_by is not None and created_by.is_authenticated else None
    with transaction.atomic():
        run = Run.objects.create(
            project_id=project_id,
            created_by=user,
            base_branch=base_branch,
            parent=parent,
            step_key=step_key,
            **clean,
        )
        if not run.name:
            run.name = options.generate_run_name(run.goal, run.pk)
            Run.objects.filter(pk=run.pk).update(name=run.name)
        request = {
            "project_id": project_id,
            "goal": run.goal,
            "name": run.name,
            "run_type": run.run_type,
            "options": run.options,
            "metadata": run.run_metadata,
        }
        record_event(run.pk, EventType.RUN_CREATED, {"actor": actor_name(user), "request": request})
        transaction.on_commit(lambda: enqueue_run(run.pk))
    return get_run(run.pk)


def check_run_template(project_id: int, run_type: Any, run_options: Any) -> None:
    """Validate what a schedule will create, as create_run would, without creating anything."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise InvalidInput(f"Project {project_id} does not exist.", field="project_id")
    _writing_run_branch(project, options.clean_options(run_options), options.clean_run_type(run_type))


def _writing_run_branch(project: Project, run_options: dict[str, Any], run_type: str) -> str:
    """A run that writes works in a git worktree: the project must be a git repository with a commit.
    Returns the branch checked out now, which approval merges into ("" for runs that write nothing)."""
    agent = agent_name_for(run_options, run_type)
    if agent not in ("llm", "simple", "pipeline", "workflow"):
        if not AgentProfile.objects.filter(name=agent).exists():
            known = ", ".join(["llm", "simple", *AgentProfile.objects.values_list("name", flat=True)])
            raise InvalidInput(f"options.agent {agent!r} is not an agent; known: {known}.", field="options")
        agent = "llm"
    if agent == "workflow":
        for step in clean_steps(run_options.get("steps")):
            step_options = {
                **(step.get("options") or {}),
                **({"agent": step["agent"]} if "agent" in step else {}),
            }
            _writing_run_branch(project, step_options, step.get("run_type", RunType.AGENT))
        return ""
    if agent == "pipeline":
        _check_pipeline(project, run_options)
    elif agent != "llm" or run_options.get("dry_run"):
        return ""
    path = project.local_path
    if not workspace.is_git_repository(path):
        raise InvalidInput(
            f"Project {project.name!r} ({path}) is not a git repository: run `git init` and commit there, "
            "or start a dry run.",
            field="project_id",
        )
    if not workspace.has_commits(path):
        raise InvalidInput(
            f"The repository {path} has no commits yet: commit once first.", field="project_id"
        )
    branch = workspace.git("rev-parse", "--abbrev-ref", "HEAD", cwd=path).strip()
    return "" if branch == "HEAD" else branch


def _check_pipeline(project: Project, run_options: dict[str, Any]) -> None:
    """A pipeline names commands, and each must be allowed by the project."""
    commands = run_options.get("commands")
    if not commands:
        raise InvalidInput("A pipeline run needs options.commands: a list of command lines.", field="options")
    allowed = [shlex.split(entry) for entry in project.allowed_commands or []]
    refused = [command for command in commands if not command_allowed(shlex.split(command), allowed)]
    if refused:
        listed = ", ".join(project.allowed_commands or []) or "none"
        raise InvalidInput(
            f"Not allowed for project {project.name!r}: {', '.join(refused)}. Allowed prefixes: {listed}.",
            field="options",
        )


def send_directive(run_id: int, *, text: Any, actor: str | None = None) -> Event:
    """Queue an instruction for the agent; it is applied once, in order, at the agent's next step boundary."""
    text = options.clean_directive(text)
    event = record_event(
        run_id,
        EventType.DIRECTIVE_RECEIVED,
        {"text": text, "actor": actor},
        condition=Q(status__in=ACTIVE_STATUSES),
        changes={"directive_seq": F("event_seq") + 1},  # this event's seq: the UPDATE reads the old value
    )
    if event is None:
        status = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
        if status is None:
            raise NotFound(f"Run {run_id} does not exist.")
        raise InvalidTransition(
            f"Run {run_id} is {status}: directives are accepted only while it is QUEUED, RUNNING or PAUSED."
        )
    return event


def events_after(run_id: int, *, after: int = 0, limit: int = 100) -> list[EventRow]:
    page = event_page(run_id, after=after, limit=limit)
    if page is None:
        raise NotFound(f"Run {run_id} does not exist.")
    return page


def _queued_run_ids() -> set[int]:
    """Run ids that already have an execute_run task waiting in (or taken from) django-q2's queue."""
    from django_q.conf import Conf
    from django_q.models import OrmQ
    from django_q.signing import BadSignature, SignedPackage

    ids: set[int] = set()
    for payload in OrmQ.objects.filter(key=Conf.CLUSTER_NAME).values_list("payload", flat=True):
        try:
            task = SignedPackage.loads(payload)
        except BadSignature:
            continue
        if task.get("func") == "runs.tasks.execute_run" and task.get("args"):
            ids.add(int(task["args"][0]))
    return ids


def sweep(*, grace_seconds: float | None = None) -> dict[str, Any]:
    """Recover runs whose worker's lease expired and enqueue runnable runs that have no task.

    Runs from the periodic django-q2 schedule and from POST /api/worker/process/.
    """
    now = timezone.now()
    grace = settings.RUN_REQUEUE_GRACE_SECONDS if grace_seconds is None else grace_seconds
    recovered: list[int] = []
    failed: list[int] = []
    expired = Run.objects.filter(
        status__in=ACTIVE_STATUSES, lease_owner__isnull=False, lease_expires_at__lt=now
    ).values_list("pk", "lease_owner")
    for run_id, owner in expired:
        outcome = lifecycle.recover_lost_worker(run_id, owner)
        if outcome == "requeued":
            recovered.append(run_id)
        elif outcome == "failed":
            failed.append(run_id)
    waiting = _queued_run_ids()
    orphans = [
        run_id
        for run_id in Run.objects.filter(
            status__in=RUNNABLE_STATUSES,
            lease_owner__isnull=True,
            created_at__lt=now - timedelta(seconds=grace),
        ).values_list("pk", flat=True)
        if run_id not in waiting and run_id not in recovered
    ]
    for run_id in orphans:
        enqueue_run(run_id)
    scheduled = fire_due(now)
    if recovered or failed or orphans or scheduled:
        logger.info(
            "sweep: recovered %s, failed %s, enqueued %s, scheduled %s", recovered, failed, orphans, scheduled
        )
    return {
        "recovered": recovered,
        "failed": failed,
        "enqueued": orphans,
        "scheduled": scheduled,
        "swept_at": now.isoformat(),
    }


def worker_status() -> dict[str, Any]:
    """Cluster health from django-q2's own statistics (shared cache) plus the run table's counts."""
    from django_q.conf import Conf
    from django_q.status import Stat

    clusters = []
    for stat in Stat.get_all():
        clusters.append(
            {
                "id": str(stat.cluster_id),
                "host": stat.host,
                "pid": stat.pid,
                "status": str(stat.status),
                "workers": len(stat.workers),
                "uptime_seconds": round(stat.uptime(), 1) if stat.tob else 0.0,
                "reported_at": stat.timestamp.isoformat(),
            }
        )
    alive_states = {Conf.IDLE, Conf.WORKING, Conf.STARTING}
    counts = Run.objects.filter(status__in=ACTIVE_STATUSES).values("status").annotate(n=Count("pk"))
    by_status = {row["status"]: row["n"] for row in counts}
    return {
        "alive": any(cluster["status"] in alive_states for cluster in clusters),
        "clusters": clusters,
        "queued": by_status.get(RunStatus.QUEUED, 0),
        "running": by_status.get(RunStatus.RUNNING, 0),
        "paused": by_status.get(RunStatus.PAUSED, 0),
    }
