"""The LLM agent driven by a scripted model over real HTTP, in a real git repository."""

from __future__ import annotations

import subprocess

import pytest

from events.models import EventType
from runs.execution import execute_run
from runs.models import RunStatus
from tests.conftest import WorkerThread

T = EventType


def git(path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True).stdout


def two_step_script() -> list[dict]:
    return [
        {
            "action": "plan",
            "steps": ["Add a greeting module", "Mention it in the README"],
            "thought": "small",
        },
        {"action": "write_file", "path": "hello.py", "content": "def hello():\n    return 'hi'\n"},
        {"action": "step_done", "summary": "hello.py added"},
        {
            "action": "replace_in_file",
            "path": "README.md",
            "old": "# demo\n",
            "new": "# demo\n\nSee hello.py.\n",
        },
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
    assert (
        completed.type == T.RUN_COMPLETED and completed.payload["summary"] == "Greeting added and documented."
    )
    first = scripted_llm.requests[0]["body"]
    if provider == "ollama":
        assert len(first["format"]["anyOf"]) == 9
    else:
        assert first["response_format"]["type"] == "json_schema"


# --- behaviours -------------------------------------------------------------------------------------
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from django.utils import timezone  # noqa: E402

from events.models import Event  # noqa: E402
from runs import lifecycle, services  # noqa: E402
from runs.lifecycle import Action  # noqa: E402
from runs.models import Run  # noqa: E402
from tests.runs.conftest import Fault, edit_script  # noqa: E402

LLM = {"agent": "llm", "max_steps": 20}


def run_types(run) -> list[str]:
    return list(Event.objects.filter(run=run).order_by("seq").values_list("type", flat=True))


@pytest.mark.django_db
def test_it_repairs_an_invalid_reply(scripted_llm, make_run):
    script = edit_script()
    scripted_llm.queue("this is not json", {"action": "plan"}, *script)
    run = make_run(options=LLM)
    assert execute_run(run.pk) == "completed"
    repair = scripted_llm.requests[1]["body"]["messages"][-1]["content"]
    assert "That reply was invalid: not JSON" in repair
    assert "steps" in scripted_llm.requests[2]["body"]["messages"][-1]["content"]


@pytest.mark.django_db
def test_it_fails_after_too_many_invalid_replies(scripted_llm, make_run):
    scripted_llm.queue("nope", "[1]", '{"action": "dance"}')
    run = make_run(options=LLM)
    assert execute_run(run.pk) == "failed"
    run.refresh_from_db()
    assert "3 invalid replies" in run.error and "dance" in run.error


@pytest.mark.django_db
def test_it_shows_a_refused_path_to_the_model(scripted_llm, make_run, project):
    scripted_llm.queue(
        {"action": "plan", "steps": ["escape"]},
        {"action": "write_file", "path": "../../etc/evil", "content": "x"},
        {"action": "finish", "success": False, "summary": "could not"},
        {"action": "finish", "success": True, "summary": "gave up"},
    )
    run = make_run(options=LLM)
    execute_run(run.pk)
    rejected = Event.objects.get(run=run, type=EventType.TOOL_REJECTED)
    assert "leads outside the workspace" in rejected.payload["reason"]
    assert "write_file was refused" in scripted_llm.requests[2]["body"]["messages"][-1]["content"]
    assert not Path("/etc/evil").exists()


@pytest.mark.django_db
def test_it_runs_allowed_commands_and_refuses_others(scripted_llm, make_run, project):
    project.allowed_commands = ["git status", "sleep"]
    project.save()
    scripted_llm.queue(
        {"action": "plan", "steps": ["inspect"]},
        {"action": "run_command", "command": "git status --short"},
        {"action": "run_command", "command": "rm -rf ."},
        {"action": "run_command", "command": "sleep 600"},
        {"action": "step_done", "summary": "looked"},
        {"action": "finish", "success": True, "summary": "ok"},
    )
    run = make_run(options={**LLM, "command_timeout": 1})
    started = time.monotonic()
    assert execute_run(run.pk) == "completed"
    assert time.monotonic() - started < 10
    calls = list(Event.objects.filter(run=run, type=EventType.TOOL_CALL, payload__tool="run_command"))
    assert [c.payload["exit_code"] for c in calls] == [0, None] and calls[1].payload["timed_out"]
    refused = Event.objects.get(run=run, type=EventType.TOOL_REJECTED)
    assert "not allowed" in refused.payload["reason"]
    assert (Path(project.local_path) / "README.md").exists()


@pytest.mark.django_db(transaction=True)
def test_it_stops_within_a_second_while_the_model_generates(scripted_llm, make_run):
    scripted_llm.queue(
        {"action": "plan", "steps": ["one"]},
        Fault(chunk_delay=0.5),
        {"action": "list_files", "path": "." * 1},
    )
    scripted_llm.queue(*[Fault(chunk_delay=0.5), {"action": "list_files", "path": "."}] * 3)
    run = make_run(options=LLM)
    worker = WorkerThread(run.pk)
    worker.start()
    deadline = time.monotonic() + 10
    while len(scripted_llm.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    stopped_at = time.monotonic()
    lifecycle.apply_action(run.pk, Action.STOP, actor="alice")
    worker.join(timeout=3)
    assert worker.result == "interrupted: STOPPED" and time.monotonic() - stopped_at < 1.0
    assert run_types(run)[-1] == EventType.RUN_STOPPED


@pytest.mark.django_db(transaction=True)
def test_it_stops_within_a_second_during_a_command(scripted_llm, make_run, project, workspace_root):
    project.allowed_commands = ["sleep"]
    project.save()
    scripted_llm.queue(
        {"action": "plan", "steps": ["wait"]}, {"action": "run_command", "command": "sleep 600"}
    )
    run = make_run(options=LLM)
    worker = WorkerThread(run.pk)
    worker.start()
    deadline = time.monotonic() + 10
    while len(scripted_llm.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert sleeping_in(workspace_root), "the command is running"
    stopped_at = time.monotonic()
    lifecycle.apply_action(run.pk, Action.STOP, actor="alice")
    worker.join(timeout=3)
    assert worker.result == "interrupted: STOPPED" and time.monotonic() - stopped_at < 1.0
    assert not sleeping_in(workspace_root), "the command's process group is gone"


def sleeping_in(root: Path) -> list[int]:
    """Live `sleep 600` processes whose working directory is under root."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
            state = (proc / "status").read_text()
        except OSError:
            continue
        if cmdline[:2] == [b"sleep", b"600"] and cwd.startswith(str(root)) and "State:\tZ" not in state:
            found.append(int(proc.name))
    return found


def pause_after_first(run, event_type: EventType) -> None:
    """Execute the run until an operator pauses it right after its first `event_type` event; resume it."""
    import runs.execution as execution

    original_record = execution.record_events

    def pause_after(run_id, events, **kwargs):
        written = original_record(run_id, events, **kwargs)
        if any(event.type == event_type for event in events):
            lifecycle.apply_action(run.pk, Action.PAUSE, actor="alice")
        return written

    execution.record_events = pause_after
    try:
        assert execute_run(run.pk) == "interrupted: PAUSED"
    finally:
        execution.record_events = original_record
    lifecycle.apply_action(run.pk, Action.RESUME, actor="alice")


@pytest.mark.django_db
def test_it_pauses_and_resumes_mid_plan_without_duplicate_commits(scripted_llm, make_run, project):
    script = [
        {"action": "plan", "steps": ["first file", "second file"]},
        {"action": "write_file", "path": "one.txt", "content": "1\n"},
        {"action": "step_done", "summary": "one"},
    ]
    scripted_llm.queue(*script)
    run = make_run(options=LLM)
    pause_after_first(run, EventType.STEP_COMPLETED)
    scripted_llm.queue(
        {"action": "write_file", "path": "two.txt", "content": "2\n"},
        {"action": "step_done", "summary": "two"},
        {"action": "finish", "success": True, "summary": "both"},
    )
    assert execute_run(run.pk) == "completed"
    run.refresh_from_db()
    log = subprocess.run(["git", "-C", project.local_path, "log", "--format=%s", f"{run.base_commit}..{run.branch}"],
                         capture_output=True, text=True, check=True).stdout.split("\n")  # fmt: skip
    assert [line for line in log if line] == ["second file", "first file"]
    assert run_types(run).count(EventType.PLAN_GENERATED) == 1


@pytest.mark.django_db
def test_it_commits_each_step_with_the_files_it_changed_and_none_for_a_step_that_changed_nothing(
    scripted_llm, make_run
):
    scripted_llm.queue(
        {"action": "plan", "steps": ["Replace the README by a guide", "Check", "Add notes"]},
        {"action": "delete_file", "path": "README.md"},
        {"action": "write_file", "path": "docs/guide.md", "content": "How to use the greeting module.\n"},
        {"action": "step_done", "summary": "guide written"},
        {"action": "step_done", "summary": "nothing to change"},
        {"action": "write_file", "path": "notes one.txt", "content": "a\n"},
        {"action": "write_file", "path": "notes two.txt", "content": "b\n"},
        {"action": "step_done", "summary": "notes"},
        {"action": "finish", "success": True, "summary": "done"},
    )
    run = make_run(options=LLM)
    assert execute_run(run.pk) == "completed"
    run.refresh_from_db()
    steps = [s.payload for s in run.events.filter(type=T.STEP_COMPLETED).order_by("seq")]
    assert [s["files"] for s in steps] == [
        ["README.md", "docs/guide.md"],
        [],
        ["notes one.txt", "notes two.txt"],
    ]
    assert steps[1]["commit"] is None
    log = git(run.project.local_path, "log", "--format=%H", f"{run.base_commit}..{run.branch}").split()
    assert [s["commit"] for s in steps if s["commit"]] == log[::-1]
    assert run.checkpoint["last_commit"] == log[0]


def step_files(run) -> list[tuple[list[str], list[str] | None]]:
    """Each STEP_COMPLETED's files beside what `git log -1 --name-only` lists for its commit."""
    steps = run.events.filter(type=T.STEP_COMPLETED).order_by("seq")
    return [
        (s.payload["files"], s.payload["commit"] and git(run.project.local_path, "log", "-1", "--format=",
                                                          "--name-only", s.payload["commit"]).split("\n")[:-1])
        for s in steps
    ]  # fmt: skip


@pytest.mark.django_db
def test_it_records_the_files_of_each_commit_as_git_log_lists_them(scripted_llm, make_run):
    same = "the same text\n"
    scripted_llm.queue(
        {"action": "plan", "steps": ["new", "unchanged", "renamed", "quoted", "reverted", "deleted"]},
        {"action": "write_file", "path": "a.txt", "content": same},
        {"action": "write_file", "path": "it's here.txt", "content": "q\n"},
        {"action": "step_done"},
        {"action": "write_file", "path": "a.txt", "content": same},  # rewritten as it was
        {"action": "step_done"},
        {"action": "write_file", "path": "b.txt", "content": same},
        {"action": "delete_file", "path": "a.txt"},  # git log: a rename, listed by its new name
        {"action": "step_done"},
        {"action": "write_file", "path": "caf\u00e9.txt", "content": "c\n"},
        {"action": "step_done"},
        {"action": "replace_in_file", "path": "README.md", "old": "demo", "new": "changed"},
        {"action": "write_file", "path": "c.txt", "content": "c\n"},
        {"action": "replace_in_file", "path": "README.md", "old": "changed", "new": "demo"},
        {"action": "step_done"},
        {"action": "delete_file", "path": "c.txt"},
        {"action": "step_done"},
        {"action": "finish", "success": True, "summary": "done"},
    )
    run = make_run(options={**LLM, "max_steps": 30})
    assert execute_run(run.pk) == "completed"
    recorded = step_files(run)
    assert [files for files, _ in recorded] == [
        ["a.txt", "it's here.txt"], [], ["b.txt"], ['"caf\\303\\251.txt"'], ["c.txt"], ["c.txt"]
    ]  # fmt: skip
    assert all(files == logged for files, logged in recorded if logged is not None)
    assert recorded[1][1] is None, "a step that changed nothing made no commit"


@pytest.mark.django_db
def test_it_commits_what_a_command_staged(scripted_llm, make_run, project):
    project.allowed_commands = ["git mv"]
    project.save()
    scripted_llm.queue(
        {"action": "plan", "steps": ["write", "move"]},
        {"action": "write_file", "path": "a.txt", "content": "a\n"},
        {"action": "step_done"},
        {"action": "run_command", "command": "git mv a.txt b.txt"},  # staged by the command, not by us
        {"action": "step_done"},
        {"action": "finish", "success": True, "summary": "done"},
    )
    run = make_run(options=LLM)
    assert execute_run(run.pk) == "completed"
    recorded = step_files(run)
    assert recorded == [(["a.txt"], ["a.txt"]), (["b.txt"], ["b.txt"])]


@pytest.mark.django_db
def test_it_commits_a_step_paused_after_its_write_once_resumed(scripted_llm, make_run):
    scripted_llm.queue(
        {"action": "plan", "steps": ["write"]},
        {"action": "write_file", "path": "a.txt", "content": "a\n"},  # staged in the background
    )
    run = make_run(options=LLM)
    pause_after_first(run, EventType.TOOL_CALL)
    scripted_llm.queue({"action": "step_done"}, {"action": "finish", "success": True, "summary": "done"})
    assert execute_run(run.pk) == "completed"
    assert step_files(Run.objects.get(pk=run.pk)) == [(["a.txt"], ["a.txt"])]


@pytest.mark.django_db
def test_it_revises_the_plan_after_a_directive(scripted_llm, make_run):
    run = make_run(options=LLM)
    services.send_directive(run.pk, text="Also add a LICENSE file", actor="alice")
    scripted_llm.queue(
        {"action": "plan", "steps": ["README"]},
        {"action": "plan", "steps": ["README", "LICENSE"]},
        {"action": "write_file", "path": "LICENSE", "content": "MIT\n"},
        {"action": "step_done"},
        {"action": "step_done"},
        {"action": "finish", "success": True, "summary": "done"},
    )
    assert execute_run(run.pk) == "completed"
    first_prompt = scripted_llm.requests[0]["body"]["messages"]
    assert any("Operator directive" in m["content"] and "LICENSE" in m["content"] for m in first_prompt)
    plans = Event.objects.filter(run=run, type=EventType.PLAN_GENERATED).order_by("seq")
    assert [p.payload["revised"] for p in plans] == [False, True]
    assert Event.objects.filter(run=run, type=EventType.DIRECTIVE_APPLIED).count() == 1


@pytest.mark.django_db
def test_it_fails_when_the_step_budget_is_spent(scripted_llm, make_run):
    scripted_llm.queue(*[{"action": "list_files", "path": "."}] * 5)
    run = make_run(options={"agent": "llm", "max_steps": 3})
    assert execute_run(run.pk) == "failed"
    run.refresh_from_db()
    assert "step budget exhausted" in run.error and len(scripted_llm.requests) == 3


@pytest.mark.django_db
def test_it_fails_when_the_token_budget_is_spent(scripted_llm, make_run):
    scripted_llm.queue(*[{"action": "list_files", "path": "."}] * 5)
    run = make_run(options={**LLM, "max_tokens": 250})
    assert execute_run(run.pk) == "failed"
    run.refresh_from_db()
    assert "token budget exhausted: 360 tokens" in run.error and run.prompt_tokens == 300


@pytest.mark.django_db
def test_it_fails_clearly_when_no_llm_answers(make_run, settings, monkeypatch):
    import socket

    monkeypatch.setattr("runs.llm.base.BACKOFF_SECONDS", (0.01,) * 5)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.LLM_PROVIDER, settings.LLM_BASE_URL = "ollama", f"http://127.0.0.1:{port}"
    run = make_run(options=LLM)
    assert execute_run(run.pk) == "failed"
    run.refresh_from_db()
    assert f"no LLM at http://127.0.0.1:{port}: start Ollama or set LLM_BASE_URL" in run.error


@pytest.mark.django_db
def test_it_leaves_the_repository_untouched_in_a_dry_run(scripted_llm, make_run, project, workspace_root):
    repo = Path(project.local_path)

    def state() -> dict:
        files = {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
        refs = subprocess.run(["git", "-C", str(repo), "show-ref"], capture_output=True, text=True).stdout
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True
        ).stdout
        return {"files": files, "refs": refs, "status": status}

    before = state()
    scripted_llm.queue(*two_step_script())
    run = make_run(options={**LLM, "dry_run": True})
    assert execute_run(run.pk) == "completed"
    assert state() == before and not workspace_root.exists()
    completed = Event.objects.get(run=run, type=EventType.RUN_COMPLETED)
    assert (
        "+++ b/hello.py" in completed.payload["proposed_diff"]
        and "+See hello.py." in completed.payload["proposed_diff"]
    )
    run.refresh_from_db()
    assert run.review_state == "none"


@pytest.mark.django_db
@pytest.mark.parametrize("verbose", [True, False])
def test_it_keeps_prompts_only_when_verbose_and_never_the_api_key(scripted_llm, make_run, settings, verbose):
    settings.LLM_PROVIDER = "openai"
    settings.LLM_API_KEY = "sk-never-in-events"
    scripted_llm.queue(*edit_script())
    run = make_run(options={**LLM, "verbose": verbose})
    execute_run(run.pk)
    call = Event.objects.filter(run=run, type=EventType.LLM_CALL).first()
    assert ("prompt" in call.payload) is verbose and ("reply_preview" in call.payload) is not verbose
    everything = json.dumps(list(Event.objects.filter(run=run).values_list("payload", flat=True)))
    assert "sk-never-in-events" not in everything
    assert scripted_llm.requests[0]["headers"]["Authorization"] == "Bearer sk-never-in-events"


@pytest.mark.django_db
def test_it_iterates_until_the_goal_is_reached(scripted_llm, make_run):
    scripted_llm.queue(
        *edit_script()[:3],
        {"action": "finish", "success": False, "summary": "tests missing"},
        {"action": "plan", "steps": ["add a test"]},
        {"action": "write_file", "path": "test_hello.py", "content": "def test(): pass\n"},
        {"action": "step_done"},
        {"action": "finish", "success": True, "summary": "now complete"},
    )
    run = make_run(options=LLM)
    assert execute_run(run.pk) == "completed"
    run.refresh_from_db()
    assert run.current_iteration == 1
    assert Event.objects.filter(run=run, type=EventType.PLAN_GENERATED).count() == 2


@pytest.mark.django_db
def test_it_makes_a_single_pass_for_task_runs(scripted_llm, make_run):
    scripted_llm.queue(*edit_script()[:3], {"action": "finish", "success": False, "summary": "not quite"})
    run = make_run(run_type="task", options=LLM)
    assert execute_run(run.pk) == "failed"
    run.refresh_from_db()
    assert "could not reach the goal: not quite" in run.error and run.current_iteration == 0


@pytest.mark.django_db
def test_it_records_a_commit_that_landed_before_its_worker_died(scripted_llm, make_run, project):
    from runs.agents.llm import LLMAgent
    from runs.execution import RunContext

    run = make_run(options=LLM)
    scripted_llm.queue(
        {"action": "plan", "steps": ["write a", "write b"]},
        {"action": "write_file", "path": "a.txt", "content": "a\n"},
        Fault(status=404),  # the worker "dies" here: its next model call never returns an action
    )
    agent = LLMAgent()
    with pytest.raises(Exception):  # noqa: B017
        agent.execute(RunContext(lifecycle.claim(run.pk, "doomed-worker"), "doomed-worker"))
    # ...after committing the step but before recording STEP_COMPLETED:
    git = ["git", "-C", str(agent.tree.path), "-c", "user.name=A", "-c", "user.email=a@b"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "write a"], check=True)
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert services.sweep()["recovered"] == [run.pk]
    scripted_llm.queue(
        {"action": "write_file", "path": "b.txt", "content": "b\n"},
        {"action": "step_done", "summary": "b"},
        {"action": "finish", "success": True, "summary": "both"},
    )
    assert execute_run(run.pk) == "completed"
    run.refresh_from_db()
    steps = Event.objects.filter(run=run, type=EventType.STEP_COMPLETED).order_by("seq")
    assert [(s.payload["step"], s.payload["recovered"]) for s in steps] == [(1, True), (2, False)]
    log = subprocess.run(
        ["git", "-C", project.local_path, "log", "--format=%s", f"{run.base_commit}..{run.branch}"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert log == ["write b", "write a"], "the landed step was recorded, not committed again"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ([Fault(status=500)] * 3, "failed 3 times"),
        (["garbage, not json"] * 3, "3 invalid replies"),
        ([Fault(disconnect=True), {"action": "x" * 60}] * 3, "closed the stream"),
        ([Fault(chunk_delay=2), {"action": "list_files", "path": "." * 40}] * 3, "ReadTimeout"),
    ],
)
def test_it_fails_clearly_and_boundedly_when_the_llm_misbehaves(
    scripted_llm, make_run, settings, monkeypatch, faults, reason
):
    monkeypatch.setattr("runs.llm.base.BACKOFF_SECONDS", (0.01,) * 5)
    settings.LLM_TIMEOUT = 1
    scripted_llm.queue(*faults)
    run = make_run(options=LLM)
    started = time.monotonic()
    assert execute_run(run.pk) == "failed"
    assert time.monotonic() - started < 20
    run.refresh_from_db()
    assert reason in run.error
    types = run_types(run)
    assert types[-1] == EventType.RUN_FAILED and list(
        Event.objects.filter(run=run).values_list("seq", flat=True).order_by("seq")
    ) == list(range(1, len(types) + 1))


def event_writes(queries) -> list[str]:
    """The statements that wrote events (the recorder's INSERT, or PostgreSQL's one statement), with their
    values as the database got them."""
    return [q["sql"] for q in queries.captured_queries if 'INSERT INTO "events_event"' in q["sql"]]


@pytest.mark.django_db
def test_it_writes_each_model_reply_with_the_event_of_what_it_asked_for(scripted_llm, make_run):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    scripted_llm.queue(*two_step_script())
    run = make_run(options=LLM)
    with CaptureQueriesContext(connection) as queries:
        assert execute_run(run.pk) == "completed"
    writes = event_writes(queries)
    paired = [
        (sql.count("'LLM_CALL'"), sql.count("'TOOL_CALL'"), sql.count("'STEP_COMPLETED'")) for sql in writes
    ]
    assert paired.count((1, 1, 0)) == 2  # write_file, replace_in_file: one write each with their LLM_CALL
    assert paired.count((1, 0, 1)) == 2  # each step_done: its LLM_CALL, the commit, STEP_COMPLETED
    assert sum(sql.count("'LLM_CALL'") for sql in writes) == 6 == run.events.filter(type=T.LLM_CALL).count()
    types = list(run.events.order_by("seq").values_list("type", flat=True))
    assert types.count(T.TOOL_CALL) == 2 and types.index(T.PLAN_GENERATED) == types.index(T.LLM_CALL) + 1
    run.refresh_from_db()
    assert (run.prompt_tokens, run.completion_tokens) == (600, 120)  # increments add up within a write


@pytest.mark.django_db
def test_it_shows_the_models_call_before_a_command_runs(scripted_llm, make_run, project, monkeypatch):
    from runs.agents import tools

    project.allowed_commands = ["git status"]
    project.save()
    scripted_llm.queue(
        {"action": "plan", "steps": ["inspect"]},
        {"action": "run_command", "command": "git status --short"},
        {"action": "step_done", "summary": "looked"},
        {"action": "finish", "success": True, "summary": "ok"},
    )
    run = make_run(options=LLM)
    seen: list[list[str]] = []
    run_command = tools.Toolbox.run_command

    def watched(self, command: str):
        seen.append(list(run.events.order_by("seq").values_list("type", flat=True)))
        return run_command(self, command)

    monkeypatch.setattr(tools.Toolbox, "run_command", watched)
    assert execute_run(run.pk) == "completed"
    assert len(seen) == 1 and seen[0][-1] == T.LLM_CALL  # written before the command started
    assert run.events.filter(type=T.TOOL_CALL, payload__tool="run_command").count() == 1
