"""Agents drive a run through a `RunContext`. `options.agent` picks one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runs.execution import RunContext
    from runs.models import Run


class Agent(Protocol):
    def execute(self, context: RunContext) -> dict[str, Any]:
        """Work toward the run's goal; return the summary that goes into RUN_COMPLETED."""
        ...


AGENT_NAMES = ("simple",)
DEFAULT_AGENT = "simple"


def get_agent(run: Run) -> Agent:
    from runs.agents.simple import SimpleAgent

    name = run.options.get("agent", DEFAULT_AGENT)
    if name == "simple":
        return SimpleAgent()
    raise ValueError(f"Unknown agent {name!r}; known agents: {', '.join(AGENT_NAMES)}")
