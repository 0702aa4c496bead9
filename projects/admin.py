from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from projects.models import Project


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "local_path", "allowed_commands", "run_count", "created_at"]
    search_fields = ["name", "local_path"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        return super().get_queryset(request).annotate(run_count=Count("runs"))

    @admin.display(description="runs", ordering="run_count")
    def run_count(self, project: Project) -> int:
        return project.run_count  # type: ignore[attr-defined]
