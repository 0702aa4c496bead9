"""The seed's simple agent: no LLM, no file changes. It plans `max_steps` steps and spends
`step_seconds` on each, which makes the platform's lifecycle, control and recovery visible and testable.
Every event it writes says that it is the simple agent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from events.models import EventType

if TYPE_CHECKING:
    from runs.execution import RunContext

DEFAULT_MAX_STEPS = 3
DEFAULT_STEP_SECONDS = 0.5
PLANNING_MESSAGE = "Simple agent (no LLM): planning fixed steps for the goal."


class SimpleAgent:
    name = "simple"
    # Nothing happens between most of its events: they are written together (see RunContext.batch), the
    # last ones with RUN_COMPLETED; a step's wait writes what came before it.
    batch_events = True

    def execute(self, context: RunContext) -> dict[str, Any]:
        run = context.run
        max_steps = int(run.options.get("max_steps", DEFAULT_MAX_STEPS))
        step_seconds = float(run.options.get("step_seconds", DEFAULT_STEP_SECONDS))
        plan: list[str] = run.checkpoint.get("plan") or []
        if not plan:
            context.record(EventType.AGENT_THINKING, {"agent": self.name, "message": PLANNING_MESSAGE})
            plan = [f"Step {n} of {max_steps} toward: {run.goal[:200]}" for n in range(1, max_steps + 1)]
            context.record(
                EventType.PLAN_GENERATED,
                {"agent": self.name, "steps": plan},
                checkpoint={"plan": plan, "directives": []},
            )
        for index in range(run.current_iteration, len(plan)):
            directives = context.apply_directives()
            context.record(
                EventType.EXECUTING,
                {"agent": self.name, "step": index + 1, "of": len(plan), "description": plan[index]},
            )
            context.wait(step_seconds)  # the simple agent's step is a timed pause, as in the seed
            notes = [*run.checkpoint.get("directives", []), *directives]
            context.record(
                EventType.STEP_COMPLETED,
                {"agent": self.name, "step": index + 1, "of": len(plan), "directives": directives},
                current_iteration=index + 1,
                checkpoint={"plan": plan, "directives": notes},
            )
        context.apply_directives()
        return {"agent": self.name, "steps": len(plan)}
