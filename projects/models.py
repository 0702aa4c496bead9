from __future__ import annotations

from django.db import models


class Project(models.Model):
    """A git repository on disk that runs work on."""

    name = models.CharField(max_length=200, unique=True)
    local_path = models.CharField(max_length=4096)
    allowed_commands = models.JSONField(
        default=list,
        blank=True,
        help_text='Command-line prefixes the agent may run, e.g. "pytest", "ruff check". Empty: none.',
    )
    forgejo_repo = models.CharField(
        max_length=200, blank=True, help_text='Forgejo repository as "owner/name", for pull requests.'
    )
    repo_url = models.CharField(
        max_length=500, blank=True, help_text="Push URL for run branches; default FORGEJO_URL/owner/name.git."
    )
    taiga_project = models.CharField(max_length=200, blank=True, help_text="Taiga project slug.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
