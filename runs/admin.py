from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from config.errors import DomainError
from runs import lifecycle, review, schedules, services
from runs.lifecycle import Action
from runs.models import AgentProfile, Run, Schedule

RECENT_EVENTS = 50


def _apply(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Run], action: Action
) -> None:
    done, refused = 0, []
    for run_id in queryset.values_list("pk", flat=True):
        try:
            lifecycle.apply_action(run_id, action, actor=services.actor_name(request.user))
            done += 1
        except DomainError as exc:
            refused.append(exc.message)
    if done:
        modeladmin.message_user(request, f"{action.value.title()}: {done} run(s).", messages.SUCCESS)
    for message in refused:
        modeladmin.message_user(request, message, messages.WARNING)


@admin.action(description="Pause selected runs")
def pause_runs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Run]) -> None:
    _apply(modeladmin, request, queryset, Action.PAUSE)


@admin.action(description="Resume selected runs")
def resume_runs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Run]) -> None:
    _apply(modeladmin, request, queryset, Action.RESUME)


@admin.action(description="Stop selected runs")
def stop_runs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Run]) -> None:
    _apply(modeladmin, request, queryset, Action.STOP)


def _review(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Run], decision: str
) -> None:
    for run_id in queryset.values_list("pk", flat=True):
        try:
            if decision == "approve":
                review.approve(run_id, user=request.user, comment="approved in the admin")
            elif decision == "reject":
                review.reject(run_id, user=request.user, comment="rejected in the admin")
            else:
                review.rollback(run_id, user=request.user, comment="rolled back in the admin")
            modeladmin.message_user(request, f"Run {run_id}: {decision} done.", messages.SUCCESS)
        except DomainError as exc:
            modeladmin.message_user(request, f"Run {run_id}: {exc.message}", messages.WARNING)


@admin.action(description="Approve selected runs' changes (fast-forward)")
def approve_runs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Run]) -> None:
    _review(modeladmin, request, queryset, "approve")


@admin.action(description="Reject selected runs' changes")
def reject_runs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Run]) -> None:
    _review(modeladmin, request, queryset, "reject")


@admin.action(description="Roll back selected approved runs")
def rollback_runs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Run]) -> None:
    _review(modeladmin, request, queryset, "rollback")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    """Runs are created through the API or console and change only through the lifecycle: the admin shows
    them and offers the operator actions."""

    list_display = [
        "id",
        "name",
        "project",
        "run_type",
        "status",
        "current_iteration",
        "attempt",
        "created_at",
    ]
    list_filter = ["status", "review_state", "run_type", "project"]
    list_select_related = ["project", "created_by"]
    search_fields = ["name", "goal", "=id"]
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    actions = [pause_runs, resume_runs, stop_runs, approve_runs, reject_runs, rollback_runs]
    fieldsets = [
        (None, {"fields": ["name", "project", "goal", "run_type", "status", "error", "created_by"]}),
        ("Progress", {"fields": ["current_iteration", "options", "run_metadata", "checkpoint"]}),
        ("Times", {"fields": ["created_at", "started_at", "finished_at"]}),
        ("Worker", {"fields": ["lease_owner", "lease_expires_at", "attempt", "workers_lost"]}),
        (
            "Review",
            {
                "fields": [
                    "branch",
                    "base_branch",
                    "base_commit",
                    "review_state",
                    "merge_commit",
                    "revert_commit",
                    "pull_request_url",
                    "reviewed_by",
                    "reviewed_at",
                    "review_comment",
                ]
            },
        ),
        ("Events", {"fields": ["recent_events"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Run | None = None) -> list[str]:
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Run | None = None) -> bool:
        return False

    @admin.display(description=f"last {RECENT_EVENTS} events")
    def recent_events(self, run: Run) -> str:
        events = list(run.events.order_by("-seq")[:RECENT_EVENTS])[::-1]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (e.seq, e.type, e.created_at.strftime("%H:%M:%S.%f")[:-3], json.dumps(e.payload)[:200])
                for e in events
            ),
        )
        everything = reverse("admin:events_event_changelist") + f"?run__id__exact={run.pk}"
        return format_html(
            "<table><tr><th>seq</th><th>type</th><th>time</th><th>payload</th></tr>{}</table>"
            '<p><a href="{}">All {} events of this run</a></p>',
            rows,
            everything,
            run.event_seq,
        )


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = ["name", "project", "goal", "run_type", "options", "run_metadata", "cron", "enabled"]

    def clean_cron(self) -> str:
        try:
            return schedules.clean_cron(self.cleaned_data["cron"])
        except DomainError as error:
            raise forms.ValidationError(error.message) from None


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ["name", "project", "run_type", "cron", "enabled", "last_run_at", "next_run_at"]
    list_filter = ["enabled", "run_type", "project"]
    list_select_related = ["project"]
    search_fields = ["name", "goal"]
    readonly_fields = ["last_run_at", "next_run_at"]

    def save_model(self, request: HttpRequest, obj: Schedule, form: forms.ModelForm, change: bool) -> None:
        if not obj.created_by_id:
            obj.created_by = request.user
        try:
            schedules.save_schedule(obj)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "model", "max_steps", "reports_verdict"]
    search_fields = ["name", "description"]
