"""The LLM agent: look → plan → act with tools → commit each step → verify → iterate.

Every model turn asks for one JSON action (validated against ACTION_SCHEMA); invalid replies are repaired a
bounded number of times. The agent's whole state (conversation, plan, position, token totals) is
checkpointed on the run with every event it records, so resume and recovery continue where it was, and a
step whose commit landed before a worker died is recorded from git instead of being done again.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import jsonschema
from django.db.models import F

from events.models import EventType
from runs import workspace
from runs.agents.tools import Toolbox, ToolRejected
from runs.llm import LLMBadReply, LLMClient, LLMError, Message, get_client
from runs.models import AgentProfile, RunType

if TYPE_CHECKING:
    from runs.execution import RunContext

TOOL_ACTIONS = ("list_files", "read_file", "write_file", "replace_in_file", "delete_file", "run_command")
ACTIONS = ("plan", *TOOL_ACTIONS, "step_done", "finish")
_TEXT = {"type": "string", "maxLength": 300}
_PATH = {"type": "string", "minLength": 1, "maxLength": 300}
# One object schema per action: with `anyOf` a constrained decoder (llama.cpp, Ollama) can only produce
# replies that carry every field their action needs, which is what makes small local models usable.
ACTION_FIELDS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "plan": (
        {"steps": {"type": "array", "items": {**_TEXT, "minLength": 1}, "minItems": 1, "maxItems": 10}},
        ("steps",),
    ),
    "list_files": ({"path": _PATH}, ()),
    "read_file": (
        {
            "path": _PATH,
            "start_line": {"type": "integer", "minimum": 1},
            "end_line": {"type": "integer", "minimum": 1},
        },
        ("path",),
    ),
    "write_file": ({"path": _PATH, "content": {"type": "string", "maxLength": 60000}}, ("path", "content")),
    "replace_in_file": (
        {"path": _PATH, "old": {"type": "string", "minLength": 1}, "new": {"type": "string"}},
        ("path", "old", "new"),
    ),
    "delete_file": ({"path": _PATH}, ("path",)),
    "run_command": ({"command": {"type": "string", "minLength": 1, "maxLength": 500}}, ("command",)),
    "step_done": ({"summary": {"type": "string", "maxLength": 2000}}, ()),
    "finish": (
        {"success": {"type": "boolean"}, "summary": {"type": "string", "maxLength": 2000}},
        ("success", "summary"),
    ),
}


def _action_schema(action: str) -> dict[str, Any]:
    fields, required = ACTION_FIELDS[action]
    return {
        "type": "object",
        "properties": {"action": {"type": "string", "enum": [action]}, **fields, "thought": _TEXT},
        "required": ["action", *required],
        "additionalProperties": False,
    }


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


ACTION_SCHEMAS = {action: _action_schema(action) for action in ACTIONS}
# Built once: jsonschema.validate() checks the schema against its metaschema on every call, which cost
# ~4 ms of every model turn (profiled: bench/llm_step.py).
ACTION_VALIDATORS = {action: _validator(schema) for action, schema in ACTION_SCHEMAS.items()}
ACTION_SCHEMA: dict[str, Any] = {"anyOf": list(ACTION_SCHEMAS.values())}
REPAIR_ATTEMPTS = 2
RESULT_CHARS = 6000
KEEP_MESSAGES = 40
PREVIEW_CHARS = 300

SYSTEM_PROMPT = """You are a careful software engineer working in a git repository toward a goal.
You act through exactly one JSON object per reply, with an "action" and its fields:
- {{"action": "plan", "steps": ["...", "..."]}}: the steps you will take (1 to 10, short imperative sentences)
- {{"action": "list_files", "path": "."}}
- {{"action": "read_file", "path": "src/app.py", "start_line": 1, "end_line": 80}}
- {{"action": "write_file", "path": "src/app.py", "content": "whole new file text"}}
- {{"action": "replace_in_file", "path": "src/app.py", "old": "exact existing text", "new": "replacement"}}
- {{"action": "delete_file", "path": "old.txt"}}
- {{"action": "run_command", "command": "pytest -q"}}: {commands}
- {{"action": "step_done", "summary": "what this step changed"}}: the current step is finished
- {{"action": "finish", "success": true, "summary": "what was done"}}: the goal is reached (or cannot be)
Paths are relative to the repository root; .git is off limits.
Add "thought" with one short sentence of reasoning.
Work on one step at a time. Reply with JSON only."""


def _commands_note(allowed: list[str]) -> str:
    if not allowed:
        return "commands are OFF for this project: do not use run_command"
    return "only commands starting with one of: " + ", ".join(repr(c) for c in allowed)


class LLMAgent:
    batch_events = False  # each event is written before the call that follows it
    name = "llm"

    def __init__(self, client: LLMClient | None = None, profile: AgentProfile | None = None) -> None:
        self._client = client
        self.profile = profile
        self.staging: workspace.Staging | None = None

    # -- entry point -----------------------------------------------------------------------------
    def execute(self, context: RunContext) -> dict[str, Any]:
        run = context.run
        self.context = context
        self.options = run.options
        profile = self.profile
        model = run.options.get("model") or (profile.model if profile else "") or None
        self.client = self._client or get_client(model=model)
        self.max_turns = int(run.options.get("max_steps") or (profile and profile.max_steps) or 30)
        self.max_tokens = run.options.get("max_tokens") or (profile.max_tokens if profile else None)
        self.dry_run = bool(run.options.get("dry_run"))
        self.single_pass = run.run_type == RunType.TASK
        self.state: dict[str, Any] = dict(run.checkpoint or {})
        self.tree = self._open_workspace()
        allowed = list(run.project.allowed_commands or [])
        self.tools = Toolbox(
            self.tree.path if self.tree else run.project.local_path,
            dry_run=self.dry_run,
            allowed_commands=allowed,
            command_timeout=float(run.options.get("command_timeout", 600)),
            interrupt=context.check,
            overlay=self.state.setdefault("overlay", {}),
        )
        try:
            if not self.state.get("phase"):
                self._look(allowed)
            self._recover_landed_commit()
            while True:
                outcome = self._turn()
                if outcome is not None:
                    return outcome
        finally:
            if self._client is None:
                self.client.close()
            if self.staging is not None:
                self.staging.close()

    # -- workspace -------------------------------------------------------------------------------
    def _open_workspace(self) -> workspace.Worktree | None:
        run = self.context.run
        if self.dry_run:
            return None
        base = run.base_commit or None
        if base is None and run.options.get("ref"):  # build on another run's branch (workflow steps)
            ref = f"{run.options['ref']}^{{commit}}"
            base = workspace.git("rev-parse", "--verify", ref, cwd=run.project.local_path).strip()
        tree = workspace.open_worktree(run.project.local_path, run.pk, base)
        if not run.branch:
            self.context.record(
                EventType.AGENT_THINKING,
                {"agent": self.name, "message": f"Working in {tree.path} on branch {tree.branch}",
                 "branch": tree.branch, "base_commit": tree.base_commit},
                branch=tree.branch,
                base_commit=tree.base_commit,
            )  # fmt: skip
        self.state.setdefault("last_commit", tree.base_commit)
        self.staging = workspace.Staging(tree.path, at_head=tree.created)
        return tree

    def _recover_landed_commit(self) -> None:
        """A worker that died between its commit and the STEP_COMPLETED leaves HEAD ahead of the checkpoint:
        record that commit as the step instead of doing the step again."""
        if not self.tree or self.state.get("phase") != "act":
            return
        head = workspace.head(self.tree.path)
        if head == self.state.get("last_commit"):
            return
        commits = workspace.commits_since(self.tree.path, self.state["last_commit"])
        if commits:
            self._complete_step(head, [], commits[-1]["message"], recovered=True)

    # -- the loop --------------------------------------------------------------------------------
    def _look(self, allowed: list[str]) -> None:
        listing = self.tools.list_files(".")
        files = listing["files"][:200]
        readme = next(
            (f for f in files if f.lower() in ("readme.md", "readme", "readme.rst", "readme.txt")), None
        )
        readme_text = self.tools.read_file(readme, 1, 60)["content"] if readme else ""
        self.state.update(
            {
                "phase": "plan",
                "turns": 0,
                "plan": [],
                "step": 0,
                "iteration": 0,
                "messages": [
                    {
                        "role": "user",
                        "content": f"Goal: {self.context.run.goal}\n\nFiles ({listing['summary']}):\n"
                        + "\n".join(files)
                        + (f"\n\n{readme}:\n{readme_text[:3000]}" if readme else "")
                        + "\n\nLook at what you need, then reply with a plan.",
                    }
                ],
            }
        )
        self.context.record(
            EventType.AGENT_THINKING,
            {"agent": self.name, "message": f"Looked at the repository: {listing['summary']}",
             "files": files[:50], "commands": _commands_note(allowed)},
            checkpoint=self.state,
        )  # fmt: skip

    def _turn(self) -> dict[str, Any] | None:
        context = self.context
        for text in context.check_and_apply_directives():
            self._say("user", f"Operator directive (follow it; revise the plan if needed): {text}")
        if self.state["turns"] >= self.max_turns:
            raise LLMError(f"step budget exhausted: {self.max_turns} agent turns (options.max_steps) used")
        # The model's reply (LLM_CALL) and the event of what it asked for are written together, in one
        # write: a file tool, a plan or a commit takes milliseconds. What is pending is written before the
        # model is asked again and before a command, which may run for minutes.
        with context.batch():
            action = self._ask()
            kind = action["action"]
            phase = self.state["phase"]
            if kind == "plan":
                return self._plan(action)
            if kind in TOOL_ACTIONS:
                self._tool(action)
                return None
            if kind == "step_done":
                if phase != "act":
                    self._say("user", "There is no step in progress: reply with a plan first.")
                    self._checkpoint()
                    return None
                return self._step_done(action)
            return self._finish(action)

    def _plan(self, action: dict[str, Any]) -> None:
        revised = bool(self.state["plan"])
        self.state.update({"plan": action["steps"], "step": 0, "phase": "act"})
        self._say("user", self._step_prompt())
        self.context.record(
            EventType.PLAN_GENERATED,
            {"agent": self.name, "steps": action["steps"], "revised": revised,
             "iteration": self.state["iteration"], "thought": action.get("thought", "")},
            checkpoint=self.state,
        )  # fmt: skip

    def _step_prompt(self) -> str:
        plan = self.state["plan"]
        index = self.state["step"]
        return (
            f"Step {index + 1} of {len(plan)}: {plan[index]}\n"
            "Use the tools; reply step_done with a summary when this step is finished."
        )

    def _tool(self, action: dict[str, Any]) -> None:
        kind = action["action"]
        arguments = {k: v for k, v in action.items() if k not in ("action", "thought")}
        try:
            if self.profile and self.profile.allowed_tools and kind not in self.profile.allowed_tools:
                tools = ", ".join(self.profile.allowed_tools)
                raise ToolRejected(f"the {self.profile.name} profile may only use: {tools}")
            result = self._call_tool(kind, arguments)
        except ToolRejected as refusal:
            self._say("user", f"{kind} was refused: {refusal}")
            self.context.record(
                EventType.TOOL_REJECTED,
                {"tool": kind, "arguments": _brief(arguments), "reason": str(refusal)},
                checkpoint=self.state,
            )
            return
        shown = result.get("content") or result.get("output") or ""
        files = result.get("files")
        body = "\n".join(files) if files else shown
        self._say("user", f"{kind} result: {result['summary']}\n{body[:RESULT_CHARS]}")
        payload = {"tool": kind, "arguments": _brief(arguments), "result": result["summary"]}
        if kind == "run_command":
            payload.update({"exit_code": result["exit_code"], "timed_out": result["timed_out"],
                            "output_tail": result["output"][-2000:]})  # fmt: skip
        self.context.record(EventType.TOOL_CALL, payload, checkpoint=self.state)

    def _call_tool(self, kind: str, arguments: dict[str, Any]) -> dict[str, Any]:
        if kind == "list_files":
            return self.tools.list_files(arguments.get("path") or ".")
        if kind == "read_file":
            return self.tools.read_file(
                arguments["path"], arguments.get("start_line"), arguments.get("end_line")
            )
        if kind == "run_command":
            if self.staging is not None:
                self.staging.forget()
            self.context.flush()  # the model's call is shown before a command that may run for minutes
            return self.tools.run_command(arguments["command"])
        try:
            if kind == "write_file":
                return self.tools.write_file(arguments["path"], arguments["content"])
            if kind == "replace_in_file":
                return self.tools.replace_in_file(arguments["path"], arguments["old"], arguments["new"])
            return self.tools.delete_file(arguments["path"])
        finally:
            if self.staging is not None:
                self.staging.changed()  # staged while the agent records it and asks for the next action

    def _step_done(self, action: dict[str, Any]) -> dict[str, Any] | None:
        plan, index = self.state["plan"], self.state["step"]
        message = f"{plan[index]}\n\n{action.get('summary', '')}".strip()
        committed = None if self.staging is None else self.staging.commit(message)
        sha, files = committed if committed else (None, [])
        return self._complete_step(sha, files, action.get("summary", ""), recovered=False)

    def _complete_step(self, sha: str | None, files: list[str], summary: str, *, recovered: bool) -> None:
        plan, index = self.state["plan"], self.state["step"]
        if sha:
            self.state["last_commit"] = sha
        self.state["step"] = index + 1
        finished_plan = self.state["step"] >= len(plan)
        if finished_plan:
            self.state["phase"] = "verify"
            self._say("user", self._verify_prompt())
        else:
            self._say("user", self._step_prompt())
        self.context.record(
            EventType.STEP_COMPLETED,
            {"agent": self.name, "step": index + 1, "of": len(plan), "description": plan[index],
             "summary": summary[:PREVIEW_CHARS], "commit": sha, "files": files, "recovered": recovered},
            checkpoint=self.state,
        )  # fmt: skip
        return None

    def _verify_prompt(self) -> str:
        if self.tree is not None:
            changes = workspace.diff(self.tree.path, self.tree.base_commit, "HEAD")
            stat = (
                "\n".join(f"{f['path']} +{f['added']} -{f['deleted']}" for f in changes["files"])
                or "no changes"
            )
            shown = changes["diff"][:RESULT_CHARS]
        else:
            shown = self.tools.proposed_diff()[:RESULT_CHARS]
            stat = "(dry run: proposed changes)"
        ask = (
            'Reply finish with "success": true and a summary'
            if self.single_pass
            else 'Reply finish with "success": true and a summary if it is, or a new plan for what is missing'
        )
        return f"All steps are done. Is the goal achieved?\nChanges:\n{stat}\n{shown}\n{ask}."

    def _finish(self, action: dict[str, Any]) -> dict[str, Any] | None:
        success = action.get("success", True)
        if self.profile and self.profile.reports_verdict:
            verdict = "pass" if success else "fail"
            report = action.get("summary", "")
            self.context.record(EventType.REVIEW_REPORT, {"agent": self.profile.name, "verdict": verdict,
                                                          "report": report[:8000]})  # fmt: skip
            return {**self._summary(report), "verdict": verdict}
        if success or self.single_pass:
            if not success:
                raise LLMError(f"the agent could not reach the goal: {action.get('summary', '')[:500]}")
            return self._summary(action.get("summary", ""))
        self.state["iteration"] += 1
        self.state["phase"] = "plan"
        self._say("user", "Then reply with a new plan for what is still missing.")
        self.context.record(
            EventType.AGENT_THINKING,
            {"agent": self.name, "message": f"Not done yet: {action.get('summary', '')[:PREVIEW_CHARS]}",
             "iteration": self.state["iteration"]},
            checkpoint=self.state,
            current_iteration=F("current_iteration") + 1,
        )  # fmt: skip
        return None

    def _summary(self, text: str) -> dict[str, Any]:
        summary: dict[str, Any] = {"agent": self.name, "summary": text[:2000], "turns": self.state["turns"]}
        if self.tree is not None:
            commits = workspace.commits_since(self.tree.path, self.tree.base_commit)
            summary.update(
                {"branch": self.tree.branch, "base_commit": self.tree.base_commit, "commits": len(commits)}
            )
        else:
            summary["proposed_diff"] = self.tools.proposed_diff()[:200_000]
        return summary

    # -- talking to the model --------------------------------------------------------------------
    def _say(self, role: str, content: str) -> None:
        messages = self.state["messages"]
        messages.append({"role": role, "content": content})
        if len(messages) > KEEP_MESSAGES:
            del messages[1 : len(messages) - KEEP_MESSAGES + 1]

    def _checkpoint(self) -> None:
        self.context.record(
            EventType.AGENT_THINKING, {"agent": self.name, "message": "noted"}, checkpoint=self.state
        )

    def _system(self) -> Message:
        allowed = list(self.context.run.project.allowed_commands or [])
        content = SYSTEM_PROMPT.format(commands=_commands_note(allowed))
        if self.profile:
            tools = ", ".join(self.profile.allowed_tools) or "all tools"
            content = f"{self.profile.system_prompt}\nYour tools: {tools}.\n\n{content}"
        return {"role": "system", "content": content}

    def _ask(self) -> dict[str, Any]:
        """One action from the model, repairing invalid replies up to REPAIR_ATTEMPTS times."""
        problem = ""
        for _ in range(REPAIR_ATTEMPTS + 1):
            if self.state["turns"] >= self.max_turns:
                break
            messages: list[Message] = [self._system(), *self.state["messages"]]
            self.context.flush()  # an invalid reply's LLM_CALL, before the model is asked again
            reply = self.client.chat(messages, schema=ACTION_SCHEMA, interrupt=self.context.check)
            self.state["turns"] += 1
            self._record_call(messages, reply)
            try:
                action = parse_action(reply.content)
            except LLMBadReply as exc:
                problem = str(exc)
                self._say("assistant", reply.content[:RESULT_CHARS])
                self._say("user", f"That reply was invalid: {problem}. Reply with one valid JSON action.")
                continue
            self._say("assistant", json.dumps(action))
            return action
        raise LLMError(
            f"the model gave {REPAIR_ATTEMPTS + 1} invalid replies in a row; last problem: {problem}"
        )

    def _record_call(self, messages: list[Message], reply: Any) -> None:
        totals = self.state.setdefault("tokens", {"prompt": 0, "completion": 0})
        totals["prompt"] += reply.prompt_tokens
        totals["completion"] += reply.completion_tokens
        payload: dict[str, Any] = {
            "model": reply.model,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "latency_ms": reply.latency_ms,
            "attempts": reply.attempts,
            "turn": self.state["turns"],
            "phase": self.state["phase"],
        }
        if self.options.get("verbose"):
            payload.update({"prompt": messages, "reply": reply.content})
        else:
            payload["reply_preview"] = reply.content[:PREVIEW_CHARS]
        self.context.record(
            EventType.LLM_CALL,
            payload,
            checkpoint=self.state,
            prompt_tokens=F("prompt_tokens") + reply.prompt_tokens,
            completion_tokens=F("completion_tokens") + reply.completion_tokens,
        )
        used = totals["prompt"] + totals["completion"]
        if self.max_tokens is not None and used > int(self.max_tokens):
            raise LLMError(
                f"token budget exhausted: {used} tokens used, options.max_tokens is {self.max_tokens}"
            )


def parse_action(text: str) -> dict[str, Any]:
    """The model's reply as a validated action, or LLMBadReply saying what is wrong with it."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`").removeprefix("json").strip()
    try:
        action = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise LLMBadReply(f"not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(action, dict):
        raise LLMBadReply("the reply must be one JSON object")
    if action.get("action") not in ACTION_SCHEMAS:
        raise LLMBadReply(f"action must be one of {', '.join(ACTIONS)}; got {action.get('action')!r}")
    error = jsonschema.exceptions.best_match(ACTION_VALIDATORS[action["action"]].iter_errors(action))
    if error is not None:  # the error jsonschema.validate() would raise
        where = "/".join(str(p) for p in error.absolute_path) or action["action"]
        raise LLMBadReply(f"{where}: {error.message[:300]}")
    return action


def _brief(arguments: dict[str, Any]) -> dict[str, Any]:
    """Tool arguments for an event: long texts shortened."""
    return {k: (f"{v[:200]}... ({len(v)} chars)" if isinstance(v, str) and len(v) > 240 else v)
            for k, v in arguments.items()}  # fmt: skip
