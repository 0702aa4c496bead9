"""Which directories may be registered as projects: absolute, existing directories inside one of
PROJECT_ROOTS once every symlink is resolved, and never `/`, a system directory or a home directory."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

from config.errors import InvalidInput

# Nothing inside these is ever a project.
SYSTEM_TREES = (
    "/proc",
    "/sys",
    "/dev",
    "/etc",
    "/boot",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/usr",
    "/run",
)
# These directories themselves are not projects (a project may lie below them).
SYSTEM_DIRS = ("/", "/var", "/home", "/root", "/tmp", "/opt", "/srv", "/mnt", "/media")  # noqa: S108


def _inside(path: str, parent: str) -> bool:
    return os.path.commonpath([path, parent]) == parent


def validate_project_path(raw: str, *, field: str = "local_path") -> str:
    """Return the normalized path, or raise InvalidInput saying what to fix."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("A project path is required.", field=field)
    if "\x00" in raw:
        raise InvalidInput("The path contains a NUL byte.", field=field)
    if not os.path.isabs(raw):
        raise InvalidInput(f"The path must be absolute (start with /): {raw!r}.", field=field)
    normalized = os.path.normpath(raw)
    resolved = os.path.realpath(normalized)
    roots = [os.path.realpath(root) for root in settings.PROJECT_ROOTS]
    if resolved in SYSTEM_DIRS or any(_inside(resolved, tree) for tree in SYSTEM_TREES):
        raise InvalidInput(f"{resolved} is a system directory and cannot be a project.", field=field)
    if resolved == os.path.realpath(Path.home()):
        raise InvalidInput(
            "A home directory cannot be a project; register a repository inside it.", field=field
        )
    if not os.path.exists(resolved):
        raise InvalidInput(f"{normalized} does not exist.", field=field)
    if not os.path.isdir(resolved):
        raise InvalidInput(f"{normalized} is not a directory.", field=field)
    if not any(_inside(resolved, root) for root in roots):
        allowed = ", ".join(settings.PROJECT_ROOTS)
        if resolved != normalized and any(_inside(normalized, root) for root in roots):
            raise InvalidInput(
                f"{normalized} leads through a symlink to {resolved}, outside the project roots ({allowed}).",
                field=field,
            )
        raise InvalidInput(
            f"{normalized} is outside the project roots ({allowed}); set PROJECT_ROOTS.", field=field
        )
    return resolved
