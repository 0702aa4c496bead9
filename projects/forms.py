"""Console form for registering a project; the path policy lives in projects.paths."""

from __future__ import annotations

from django import forms

from config.errors import DomainError


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    local_path = forms.CharField(
        max_length=4096,
        label="Local path",
        widget=forms.TextInput(attrs={"placeholder": "/home/you/src/repository"}),
        help_text="An existing directory (a git repository for runs that write) inside PROJECT_ROOTS.",
    )
    allowed_commands = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "pytest -q\nruff check"}),
        help_text="One command prefix per line that the agent may run. Empty: none.",
    )

    def commands(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["allowed_commands"].splitlines() if line.strip()]

    def add_domain_error(self, error: DomainError) -> None:
        self.add_error(error.field if error.field in self.fields else None, error.message)
