"""The LLM agent driven by a scripted model over real HTTP, in a real git repository."""

from __future__ import annotations

import subprocess

import pytest

from events.models import EventType
from runs.execution import execute_run
from runs.models import RunStatus

T = EventType


def git(path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True).stdout


def two_step_script() -> list[dict]:
    return [
        {"action": "plan", "steps": ["Add a greeting module", "Mention it in the README"], "thought": "small"},
        {"action": "write_file", "path": "hello.py", "content": "def hello():\n    return 'hi'\n"},
        {"action": "step_done", "summary": "hello.py added"},
        {"action": "replace_in_file", "path": "README.md", "old": "# demo\n", "new": "# demo\n\nSee hello.py.\n"},
        {"action": "step_done", "summary": "README mentions hello.py"},
        {"action": "finish", "success": True, "summary": "Greeting added and documented."},
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_it_reaches_a_goal_in_two_committed_steps(scripted_llm, make_run, project, settings, provider):
    settings.LLM_PROVIDER = provider
    scripted_llm.queue(*two_step_script())
    checkout_head = git(project.local_path, "rev-parse", "HEAD")
    run = make_run(options={"agent": "llm", "max_steps": 20})
    assert execute_run(run.pk) == "completed"
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.branch == f"agent-runner/run-{run.pk}" and run.base_commit == checkout_head.strip()
    log = git(project.local_path, "log", "--format=%an|%s", f"{run.base_commit}..{run.branch}").splitlines()
    assert log == ["Agent Runner|Mention it in the README", "Agent Runner|Add a greeting module"]
    steps = run.events.filter(type=T.STEP_COMPLETED).order_by("seq")
    assert [s.payload["files"] for s in steps] == [["hello.py"], ["README.md"]]
    assert all(len(s.payload["commit"]) == 40 for s in steps)
    # the operator's checkout is untouched
    assert git(project.local_path, "rev-parse", "HEAD") == checkout_head
    assert git(project.local_path, "status", "--porcelain") == ""
    assert not (project.local_path and (__import__("pathlib").Path(project.local_path) / "hello.py").exists())
    calls = run.events.filter(type=T.LLM_CALL)
    assert calls.count() == 6
    assert (run.prompt_tokens, run.completion_tokens) == (600, 120)
    completed = run.events.get(type=T.RUN_COMPLETED)
    assert completed.type == T.RUN_COMPLETED and completed.payload["summary"] == "Greeting added and documented."
    first = scripted_llm.requests[0]["body"]
    if provider == "ollama":
        assert len(first["format"]["anyOf"]) == 9
    else:
        assert first["response_format"]["type"] == "json_schema"
