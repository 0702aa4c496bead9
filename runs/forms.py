"""Console forms: they collect input; the rules live in runs.options and runs.services."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from config.errors import DomainError
from projects.models import Project
from runs.models import RunType
from runs.options import GOAL_MAX_LENGTH, MAX_STEPS_RANGE, NAME_MAX_LENGTH

# Domain error fields -> the form field the message is shown beside.
FIELD_OF = {"project_id": "project", "options": "max_steps", "run_metadata": "metadata"}


class RunCreateForm(forms.Form):
    project = forms.ModelChoiceField(
        queryset=Project.objects.order_by("name"), empty_label="Choose a project"
    )
    goal = forms.CharField(
        max_length=GOAL_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "What should the agent do?"}),
    )
    name = forms.CharField(
        max_length=NAME_MAX_LENGTH,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "Generated from the goal, e.g. fix-login-bug-7"}),
        help_text="Optional: left blank, a name is generated from the goal and the run's number.",
    )
    run_type = forms.ChoiceField(choices=RunType.choices, initial=RunType.AGENT)
    agent = forms.ChoiceField(
        choices=[
            ("", "Default (LLM for agent and task)"),
            ("llm", "LLM agent"),
            ("simple", "Simple agent (no LLM)"),
        ],
        required=False,
    )
    max_steps = forms.IntegerField(min_value=MAX_STEPS_RANGE[0], max_value=MAX_STEPS_RANGE[1], required=False)
    dry_run = forms.BooleanField(
        required=False, help_text="Record proposed changes as a diff; write nothing."
    )
    verbose = forms.BooleanField(required=False, help_text="Keep full prompts and replies in the events.")
    metadata = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"ticket": "T-12"}', "spellcheck": "false"}),
        help_text="Optional JSON object.",
    )

    def clean_metadata(self) -> dict[str, Any]:
        text = self.cleaned_data["metadata"].strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError('Metadata must be a JSON object, like {"key": "value"}.')
        return value

    def run_options(self) -> dict[str, Any]:
        data = self.cleaned_data
        chosen: dict[str, Any] = {"dry_run": data["dry_run"], "verbose": data["verbose"]}
        if data.get("max_steps"):
            chosen["max_steps"] = data["max_steps"]
        if data.get("agent"):
            chosen["agent"] = data["agent"]
        return chosen

    def add_domain_error(self, error: DomainError) -> None:
        field = FIELD_OF.get(error.field or "", error.field)
        self.add_error(field if field in self.fields else None, error.message)


class DirectiveForm(forms.Form):
    text = forms.CharField(
        max_length=8000, widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Tell the agent something…"})
    )


class ScheduleForm(forms.Form):
    name = forms.CharField(max_length=200)
    project = forms.ModelChoiceField(
        queryset=Project.objects.order_by("name"), empty_label="Choose a project"
    )
    goal = forms.CharField(max_length=GOAL_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 2}))
    run_type = forms.ChoiceField(choices=RunType.choices, initial=RunType.PIPELINE)
    cron = forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"placeholder": "0 2 * * *"}),
        help_text="Minute hour day-of-month month day-of-week, in the server's TIME_ZONE.",
    )  # fmt: skip
    run_options = forms.CharField(
        required=False,
        label="Options (JSON)",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": '{"commands": ["pytest -q"]}'}),
    )

    def clean_run_options(self) -> dict[str, Any]:
        text = self.cleaned_data["run_options"].strip()
        try:
            value = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Options must be a JSON object.")
        return value

    def add_domain_error(self, error: DomainError) -> None:
        field = {"options": "run_options"}.get(error.field or "", error.field)
        self.add_error(field if field in self.fields else None, error.message)
