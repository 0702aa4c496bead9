"""Writes to projects. Every entry point (API, console, admin) goes through these."""

from __future__ import annotations

import shlex

from django.db import IntegrityError, transaction

from config.errors import Conflict, InvalidInput, NotFound
from projects.models import Project
from projects.paths import validate_project_path

NAME_MAX_LENGTH = 200


def _clean_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("A project name is required.", field="name")
    name = name.strip()
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidInput(f"The name is longer than {NAME_MAX_LENGTH} characters.", field="name")
    if "\x00" in name:
        raise InvalidInput("The name contains a NUL byte.", field="name")
    return name


def _ensure_unique(name: str, *, exclude_id: int | None = None) -> None:
    clash = Project.objects.filter(name=name)
    if exclude_id is not None:
        clash = clash.exclude(pk=exclude_id)
    if clash.exists():
        raise InvalidInput(f"A project named {name!r} already exists.", field="name")


MAX_ALLOWED_COMMANDS = 50


def _clean_commands(value: object) -> list[str]:
    """Command-line prefixes the agent may run, e.g. ["pytest", "ruff check"]; no shell syntax."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput("allowed_commands must be a list of command lines.", field="allowed_commands")
    commands = [item.strip() for item in value if item.strip()]
    if len(commands) > MAX_ALLOWED_COMMANDS:
        raise InvalidInput(f"At most {MAX_ALLOWED_COMMANDS} allowed commands.", field="allowed_commands")
    for command in commands:
        if len(command) > 200 or "\x00" in command:
            raise InvalidInput(f"{command[:40]!r}... is not a valid command.", field="allowed_commands")
        try:
            shlex.split(command)
        except ValueError as exc:
            raise InvalidInput(f"{command!r} cannot be parsed: {exc}.", field="allowed_commands") from None
    return commands


def get_project(project_id: int) -> Project:
    try:
        return Project.objects.get(pk=project_id)
    except Project.DoesNotExist:
        raise NotFound(f"Project {project_id} does not exist.") from None


def create_project(*, name: str, local_path: str, allowed_commands: object = None) -> Project:
    name = _clean_name(name)
    path = validate_project_path(local_path)
    commands = _clean_commands(allowed_commands if allowed_commands is not None else [])
    _ensure_unique(name)
    try:
        with transaction.atomic():
            return Project.objects.create(name=name, local_path=path, allowed_commands=commands)
    except IntegrityError:
        raise InvalidInput(f"A project named {name!r} already exists.", field="name") from None


def update_project(
    project: Project,
    *,
    name: str | None = None,
    local_path: str | None = None,
    allowed_commands: object = None,
) -> Project:
    if name is not None:
        project.name = _clean_name(name)
        _ensure_unique(project.name, exclude_id=project.pk)
    if local_path is not None:
        project.local_path = validate_project_path(local_path)
    if allowed_commands is not None:
        project.allowed_commands = _clean_commands(allowed_commands)
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError:
        raise InvalidInput(f"A project named {project.name!r} already exists.", field="name") from None
    return project


def delete_project(project: Project) -> None:
    runs = project.runs.count()
    if runs:
        raise Conflict(
            f"Project {project.name!r} has {runs} run(s) and cannot be deleted: "
            "runs and their events are kept for good."
        )
    project.delete()
