from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Read-only: events are never changed or deleted by the application."""

    list_display = ["run", "seq", "type", "summary", "created_at"]
    list_filter = ["type"]
    list_select_related = ["run"]
    search_fields = ["=run__id", "run__name"]
    ordering = ["-run_id", "seq"]
    list_per_page = 100
    show_full_result_count = False
    fields = ["run", "seq", "type", "created_at", "pretty_payload"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    @admin.display(description="payload")
    def summary(self, event: Event) -> str:
        text = json.dumps(event.payload, ensure_ascii=False)
        return text if len(text) <= 120 else f"{text[:117]}..."

    @admin.display(description="payload")
    def pretty_payload(self, event: Event) -> str:
        return format_html("<pre>{}</pre>", json.dumps(event.payload, indent=2, ensure_ascii=False))
