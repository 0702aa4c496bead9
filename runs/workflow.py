"""Workflow runs: steps with dependencies, each executed as a child run.

`options.steps` = [{"key", "goal", "run_type", "agent"?, "options"?, "depends_on": [keys]}]. The parent
creates a child as soon as the steps it depends on have completed, passing it the branch of the step it
depends on (`options.ref`) so agents build on each other's work. It completes when every child completes;
a failed or stopped child fails the parent and the steps not yet started are never created. The parent
holds no worker while children run: each child that finishes queues its parent again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from config.errors import InvalidInput
from events.models import EventType
from runs.models import Run, RunStatus, RunType

if TYPE_CHECKING:
    from runs.execution import RunContext

MAX_STEPS = 20
STEP_TYPES = (RunType.AGENT, RunType.TASK, RunType.PIPELINE)


class WorkflowWaiting(Exception):
    """Children are still running: the parent lets go of its worker until one of them finishes."""


class WorkflowFailed(Exception):
    pass


def clean_steps(steps: Any) -> list[dict[str, Any]]:
    """Validate a workflow's steps: unique keys, known dependencies, no cycles (the cycle is named)."""
    from runs import options

    if not isinstance(steps, list) or not 0 < len(steps) <= MAX_STEPS:
        raise InvalidInput(
            f"A workflow needs options.steps: a list of 1 to {MAX_STEPS} steps.", field="options"
        )
    keys: list[str] = []
    for number, step in enumerate(steps, start=1):
        if not isinstance(step, dict):
            raise InvalidInput(f"options.steps[{number}] must be an object.", field="options")
        key = step.get("key")
        if not isinstance(key, str) or not key.strip() or len(key) > 100:
            raise InvalidInput(f"options.steps[{number}] needs a key (a short name).", field="options")
        if key in keys:
            raise InvalidInput(f"Two steps have the key {key!r}; keys must be unique.", field="options")
        keys.append(key)
        options.clean_goal(step.get("goal"))
        if step.get("run_type", RunType.AGENT) not in STEP_TYPES:
            raise InvalidInput(
                f"Step {key!r}: run_type must be one of {', '.join(STEP_TYPES)}.", field="options"
            )
        options.clean_options(
            {**(step.get("options") or {}), **({"agent": step["agent"]} if "agent" in step else {})}
        )
        depends = step.get("depends_on", [])
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            raise InvalidInput(f"Step {key!r}: depends_on must be a list of step keys.", field="options")
    known = set(keys)
    for step in steps:
        unknown = [d for d in step.get("depends_on", []) if d not in known]
        if unknown:
            raise InvalidInput(
                f"Step {step['key']!r} depends on unknown step(s): {', '.join(unknown)}.", field="options"
            )
    cycle = _find_cycle({step["key"]: list(step.get("depends_on", [])) for step in steps})
    if cycle:
        raise InvalidInput(
            f"The steps depend on each other in a cycle: {' -> '.join(cycle)}.", field="options"
        )
    return steps


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None


class WorkflowAgent:
    batch_events = False  # each event is written before the call that follows it
    name = "workflow"

    def execute(self, context: RunContext) -> dict[str, Any]:
        from runs.services import create_run

        parent = context.run
        steps = parent.options["steps"]
        children = {child.step_key: child for child in Run.objects.filter(parent=parent)}
        for key, child in children.items():
            if child.status in (RunStatus.FAILED, RunStatus.STOPPED):
                raise WorkflowFailed(
                    f"step {key!r} (run {child.pk}) ended {child.status}: {child.error or 'stopped'}"
                )
        for step in steps:
            if step["key"] in children:
                continue
            depends = step.get("depends_on", [])
            if not all(d in children and children[d].status == RunStatus.COMPLETED for d in depends):
                continue
            step_options = {**(step.get("options") or {})}
            if "agent" in step:
                step_options["agent"] = step["agent"]
            branch = next((children[d].branch for d in reversed(depends) if children[d].branch), "")
            if branch:
                step_options["ref"] = branch
            child = create_run(
                project_id=parent.project_id, goal=_goal_with_context(step, children),
                name=f"{parent.name}-{step['key']}",
                run_type=step.get("run_type", RunType.AGENT), run_options=step_options,
                metadata={"workflow": parent.pk, "step": step["key"]}, created_by=parent.created_by,
                parent=parent, step_key=step["key"],
            )  # fmt: skip
            children[step["key"]] = child
            context.record(
                EventType.EXECUTING,
                {"agent": self.name, "step": step["key"], "child_run": child.pk, "depends_on": depends,
                 "ref": branch or None},
                current_iteration=len(children),
            )  # fmt: skip
        if len(children) == len(steps) and all(c.status == RunStatus.COMPLETED for c in children.values()):
            return {
                "agent": self.name,
                "steps": len(steps),
                "children": {k: c.pk for k, c in children.items()},
            }
        raise WorkflowWaiting


def _goal_with_context(step: dict[str, Any], children: dict[str, Run]) -> str:
    """The step's goal, followed by what the steps it depends on reported (a planner's plan, say)."""
    from events.models import Event

    notes = []
    for key in step.get("depends_on", []):
        done = Event.objects.filter(run=children[key], type=EventType.RUN_COMPLETED).first()
        summary = (done.payload or {}).get("summary") if done else ""
        if summary:
            notes.append(f"From step {key!r}: {summary}")
    goal = step["goal"] if not notes else step["goal"] + "\n\n" + "\n".join(notes)
    return goal[:10_000]
