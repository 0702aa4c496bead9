"""Agents drive a run through a `RunContext`. `options.agent` picks one; see `agent_name_for`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runs.execution import RunContext
    from runs.models import Run


class Agent(Protocol):
    # True for an agent whose events mostly come with nothing done between them: the worker then writes
    # them in batches (RunContext.batch). An agent that calls out (LLM, tools, git) leaves it False (the
    # default when absent), so that each event is visible before the call.
    batch_events: bool

    def execute(self, context: RunContext) -> dict[str, Any]:
        """Work toward the run's goal; return the summary that goes into RUN_COMPLETED."""
        ...


AGENT_NAMES = ("llm", "simple")


def agent_name_for(options: dict[str, Any], run_type: str) -> str:
    """Pipelines run commands and workflows run child runs; otherwise `options.agent`, else the LLM
    agent."""
    if run_type in ("pipeline", "workflow"):
        return run_type
    if options.get("agent"):
        return options["agent"]
    return "llm"


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
    if name == "workflow":
        from runs.workflow import WorkflowAgent

        return WorkflowAgent()
    from runs.agents.llm import LLMAgent
    from runs.models import AgentProfile

    profile = AgentProfile.objects.filter(name=name).first()
    if profile is None:
        raise ValueError(f"Unknown agent {name!r}: use llm, simple or an agent profile's name")
    return LLMAgent(profile=profile)
