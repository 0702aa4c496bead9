"""Workflow runs: steps with dependencies become child runs that build on each other's branches."""

from __future__ import annotations

import subprocess

import pytest

from events.models import EventType
from runs import lifecycle
from runs.execution import execute_run
from runs.lifecycle import Action
from runs.models import Run, RunStatus

STEPS = [
    {"key": "planner", "goal": "Write a plan in PLAN.md", "run_type": "task"},
    {"key": "coder", "goal": "Implement the plan", "run_type": "agent", "depends_on": ["planner"]},
    {"key": "reviewer", "goal": "Review the change", "run_type": "task", "depends_on": ["coder"]},
]


def workflow(api, project, steps):
    return api.post("/api/runs/", {"project_id": project.pk, "goal": "ship a feature", "run_type": "workflow",
                                   "options": {"steps": steps}}, format="json")  # fmt: skip


def writes(path: str, content: str, summary: str = "done") -> list[dict]:
    return [
        {"action": "plan", "steps": [f"write {path}"]},
        {"action": "write_file", "path": path, "content": content},
        {"action": "step_done", "summary": summary},
        {"action": "finish", "success": True, "summary": summary},
    ]


def head(repo: str, ref: str) -> str:
    return subprocess.run(
        ["git", "-C", repo, "rev-parse", ref], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [{"key": "a", "goal": "x", "depends_on": ["b"]}, {"key": "b", "goal": "y", "depends_on": ["a"]}],
            "a -> b -> a",
        ),
        ([{"key": "a", "goal": "x", "depends_on": ["a"]}], "a -> a"),
        ([{"key": "a", "goal": "x", "depends_on": ["ghost"]}], "unknown step(s): ghost"),
        ([{"key": "a", "goal": "x"}, {"key": "a", "goal": "y"}], "keys must be unique"),
        ([{"key": "a", "goal": ""}], "goal"),
        ([{"key": "a", "goal": "x", "run_type": "workflow"}], "run_type"),
        ([], "options.steps"),
    ],
)
def test_it_refuses_invalid_steps(api, project, steps, message):
    response = workflow(api, project, steps)
    assert response.status_code == 400 and message in response.json()["detail"]
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_it_runs_planner_coder_reviewer_in_order_on_each_others_branches(api, project, scripted_llm):
    parent_id = workflow(api, project, STEPS).json()["id"]
    scripted_llm.queue(*writes("PLAN.md", "1. add hello\n"), *writes("hello.py", "print('hi')\n"))
    scripted_llm.queue({"action": "plan", "steps": ["read"]}, {"action": "read_file", "path": "hello.py"},
                       {"action": "step_done", "summary": "looks right"}, {"action": "finish", "success": True,
                                                                            "summary": "approved"})  # fmt: skip
    order = []
    for _ in range(3):
        assert execute_run(parent_id) == "waiting for child runs"
        child = Run.objects.filter(parent_id=parent_id).order_by("-created_at", "-id").first()
        order.append(child.step_key)
        assert execute_run(child.pk) == "completed", Run.objects.get(pk=child.pk).error
    assert execute_run(parent_id) == "completed"
    assert order == ["planner", "coder", "reviewer"]
    children = {c.step_key: c for c in Run.objects.filter(parent_id=parent_id)}
    repo = project.local_path
    assert children["coder"].base_commit == head(repo, children["planner"].branch)
    assert children["reviewer"].base_commit == head(repo, children["coder"].branch)
    assert children["coder"].options["ref"] == children["planner"].branch
    parent = Run.objects.get(pk=parent_id)
    assert parent.status == RunStatus.COMPLETED and parent.current_iteration == 3
    listed = api.get(f"/api/runs/{parent_id}/children/").json()
    assert [c["step_key"] for c in listed] == ["planner", "coder", "reviewer"]
    assert all(c["parent_id"] == parent_id for c in listed)


@pytest.mark.django_db
def test_it_fails_with_a_failed_step_and_creates_no_later_steps(api, project, scripted_llm):
    parent_id = workflow(api, project, STEPS).json()["id"]
    execute_run(parent_id)
    planner = Run.objects.get(parent_id=parent_id)
    lifecycle.fail(planner.pk, "the planner gave up")
    assert execute_run(parent_id) == "failed"
    parent = Run.objects.get(pk=parent_id)
    assert "step 'planner'" in parent.error and "the planner gave up" in parent.error
    assert Run.objects.filter(parent_id=parent_id).count() == 1


@pytest.mark.django_db
def test_it_pauses_resumes_and_stops_children_with_the_parent(api, project):
    parent_id = workflow(
        api, project, [{"key": "only", "goal": "g", "run_type": "task", "agent": "simple"}]
    ).json()["id"]
    execute_run(parent_id)
    child = Run.objects.get(parent_id=parent_id)
    lifecycle.apply_action(parent_id, Action.PAUSE, actor="alice")
    assert Run.objects.get(pk=child.pk).status == RunStatus.PAUSED
    lifecycle.apply_action(parent_id, Action.RESUME, actor="alice")
    assert Run.objects.get(pk=child.pk).status == RunStatus.QUEUED
    lifecycle.apply_action(parent_id, Action.STOP, actor="alice")
    assert Run.objects.get(pk=child.pk).status == RunStatus.STOPPED
    assert (
        Run.objects.get(pk=child.pk)
        .events.filter(type=EventType.RUN_STOPPED, payload__actor="alice")
        .exists()
    )


@pytest.mark.django_db
def test_it_wakes_the_parent_when_a_child_finishes(api, project, django_capture_on_commit_callbacks):
    parent_id = workflow(api, project, [{"key": "only", "goal": "g", "run_type": "task", "agent": "simple",
                                         "options": {"max_steps": 1, "step_seconds": 0}}]).json()["id"]  # fmt: skip
    execute_run(parent_id)
    child = Run.objects.get(parent_id=parent_id)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert execute_run(child.pk) == "completed"
    assert callbacks, "finishing a child queues its parent"
    assert execute_run(parent_id) == "completed"


@pytest.mark.django_db
def test_it_shows_the_steps_on_the_run_page(client, alice, api, project):
    parent_id = workflow(api, project, STEPS).json()["id"]
    execute_run(parent_id)
    planner = Run.objects.get(parent_id=parent_id)
    client.login(username="alice", password="alice-password-1")
    page = client.get(f"/runs/{parent_id}/").content.decode()
    section = page[page.index('id="steps"') :]
    assert f'href="/runs/{planner.pk}/"' in section and section.count("NOT STARTED") == 2
    assert "after planner" in section and "after coder" in section
    child_page = client.get(f"/runs/{planner.pk}/").content.decode()
    assert f'href="/runs/{parent_id}/"' in child_page and "planner" in child_page
