"""Agents drive a run through a `RunContext`. `options.agent` picks one; see `agent_name_for`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runs.execution import RunContext
    from runs.models import Run


class Agent(Protocol):
    def execute(self, context: RunContext) -> dict[str, Any]:
        """Work toward the run's goal; return the summary that goes into RUN_COMPLETED."""
        ...


AGENT_NAMES = ("llm", "simple")


def agent_name_for(options: dict[str, Any], run_type: str) -> str:
    """Pipelines run commands; otherwise `options.agent`, else the LLM agent for agent and task runs and
    the simple agent for workflows."""
    if run_type == "pipeline":
        return "pipeline"
    if options.get("agent"):
        return options["agent"]
    return "llm" if run_type in ("agent", "task") else "simple"


def get_agent(run: Run) -> Agent:
    name = agent_name_for(run.options, run.run_type)
    if name == "llm":
        from runs.agents.llm import LLMAgent

        return LLMAgent()
    if name == "simple":
        from runs.agents.simple import SimpleAgent

        return SimpleAgent()
    if name == "pipeline":
        from runs.agents.pipeline import PipelineAgent

        return PipelineAgent()
    raise ValueError(f"Unknown agent {name!r}; known agents: {', '.join(AGENT_NAMES)}")
