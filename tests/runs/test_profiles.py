"""Agent profiles: coder, reviewer and planner exist from the start; tools, prompts and verdicts."""

from __future__ import annotations

import pytest

from events.models import Event, EventType
from runs.execution import execute_run
from runs.models import AgentProfile, Run, RunStatus


@pytest.mark.django_db
def test_it_starts_with_coder_reviewer_and_planner():
    profiles = {p.name: p for p in AgentProfile.objects.all()}
    assert {"coder", "reviewer", "planner"} <= set(profiles)
    assert profiles["coder"].allowed_tools == [] and profiles["reviewer"].reports_verdict
    assert set(profiles["planner"].allowed_tools) == {"list_files", "read_file"}


@pytest.mark.django_db
def test_it_refuses_unknown_agents(api, project):
    response = api.post("/api/runs/", {"project_id": project.pk, "goal": "g", "options": {"agent": "wizard"}},
                        format="json")  # fmt: skip
    assert response.status_code == 400 and "reviewer" in response.json()["detail"]


@pytest.mark.django_db
def test_it_keeps_a_read_only_profile_read_only_and_reports_a_verdict(scripted_llm, make_run, project):
    scripted_llm.queue(
        {"action": "plan", "steps": ["read the README"]},
        {"action": "write_file", "path": "sneaky.txt", "content": "x"},
        {"action": "read_file", "path": "README.md"},
        {"action": "step_done", "summary": "read"},
        {"action": "finish", "success": False, "summary": "The README lacks install steps."},
    )
    run = make_run(options={"agent": "reviewer"})
    assert execute_run(run.pk) == "completed"
    rejected = Event.objects.get(run=run, type=EventType.TOOL_REJECTED)
    assert "reviewer profile may only use" in rejected.payload["reason"]
    report = Event.objects.get(run=run, type=EventType.REVIEW_REPORT)
    assert report.payload == {
        "agent": "reviewer",
        "verdict": "fail",
        "report": "The README lacks install steps.",
    }
    system = scripted_llm.requests[0]["body"]["messages"][0]["content"]
    assert system.startswith("You review code.") and "Your tools: list_files, read_file" in system
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.review_state == "none"


@pytest.mark.django_db
def test_it_uses_the_profile_model(scripted_llm, make_run, settings):
    AgentProfile.objects.filter(name="planner").update(model="planner-model")
    scripted_llm.queue({"action": "plan", "steps": ["a"]}, {"action": "step_done"},
                       {"action": "finish", "success": True, "summary": "1. a"})  # fmt: skip
    run = make_run(options={"agent": "planner"})
    execute_run(run.pk)
    assert scripted_llm.requests[0]["body"]["model"] == "planner-model"


@pytest.mark.django_db
def test_it_hands_a_planners_plan_to_the_next_workflow_step(api, project, scripted_llm):
    steps = [
        {"key": "plan", "goal": "Plan a greeting", "run_type": "task", "agent": "planner"},
        {
            "key": "code",
            "goal": "Implement it",
            "run_type": "agent",
            "agent": "coder",
            "depends_on": ["plan"],
        },
    ]
    parent_id = api.post("/api/runs/", {"project_id": project.pk, "goal": "g", "run_type": "workflow",
                                        "options": {"steps": steps}}, format="json").json()["id"]  # fmt: skip
    scripted_llm.queue({"action": "plan", "steps": ["look"]}, {"action": "step_done"},
                       {"action": "finish", "success": True, "summary": "1. add hello.py printing hi"})  # fmt: skip
    execute_run(parent_id)
    execute_run(Run.objects.get(parent_id=parent_id, step_key="plan").pk)
    execute_run(parent_id)
    coder = Run.objects.get(parent_id=parent_id, step_key="code")
    assert "From step 'plan': 1. add hello.py printing hi" in coder.goal and coder.options["agent"] == "coder"
