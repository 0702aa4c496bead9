"""Pipeline runs: allowed commands in order, output streamed, first failure fails, stop and pause."""

from __future__ import annotations

import time

import pytest

from events.models import Event, EventType
from runs import lifecycle
from runs.execution import execute_run
from runs.lifecycle import Action
from runs.models import Run, RunStatus, RunType
from tests.conftest import WorkerThread

T = EventType


@pytest.fixture
def pipeline_project(project):
    project.allowed_commands = ["sh -c", "git status", "sleep"]
    project.save()
    return project


def pipeline(api, project, commands, **options):
    return api.post("/api/runs/", {"project_id": project.pk, "goal": "check", "run_type": "pipeline",
                                   "options": {"commands": commands, **options}}, format="json")  # fmt: skip


@pytest.mark.django_db
def test_it_refuses_pipelines_without_allowed_commands(api, pipeline_project):
    missing = api.post("/api/runs/", {"project_id": pipeline_project.pk, "goal": "g", "run_type": "pipeline"},
                       format="json")  # fmt: skip
    assert missing.status_code == 400 and "options.commands" in missing.json()["detail"]
    refused = pipeline(api, pipeline_project, ["git status", "rm -rf /"])
    assert (
        refused.status_code == 400
        and "rm -rf /" in refused.json()["detail"]
        and "git status" in refused.json()["detail"]
    )
    assert pipeline(api, pipeline_project, "git status").status_code == 400
    assert not Run.objects.exists()
    assert pipeline(api, pipeline_project, ["git status"]).status_code == 201


@pytest.mark.django_db
def test_it_streams_output_and_fails_on_the_first_failing_command(api, pipeline_project):
    commands = [
        "sh -c 'echo one; sleep 0.7; echo two'",
        "git status --short",
        "sh -c 'echo boom >&2; exit 3'",
        "sleep 0",
    ]
    run_id = pipeline(api, pipeline_project, commands).json()["id"]
    assert execute_run(run_id) == "failed"
    run = Run.objects.get(pk=run_id)
    assert run.run_type == RunType.PIPELINE and run.status == RunStatus.FAILED
    assert "command 3 of 4" in run.error and "exited 3" in run.error
    outputs = list(Event.objects.filter(run=run, type=T.COMMAND_OUTPUT, payload__index=0).order_by("seq"))
    assert len(outputs) >= 2, "the first command's output arrived in pieces, while it ran"
    assert "one" in outputs[0].payload["text"] and "two" not in outputs[0].payload["text"]
    finished = Event.objects.filter(run=run, type=T.COMMAND_FINISHED).order_by("seq")
    assert [f.payload["exit_code"] for f in finished] == [0, 0, 3]
    assert "boom" in "".join(
        e.payload["text"] for e in Event.objects.filter(run=run, type=T.COMMAND_OUTPUT, payload__index=2)
    )
    assert not Event.objects.filter(run=run, type=T.EXECUTING, payload__index=3).exists(), "the 4th never ran"


@pytest.mark.django_db
def test_it_completes_when_every_command_passes(api, pipeline_project):
    run_id = pipeline(api, pipeline_project, ["git status", "sh -c 'echo ok'"]).json()["id"]
    assert execute_run(run_id) == "completed"
    assert Run.objects.get(pk=run_id).current_iteration == 2


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_it_stops_a_running_command_within_a_second(api, pipeline_project):
    run_id = pipeline(api, pipeline_project, ["sleep 600"]).json()["id"]
    worker = WorkerThread(run_id)
    worker.start()
    wait_for(lambda: Event.objects.filter(run_id=run_id, type=T.EXECUTING).exists())
    time.sleep(0.3)
    stopped = time.monotonic()
    lifecycle.apply_action(run_id, Action.STOP, actor="alice")
    worker.join(timeout=3)
    assert worker.result == "interrupted: STOPPED" and time.monotonic() - stopped < 1.0


@pytest.mark.django_db(transaction=True)
def test_it_pauses_after_the_current_command_and_resumes_with_the_next(api, pipeline_project):
    commands = ["sh -c 'sleep 1; echo first'", "sh -c 'echo second'"]
    run_id = pipeline(api, pipeline_project, commands).json()["id"]
    worker = WorkerThread(run_id)
    worker.start()
    wait_for(lambda: Event.objects.filter(run_id=run_id, type=T.EXECUTING).exists())
    lifecycle.apply_action(run_id, Action.PAUSE, actor="alice")
    worker.join(timeout=5)
    assert worker.result == "interrupted: PAUSED"
    finished = list(
        Event.objects.filter(run_id=run_id, type=T.COMMAND_FINISHED).values_list("payload__index", flat=True)
    )
    assert finished == [0], "the command in progress finished; the next did not start"
    lifecycle.apply_action(run_id, Action.RESUME, actor="alice")
    assert execute_run(run_id) == "completed"
    finished = list(
        Event.objects.filter(run_id=run_id, type=T.COMMAND_FINISHED).values_list("payload__index", flat=True)
    )
    assert finished == [0, 1]


@pytest.mark.django_db
def test_it_shows_each_command_with_its_output_and_the_failed_one_open(client, alice, api, pipeline_project):
    run_id = pipeline(
        api, pipeline_project, ["sh -c 'echo fine'", "sh -c 'echo broken; exit 1'", "git status"]
    ).json()["id"]
    execute_run(run_id)
    client.login(username="alice", password="alice-password-1")
    page = client.get(f"/runs/{run_id}/").content.decode()
    section = page[page.index('id="commands"') :]
    assert section.count('class="command state-') == 3
    passed = section[section.index("state-passed") :]
    assert passed.startswith('state-passed"><details >') and "fine" in passed
    failed = section[section.index("state-failed") :]
    assert failed.startswith('state-failed"><details open>') and "broken" in failed and "exit 1" in failed
    assert "state-pending" in section and "hx-trigger" not in section[: section.index("</section>")]


@pytest.mark.django_db
def test_it_runs_on_another_runs_branch_with_ref(api, pipeline_project, finished_run):
    built = finished_run()  # an LLM run that wrote hello.py on its branch
    run_id = pipeline(api, pipeline_project, ["sh -c 'cat hello.py'"], ref=built.branch).json()["id"]
    assert execute_run(run_id) == "completed"
    output = "".join(e.payload["text"] for e in Event.objects.filter(run_id=run_id, type=T.COMMAND_OUTPUT))
    assert "def hello():" in output
    assert (
        Run.objects.get(pk=run_id).base_commit
        == built.events.filter(type=T.STEP_COMPLETED).last().payload["commit"]
    )
