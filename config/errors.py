"""Domain errors. `config.api.exception_handler` maps them to HTTP once; the console shows their message."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class InvalidInput(DomainError):
    status_code = 400
    code = "invalid"


class LeaseLost(Exception):
    """The worker no longer holds the run's lease: it must stop writing at once."""


class RunInterrupted(Exception):
    """An operator paused or stopped the run; the worker leaves at the step boundary it reached."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class NotClaimed(Exception):
    """The run's claim, written with the agent's first events, found the run taken by another worker, or
    paused or stopped before it started: nothing of it was written, and the worker leaves."""
