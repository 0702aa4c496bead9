"""Pipeline runs: the project's allowed commands, in order, in the run's workspace.

Output streams into COMMAND_OUTPUT events as it is produced; COMMAND_FINISHED tells the exit code and the
duration; the first failing command fails the run. Stop kills the command's process group at once; pause
lets the current command finish, then releases the worker, and resume continues with the next command.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from config.errors import RunInterrupted
from events.models import EventType
from runs import workspace
from runs.agents.tools import run_confined
from runs.models import RunStatus

if TYPE_CHECKING:
    from runs.execution import RunContext

DEFAULT_COMMAND_TIMEOUT = 600


class PipelineFailed(Exception):
    pass


class PipelineAgent:
    batch_events = False  # each event is written before the call that follows it
    name = "pipeline"

    def execute(self, context: RunContext) -> dict[str, Any]:
        run = context.run
        commands: list[str] = run.options.get("commands") or []
        timeout = float(run.options.get("command_timeout", DEFAULT_COMMAND_TIMEOUT))
        base = None
        if run.options.get("ref") and not run.base_commit:
            base = workspace.git(
                "rev-parse", "--verify", f"{run.options['ref']}^{{commit}}", cwd=run.project.local_path
            )
        tree = workspace.open_worktree(
            run.project.local_path, run.pk, run.base_commit or (base or "").strip() or None
        )
        if not run.branch:
            context.record(
                EventType.AGENT_THINKING,
                {"agent": self.name, "message": f"Running {len(commands)} command(s) in {tree.path}",
                 "branch": tree.branch, "base_commit": tree.base_commit},
                branch=tree.branch,
                base_commit=tree.base_commit,
            )  # fmt: skip
        start = int((run.checkpoint or {}).get("next_command", 0))
        for index in range(start, len(commands)):
            command = commands[index]
            context.record(EventType.EXECUTING, {"agent": self.name, "index": index, "of": len(commands),
                                                 "command": command})  # fmt: skip

            def stream(text: str, index: int = index) -> None:
                context.record(EventType.COMMAND_OUTPUT, {"index": index, "text": text})

            result = run_confined(
                shlex.split(command), cwd=str(tree.path), timeout=timeout,
                interrupt=lambda: _stop_only(context), on_output=stream,
            )  # fmt: skip
            passed = result["exit_code"] == 0
            finished = {key: result[key] for key in ("exit_code", "timed_out", "seconds", "output_bytes")}
            context.record(
                EventType.COMMAND_FINISHED,
                {"index": index, "command": command, "passed": passed, **finished},
                current_iteration=index + 1,
                checkpoint={"next_command": index + 1},
            )
            if not passed:
                verdict = (
                    f"timed out after {timeout:.0f} s"
                    if result["timed_out"]
                    else f"exited {result['exit_code']}"
                )
                raise PipelineFailed(f"command {index + 1} of {len(commands)} ({command}) {verdict}")
            context.check()  # a pause that arrived during the command takes effect here
        return {"agent": self.name, "commands": len(commands), "passed": len(commands)}


def _stop_only(context: RunContext) -> None:
    """While a command runs only a stop interrupts it; a pause waits for the command to finish."""
    try:
        context.check()
    except RunInterrupted as interrupted:
        if interrupted.status != RunStatus.PAUSED:
            raise
