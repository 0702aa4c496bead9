"""What a run may be asked to do: the typed known keys of `options`, limits on goal, name and metadata.

One place for these rules, used by the API and the console alike."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from django.utils.text import slugify

from config.errors import InvalidInput
from runs.agents import AGENT_NAMES
from runs.models import RunType

GOAL_MAX_LENGTH = 10_000
NAME_MAX_LENGTH = 200
DIRECTIVE_MAX_LENGTH = 8_000
METADATA_MAX_BYTES = 64 * 1024
MAX_STEPS_RANGE = (1, 1000)
STEP_SECONDS_RANGE = (0, 60)
MAX_COMMANDS = 50
MAX_ID = 2**63 - 1  # database ids are 64-bit
NUMBER_OPTIONS = {"max_tokens": (1, 100_000_000), "command_timeout": (1, 86_400)}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any, *, field: str, max_length: int, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string.", field=field)
    if "\x00" in value:
        raise InvalidInput(f"{field} contains a NUL byte.", field=field)
    if required and not value.strip():
        raise InvalidInput(f"{field} is required and cannot be blank.", field=field)
    if len(value) > max_length:
        raise InvalidInput(
            f"{field} is {len(value)} characters long; at most {max_length} are allowed.", field=field
        )
    return value


def clean_goal(value: Any) -> str:
    return _text(value, field="goal", max_length=GOAL_MAX_LENGTH, required=True).strip()


def clean_name(value: Any) -> str:
    return _text(value, field="name", max_length=NAME_MAX_LENGTH, required=False).strip()


def clean_comment(value: Any) -> str:
    return _text(value, field="comment", max_length=DIRECTIVE_MAX_LENGTH, required=False).strip()


def clean_directive(value: Any) -> str:
    return _text(value, field="text", max_length=DIRECTIVE_MAX_LENGTH, required=True)


def clean_run_type(value: Any) -> RunType:
    if value is None or value == "":
        return RunType.AGENT
    if value not in RunType.values:
        raise InvalidInput(
            f"run_type must be one of {', '.join(RunType.values)}; got {value!r}.", field="run_type"
        )
    return RunType(value)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _no_nul(value: Any, *, field: str) -> None:
    """PostgreSQL cannot store NUL in text or JSON; refuse it everywhere for the same behaviour on SQLite."""
    if _has_nul(value):
        raise InvalidInput(f"{field} contains a NUL character.", field=field)


def clean_options(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("options must be a JSON object.", field="options")
    for key in ("dry_run", "verbose"):
        if key in value and not isinstance(value[key], bool):
            raise InvalidInput(f"options.{key} must be true or false.", field="options")
    if "max_steps" in value:
        steps = value["max_steps"]
        low, high = MAX_STEPS_RANGE
        if not isinstance(steps, int) or isinstance(steps, bool) or not low <= steps <= high:
            raise InvalidInput(f"options.max_steps must be an integer from {low} to {high}.", field="options")
    if "step_seconds" in value:
        seconds = value["step_seconds"]
        low, high = STEP_SECONDS_RANGE
        if not _is_number(seconds) or not low <= seconds <= high:
            raise InvalidInput(
                f"options.step_seconds must be a number from {low} to {high}.", field="options"
            )
    if "agent" in value and (not isinstance(value["agent"], str) or not 0 < len(value["agent"]) <= 100):
        raise InvalidInput(
            f"options.agent must be {', '.join(AGENT_NAMES)} or an agent profile's name.", field="options"
        )
    if "model" in value and (not isinstance(value["model"], str) or not 0 < len(value["model"]) <= 200):
        raise InvalidInput("options.model must be a model name (1 to 200 characters).", field="options")
    for key, (low, high) in NUMBER_OPTIONS.items():
        number = value.get(key)
        if key in value and (not _is_number(number) or not low <= number <= high):
            raise InvalidInput(f"options.{key} must be a number from {low} to {high}.", field="options")
    if "max_tokens" in value and not isinstance(value["max_tokens"], int):
        raise InvalidInput("options.max_tokens must be an integer.", field="options")
    if "commands" in value:
        commands = value["commands"]
        if (
            not isinstance(commands, list)
            or not 0 < len(commands) <= MAX_COMMANDS
            or not all(isinstance(c, str) and 0 < len(c.strip()) <= 500 for c in commands)
        ):
            raise InvalidInput(
                f"options.commands must be a list of 1 to {MAX_COMMANDS} command lines of 1-500 characters.",
                field="options",
            )
        for command in commands:
            try:
                shlex.split(command)
            except ValueError as exc:
                raise InvalidInput(
                    f"options.commands: {command!r} cannot be parsed: {exc}.", field="options"
                ) from None
    if "ref" in value and (not isinstance(value["ref"], str) or not 0 < len(value["ref"]) <= 200):
        raise InvalidInput("options.ref must be a branch, tag or commit name.", field="options")
    _no_nul(value, field="options")
    size = len(json.dumps(value).encode())
    if size > METADATA_MAX_BYTES:
        raise InvalidInput(
            f"options is {size} bytes as JSON; at most {METADATA_MAX_BYTES} are allowed.", field="options"
        )
    return value


def clean_metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be a JSON object.", field="metadata")
    _no_nul(value, field="metadata")
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > METADATA_MAX_BYTES:
        raise InvalidInput(
            f"metadata is {size} bytes as JSON; at most {METADATA_MAX_BYTES} are allowed.", field="metadata"
        )
    return value


def generate_run_name(goal: str, run_id: int) -> str:
    """'Fix the login bug!' and 7 -> 'fix-the-login-bug-7'."""
    words = re.findall(r"\w+", goal.lower())[:6]
    stem = slugify(" ".join(words))[:60].strip("-") or "run"
    return f"{stem}-{run_id}"
