"""Console pages for runs. Thin: read through selectors, write through services and the lifecycle."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Count, OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from config import status as status_bar
from config.errors import DomainError
from events.models import Event, EventType
from projects.models import Project
from runs import lifecycle, review, schedules, selectors, services
from runs.forms import DirectiveForm, RunCreateForm, ScheduleForm
from runs.lifecycle import Action
from runs.models import ACTIVE_STATUSES, ReviewState, Run, RunStatus, RunType, Schedule
from runs.selectors import run_list

PAGE_SIZE = 25
EVENT_WINDOW = 200
STOP_POLLING = 286  # htmx stops polling when a response has this status


def _filters(request: HttpRequest) -> dict[str, Any]:
    """Dashboard filters from the query string; unknown values are ignored, not errors."""
    params = request.GET
    chosen: dict[str, Any] = {}
    if params.get("status") in RunStatus.values:
        chosen["status"] = params["status"]
    if params.get("run_type") in RunType.values:
        chosen["run_type"] = params["run_type"]
    if params.get("project", "").isdigit():
        chosen["project"] = int(params["project"])
    if params.get("q", "").strip():
        chosen["q"] = params["q"].strip()[:200]
    return chosen


def _overview() -> dict[str, Any]:
    """Counts per status and each project's last run: on the dashboard, and refreshed with its table."""
    # COUNT(*), not COUNT(id): PostgreSQL can then answer from the status index alone.
    counts = dict(Run.objects.values_list("status").annotate(n=Count("*")).order_by())
    last_run = Run.objects.filter(project=OuterRef("pk")).order_by("-created_at", "-id")
    projects = Project.objects.annotate(
        last_run_id=Subquery(last_run.values("pk")[:1]),
        last_run_status=Subquery(last_run.values("status")[:1]),
        last_run_name=Subquery(last_run.values("name")[:1]),
    )
    return {
        "counts": [(value, label, counts.get(value, 0)) for value, label in RunStatus.choices],
        "awaiting_review": Run.objects.filter(review_state=ReviewState.PENDING).count(),
        "projects": projects,
    }


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    filters = _filters(request)
    runs = run_list(**filters)
    if request.GET.get("review") == ReviewState.PENDING:
        runs = runs.filter(review_state=ReviewState.PENDING)
        filters["review"] = ReviewState.PENDING
    overview = _overview()
    paginator = Paginator(runs, PAGE_SIZE)
    if filters.keys() <= {"status"}:  # the counts per status already hold this list's length
        counts = {value: n for value, _, n in overview["counts"]}
        paginator.count = counts[filters["status"]] if filters else sum(counts.values())
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "any_active": any(run.status in ACTIVE_STATUSES for run in page),
        "query": request.GET.copy(),
        "statuses": RunStatus.choices,
        "run_types": RunType.choices,
    }
    context |= overview
    if request.htmx and request.htmx.target == "runs-table":
        return render(request, "runs/dashboard.html#refresh", context)
    return render(request, "runs/dashboard.html", context)


@login_required
def run_create(request: HttpRequest) -> HttpResponse:
    form = RunCreateForm(request.POST or None, initial={"project": request.GET.get("project")})
    if request.method == "POST" and form.is_valid():
        try:
            run = services.create_run(
                project_id=form.cleaned_data["project"].pk,
                goal=form.cleaned_data["goal"],
                name=form.cleaned_data["name"],
                run_type=form.cleaned_data["run_type"],
                run_options=form.run_options(),
                metadata=form.cleaned_data["metadata"],
                created_by=request.user,
            )
        except DomainError as error:
            form.add_domain_error(error)
        else:
            messages.success(request, f"Run created: {run.name}")
            if request.htmx:
                return HttpResponseClientRedirect(f"/runs/{run.pk}/")
            return redirect("run-detail", run_id=run.pk)
    template = "runs/new.html#run-form" if request.htmx else "runs/new.html"
    # htmx swaps only 2xx responses: the dialog gets its errors with 200, a plain browser with 400.
    failed = bool(form.errors) and not request.htmx
    return render(request, template, {"form": form}, status=400 if failed else 200)


def _run_or_404(run_id: int) -> Run:
    try:
        return services.get_run(run_id)
    except DomainError:
        raise Http404(f"Run {run_id} does not exist.") from None


def _run_context(run: Run) -> dict[str, Any]:
    return {
        "run": run,
        "actions": [action.value for action in lifecycle.allowed_actions(run.status)],
        "terminal": run.is_terminal,
        "active": run.status in ACTIVE_STATUSES,
    }


@login_required
@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    if request.htmx and request.htmx.target in ("commands", "steps"):  # a live section's own refresh
        run = _run_or_404(run_id)
        context = _run_context(run) | _run_sections(run)
        return render(request, f"runs/detail.html#{request.htmx.target}", context)
    events = list(Event.objects.filter(run_id=run_id).order_by("-seq")[:EVENT_WINDOW])[::-1]
    run = _run_or_404(run_id)  # read after its events, so that the header is at least as new as the log
    context = _run_context(run) | _run_sections(run)
    context |= {
        "events": events,
        "cursor": events[-1].seq if events else 0,
        "phase": live_phase(run),
        "oldest": events[0].seq if events else 0,
        "event_types": EventType.choices,
        "directive_form": DirectiveForm(),
    }
    if run.review_state != ReviewState.NONE or run.branch or run.options.get("dry_run"):
        try:
            context["diff"] = review.run_diff(run)
            context["diff_files"] = review.files_for_display(context["diff"]["diff"])
        except DomainError as error:
            context["diff_error"] = error.message
    return render(request, "runs/detail.html", context)


def _run_sections(run: Run) -> dict[str, Any]:
    """A pipeline's commands or a workflow's steps: sections of the run page that refresh themselves."""
    if run.run_type == RunType.PIPELINE:
        return {"commands": _pipeline_commands(run)}
    if run.run_type == RunType.WORKFLOW:
        children = {child.step_key: child for child in Run.objects.filter(parent=run)}
        steps = run.options.get("steps", [])
        return {"steps": [{**step, "child": children.get(step["key"])} for step in steps]}
    return {}


OUTPUT_SHOWN = 64 * 1024


def _pipeline_commands(run: Run) -> list[dict[str, Any]]:
    """Each command of a pipeline with its state and the output it streamed (the newest 64 KiB)."""
    commands = [{"command": c, "state": "pending", "output": "", "exit_code": None, "seconds": None}
                for c in run.options.get("commands", [])]  # fmt: skip
    kinds = [EventType.EXECUTING, EventType.COMMAND_OUTPUT, EventType.COMMAND_FINISHED]
    for kind, payload in (
        Event.objects.filter(run=run, type__in=kinds).order_by("seq").values_list("type", "payload")
    ):
        index = payload.get("index")
        if not isinstance(index, int) or not 0 <= index < len(commands):
            continue
        entry = commands[index]
        if kind == EventType.EXECUTING:
            entry["state"] = "running"
        elif kind == EventType.COMMAND_OUTPUT:
            entry["output"] = (entry["output"] + payload.get("text", ""))[-OUTPUT_SHOWN:]
        else:
            state = "passed" if payload.get("passed") else "failed"
            entry.update(state=state, exit_code=payload.get("exit_code"), seconds=payload.get("seconds"))
    if run.is_terminal:
        for entry in commands:
            if entry["state"] == "running":
                entry["state"] = "stopped"
    return commands


def live_phase(run: Run) -> str:
    """A short fingerprint of what the run's header shows, apart from the step counter (which a poll
    refreshes on its own): a poll sends the header again only when this changed."""
    shown = tuple(getattr(run, name) for name in selectors.LIVE_FIELDS if name != "current_iteration")
    return hashlib.blake2s(repr(shown).encode(), digest_size=6).hexdigest()


@login_required
@require_GET
def run_events(request: HttpRequest, run_id: int) -> HttpResponse:
    """The poll: events after ?after=<seq>; the header when ?phase= differs from the run's, else only the
    step counter. One events query; the whole run is read only when the header is sent."""
    after = int(request.GET["after"]) if request.GET.get("after", "").isdigit() else 0
    # Events first, then the run: a row read after the events is at least as new as they are, so a poll
    # that brings RUN_STARTED never brings a header that still says QUEUED.
    events = selectors.events_after(run_id, after, EVENT_WINDOW)
    run = selectors.run_live(run_id)
    if run is None:
        raise Http404(f"Run {run_id} does not exist.")
    phase = live_phase(run)
    header = request.GET.get("phase") != phase and (bool(events) or "phase" in request.GET)
    if header:
        run = _run_or_404(run_id)
    context = _run_context(run) | {
        "events": events, "cursor": events[-1].seq if events else after, "phase": phase, "header": header,
    }  # fmt: skip
    response = render(request, "runs/detail.html#poll", context)
    if run.is_terminal and not events:
        response.status_code = STOP_POLLING
    return response


@login_required
@require_GET
def run_events_older(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(run_id)
    before = int(request.GET["before"]) if request.GET.get("before", "").isdigit() else 0
    events = list(Event.objects.filter(run_id=run_id, seq__lt=before).order_by("-seq")[:EVENT_WINDOW])[::-1]
    context = {"run": run, "events": events, "oldest": events[0].seq if events else 0}
    return render(request, "runs/detail.html#older-page", context)


@login_required
@require_POST
def run_action(request: HttpRequest, run_id: int, action: str) -> HttpResponse:
    try:
        lifecycle.apply_action(run_id, Action(action), actor=services.actor_name(request.user))
        messages.success(
            request, {"pause": "Run paused.", "resume": "Run resumed.", "stop": "Run stopped."}[action]
        )
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("run-detail", run_id=run_id)


@login_required
@require_POST
def run_directive(request: HttpRequest, run_id: int) -> HttpResponse:
    form = DirectiveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Write a directive first (at most 8,000 characters).")
        return redirect("run-detail", run_id=run_id)
    try:
        services.send_directive(
            run_id, text=form.cleaned_data["text"], actor=services.actor_name(request.user)
        )
        messages.success(request, "Directive sent: the agent applies it at its next step.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("run-detail", run_id=run_id)


@login_required
@require_POST
def run_review(request: HttpRequest, run_id: int, decision: str) -> HttpResponse:
    comment = request.POST.get("comment", "")[:8000]
    try:
        if decision == "approve":
            review.approve(
                run_id, user=request.user, comment=comment, strategy=request.POST.get("strategy", "ff-only")
            )
            messages.success(request, "Changes approved.")
        elif decision == "reject":
            review.reject(run_id, user=request.user, comment=comment)
            messages.success(request, "Changes rejected: the branch is deleted.")
        else:
            review.rollback(run_id, user=request.user, comment=comment)
            messages.success(request, "Changes rolled back with a revert commit.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("run-detail", run_id=run_id)


@login_required
@require_GET
def status_fragment(request: HttpRequest) -> HttpResponse:
    return render(request, "base.html#status-bar", {"services": status_bar.current()})


def _save_schedule_form(request: HttpRequest, form: ScheduleForm, schedule: Schedule) -> bool:
    data = form.cleaned_data
    schedule.name, schedule.project, schedule.goal = data["name"], data["project"], data["goal"]
    schedule.run_type, schedule.cron, schedule.options = data["run_type"], data["cron"], data["run_options"]
    schedule.created_by = schedule.created_by or request.user
    try:
        services.check_run_template(schedule.project_id, schedule.run_type, schedule.options)
        schedules.save_schedule(schedule)
    except DomainError as error:
        form.add_domain_error(error)
        return False
    except IntegrityError:
        form.add_error("name", "A schedule with this name already exists.")
        return False
    when = f"{schedule.next_run_at:%Y-%m-%d %H:%M}" if schedule.next_run_at else "never (disabled)"
    messages.success(request, f"Schedule {schedule.name} saved: next run {when}.")
    return True


@login_required
def schedule_list(request: HttpRequest) -> HttpResponse:
    form = ScheduleForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _save_schedule_form(request, form, Schedule()):
        return redirect("schedules")
    items = Schedule.objects.select_related("project").annotate(run_count=Count("runs"))
    context = {"schedules": items, "form": form}
    return render(request, "runs/schedules.html", context, status=400 if form.errors else 200)


@login_required
def schedule_edit(request: HttpRequest, schedule_id: int) -> HttpResponse:
    schedule = Schedule.objects.filter(pk=schedule_id).first()
    if schedule is None:
        raise Http404
    initial = {
        "name": schedule.name,
        "project": schedule.project_id,
        "goal": schedule.goal,
        "run_type": schedule.run_type,
        "cron": schedule.cron,
        "run_options": json.dumps(schedule.options),
    }
    form = ScheduleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid() and _save_schedule_form(request, form, schedule):
        return redirect("schedules")
    runs = run_list().filter(schedule=schedule)[:20]
    context = {"schedule": schedule, "form": form, "runs": runs}
    return render(request, "runs/schedule_edit.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def schedule_toggle(request: HttpRequest, schedule_id: int) -> HttpResponse:
    schedule = Schedule.objects.filter(pk=schedule_id).first()
    if schedule is None:
        raise Http404
    schedule.enabled = not schedule.enabled
    schedules.save_schedule(schedule)
    messages.success(request, f"Schedule {schedule.name} {'enabled' if schedule.enabled else 'disabled'}.")
    return redirect("schedules")
