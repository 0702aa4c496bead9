"""Runs over the API: create with validation, list, detail, events, control, directives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import Event, EventType
from runs.models import Run, RunStatus


def create(api, project, **body):
    return api.post(
        "/api/runs/", {"project_id": project.pk, "goal": "Fix the login bug!", **body}, format="json"
    )


@pytest.mark.django_db
def test_it_creates_a_run(api, project):
    response = create(api, project, options={"agent": "simple", "max_steps": 2}, metadata={"ticket": "T-1"})
    assert response.status_code == 201
    body = response.json()
    assert response["Location"] == f"/api/runs/{body['id']}/"
    assert body["name"] == f"fix-the-login-bug-{body['id']}"
    assert (body["status"], body["run_type"], body["created_by"]) == ("QUEUED", "agent", "alice")
    assert body["metadata"] == {"ticket": "T-1"} and body["options"]["max_steps"] == 2
    for field in ("id", "project_id", "project_name", "goal", "current_iteration", "error", "created_at",
                  "started_at", "finished_at"):  # fmt: skip
        assert field in body
    created = Event.objects.get(run_id=body["id"])
    assert (created.seq, created.type) == (1, EventType.RUN_CREATED)
    assert created.payload["actor"] == "alice" and created.payload["request"]["metadata"] == {"ticket": "T-1"}


@pytest.mark.django_db
def test_it_keeps_a_given_name(api, project):
    assert create(api, project, name="my run").json()["name"] == "my run"


BAD_BODIES = {
    "missing goal": ({"goal": None}, "goal"),
    "blank goal": ({"goal": "   "}, "goal"),
    "long goal": ({"goal": "x" * 10_001}, "goal"),
    "run type": ({"run_type": "batch"}, "run_type"),
    "options list": ({"options": [1]}, "options"),
    "dry_run string": ({"options": {"dry_run": "yes"}}, "options"),
    "verbose number": ({"options": {"verbose": 1}}, "options"),
    "max_steps zero": ({"options": {"max_steps": 0}}, "options"),
    "max_steps big": ({"options": {"max_steps": 1001}}, "options"),
    "max_steps string": ({"options": {"max_steps": "3"}}, "options"),
    "max_steps bool": ({"options": {"max_steps": True}}, "options"),
    "step_seconds negative": ({"options": {"step_seconds": -1}}, "options"),
    "step_seconds big": ({"options": {"step_seconds": 61}}, "options"),
    "agent": ({"options": {"agent": "skynet"}}, "options"),
    "metadata list": ({"metadata": [1]}, "metadata"),
    "metadata big": ({"metadata": {"blob": "x" * (64 * 1024)}}, "metadata"),
    "project unknown": ({"project_id": 999_999}, "project_id"),
    "project string": ({"project_id": "1"}, "project_id"),
    "nul in goal": ({"goal": "a\x00b"}, "goal"),
    "name too long": ({"name": "n" * 201}, "name"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_it_refuses_invalid_runs_and_stores_nothing(api, project, case):
    changes, field = BAD_BODIES[case]
    body = {"project_id": project.pk, "goal": "Do it", **changes}
    body = {key: value for key, value in body.items() if value is not None}
    response = api.post("/api/runs/", body, format="json")
    assert response.status_code == 400, response.json()
    data = response.json()
    assert data["code"] == "invalid" and field in data and data["detail"]
    assert not Run.objects.exists() and not Event.objects.exists()


@pytest.mark.django_db
def test_it_refuses_bodies_that_are_not_json_objects(api):
    assert api.post("/api/runs/", [1], format="json").status_code == 400
    assert api.post("/api/runs/", "{", content_type="application/json").status_code == 400
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_writing_run_on_a_directory_without_git(api, project_root):
    plain = project_root / "plain"
    plain.mkdir()
    project = api.post("/api/projects/", {"name": "plain", "local_path": str(plain)}, format="json").json()
    response = api.post("/api/runs/", {"project_id": project["id"], "goal": "edit"}, format="json")
    assert response.status_code == 400 and "not a git repository" in response.json()["detail"]
    dry = {"project_id": project["id"], "goal": "edit", "options": {"dry_run": True}}
    assert api.post("/api/runs/", dry, format="json").status_code == 201


@pytest.mark.django_db
def test_it_lists_runs_newest_first_with_filters(api, project, make_run, make_repo):
    from projects.models import Project

    other = Project.objects.create(name="other", local_path=str(make_repo("other")))
    first = make_run(goal="fix the login page")
    second = make_run(goal="write docs", run_type="task")
    third = make_run(goal="refactor", project_id=other.pk)
    Run.objects.filter(pk=first.pk).update(status=RunStatus.COMPLETED)
    page = api.get("/api/runs/").json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert [r["id"] for r in page["results"]] == [third.pk, second.pk, first.pk]

    def ids(query: str) -> list[int]:
        response = api.get(f"/api/runs/?{query}")
        assert response.status_code == 200, response.json()
        return [r["id"] for r in response.json()["results"]]

    assert ids("status=COMPLETED") == [first.pk]
    assert ids(f"project={other.pk}") == [third.pk]
    assert ids("run_type=task") == [second.pk]
    assert ids("q=LOGIN") == [first.pk]
    assert ids(f"q={second.name}") == [second.pk]


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["status=DONE", "run_type=batch", "project=abc", "page=99"])
def test_it_refuses_invalid_list_queries(api, make_run, query):
    make_run()
    response = api.get(f"/api/runs/?{query}")
    assert response.status_code in (400, 404)
    assert set(response.json()) >= {"detail", "code"}


@pytest.mark.django_db
def test_it_paginates_with_a_capped_page_size(api, make_run):
    for _ in range(3):
        make_run()
    page = api.get("/api/runs/?page_size=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert len(api.get("/api/runs/?page_size=100000").json()["results"]) == 3


@pytest.mark.django_db
def test_it_lists_runs_with_a_constant_number_of_queries(api, make_run):
    make_run()
    with CaptureQueriesContext(connection) as few:
        api.get("/api/runs/")
    for _ in range(25):
        make_run()
    with CaptureQueriesContext(connection) as many:
        api.get("/api/runs/")
    assert len(many) == len(few)


@pytest.mark.django_db
def test_it_serves_a_run_and_404s_unknown_ones(api, make_run):
    run = make_run()
    assert api.get(f"/api/runs/{run.pk}").json()["id"] == run.pk
    missing = api.get("/api/runs/999999/")
    assert missing.status_code == 404 and missing.json() == {
        "detail": "Run 999999 does not exist.",
        "code": "not_found",
    }


@pytest.mark.django_db
def test_it_serves_events_after_a_cursor(api, make_run):
    from events.recorder import record_event

    run = make_run()
    for n in range(4):
        record_event(run.pk, EventType.AGENT_THINKING, {"n": n})
    body = api.get(f"/api/runs/{run.pk}/events/?after=2&limit=2").json()
    assert [e["seq"] for e in body["results"]] == [3, 4] and body["cursor"] == 4
    assert set(body["results"][0]) == {"seq", "type", "payload", "created_at"}
    empty = api.get(f"/api/runs/{run.pk}/events/?after=5").json()
    assert empty == {"results": [], "cursor": 5}
    assert len(api.get(f"/api/runs/{run.pk}/events/?limit=100000").json()["results"]) == 5
    for bad in ("after=-1", "after=x", "limit=0", "limit=y"):
        response = api.get(f"/api/runs/{run.pk}/events/?{bad}")
        assert response.status_code == 400, bad
    assert api.get("/api/runs/999999/events/").status_code == 404


@pytest.mark.django_db
def test_it_writes_a_page_of_events_exactly_as_the_event_serializer_does(api, make_run, settings):
    from rest_framework.renderers import JSONRenderer

    from events.recorder import record_event
    from runs.serializers import EventSerializer

    run = make_run()  # its RUN_CREATED is seq 1
    written = [
        (EventType.AGENT_THINKING, {"text": "héllo ✓ 日本語 🙂 \"quoted\" </b>", "deep": {"list": [1, 2.5, None, True, {}]}},
         datetime(2025, 3, 30, 0, 59, 59, 999999, tzinfo=UTC)),
        (EventType.TOOL_CALL, {}, datetime(2025, 3, 30, 1, 0, tzinfo=UTC)),
        (EventType.LLM_CALL, {"z": 1, "a": [[]], "big": 2**63}, datetime(2024, 12, 31, 23, 0, 0, 500, tzinfo=UTC)),
    ]  # fmt: skip
    for event_type, payload, moment in written:
        event = record_event(run.pk, event_type, payload)
        Event.objects.filter(pk=event.pk).update(created_at=moment)
    moments = {
        "UTC": ["2025-03-30T00:59:59.999999Z", "2025-03-30T01:00:00Z", "2024-12-31T23:00:00.000500Z"],
        "Europe/Paris": ["2025-03-30T01:59:59.999999+01:00", "2025-03-30T03:00:00+02:00",
                         "2025-01-01T00:00:00.000500+01:00"],
        "Asia/Kolkata": ["2025-03-30T06:29:59.999999+05:30", "2025-03-30T06:30:00+05:30",
                         "2025-01-01T04:30:00.000500+05:30"],
    }  # fmt: skip
    for zone, expected_moments in moments.items():
        settings.TIME_ZONE = zone
        response = api.get(f"/api/runs/{run.pk}/events/?after=1")
        events = Event.objects.filter(run=run, seq__gt=1).order_by("seq")
        serialized = {"results": EventSerializer(events, many=True).data, "cursor": 4}
        assert response.content == JSONRenderer().render(serialized), zone
        body = response.json()
        assert [list(event) for event in body["results"]] == [["seq", "type", "payload", "created_at"]] * 3
        assert [event["created_at"] for event in body["results"]] == expected_moments, zone
        assert [(e["seq"], e["type"], e["payload"]) for e in body["results"]] == [
            (seq, event_type, payload) for seq, (event_type, payload, _) in enumerate(written, start=2)
        ]
    assert '"text":"héllo ✓ 日本語 🙂 \\"quoted\\" </b>"'.encode() in response.content


@pytest.mark.django_db
def test_it_reads_a_page_of_events_in_the_same_queries_whatever_its_size(api, make_run):
    from events.recorder import record_event

    run = make_run()
    for n in range(300):
        record_event(run.pk, EventType.AGENT_THINKING, {"n": n})
    counts = {}
    for query in ("after=0&limit=1", "after=0&limit=500", "after=150&limit=100", "after=301"):
        with CaptureQueriesContext(connection) as queries:
            assert api.get(f"/api/runs/{run.pk}/events/?{query}").status_code == 200
        counts[query] = len(queries)
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/runs/999999/events/").status_code == 404
    counts["missing run"] = len(queries)
    assert set(counts.values()) == {2}, counts  # the token, then the run and its page in one statement


@pytest.mark.django_db
def test_it_caps_events_at_500(api, make_run):
    from events.recorder import record_event

    run = make_run()
    for _ in range(520):
        record_event(run.pk, EventType.AGENT_THINKING)
    assert len(api.get(f"/api/runs/{run.pk}/events/?limit=1000").json()["results"]) == 500


@pytest.mark.django_db
def test_it_controls_runs_and_answers_409_for_invalid_transitions(api, make_run):
    run = make_run()
    bad = api.post(f"/api/runs/{run.pk}/resume/")
    assert bad.status_code == 409 and bad.json()["code"] == "invalid_transition"
    assert "QUEUED" in bad.json()["detail"]
    paused = api.post(f"/api/runs/{run.pk}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "PAUSED"
    assert api.post(f"/api/runs/{run.pk}/resume/").json()["status"] == "QUEUED"
    assert api.post(f"/api/runs/{run.pk}/stop/").json()["status"] == "STOPPED"
    before = Event.objects.filter(run=run).count()
    for action in ("pause", "resume", "stop"):
        assert api.post(f"/api/runs/{run.pk}/{action}/").status_code == 409
    assert Event.objects.filter(run=run).count() == before
    actors = Event.objects.filter(run=run, type__in=[EventType.RUN_PAUSED, EventType.RUN_STOPPED])
    assert {e.payload["actor"] for e in actors} == {"alice"}
    assert api.post("/api/runs/999999/stop/").status_code == 404


@pytest.mark.django_db
def test_it_accepts_directives_while_active(api, make_run):
    run = make_run()
    response = api.post(f"/api/runs/{run.pk}/directive/", {"text": "use tabs"}, format="json")
    assert response.status_code == 201
    assert (
        response.json()["type"] == "DIRECTIVE_RECEIVED" and response.json()["payload"]["text"] == "use tabs"
    )
    for body in ({}, {"text": ""}, {"text": "x" * 8001}, {"text": 5}):
        assert api.post(f"/api/runs/{run.pk}/directive/", body, format="json").status_code == 400
    api.post(f"/api/runs/{run.pk}/stop/")
    late = api.post(f"/api/runs/{run.pk}/directive", {"text": "too late"}, format="json")
    assert late.status_code == 409 and "STOPPED" in late.json()["detail"]
    assert Event.objects.filter(run=run, type=EventType.DIRECTIVE_RECEIVED).count() == 1
    assert api.post("/api/runs/999999/directive/", {"text": "x"}, format="json").status_code == 404


@pytest.mark.django_db
def test_it_ignores_read_only_fields_on_create(api, project):
    body = {
        "project_id": project.pk, "goal": "x", "status": "COMPLETED", "attempt": 9, "created_by": "mallory",
        "lease_owner": "me", "lease_expires_at": "2099-01-01T00:00:00Z", "review_state": "approved",
        "merge_commit": "abc", "reviewed_by": "mallory", "branch": "main", "prompt_tokens": 5,
    }  # fmt: skip
    created = api.post("/api/runs/", body, format="json").json()
    assert (created["status"], created["attempt"], created["created_by"]) == ("QUEUED", 0, "alice")
    assert (created["review_state"], created["merge_commit"], created["reviewed_by"]) == ("none", "", None)
    run = Run.objects.get(pk=created["id"])
    assert (run.lease_owner, run.lease_expires_at, run.branch, run.prompt_tokens) == (None, None, "", 0)


@pytest.mark.django_db
def test_it_serves_events_exactly_as_the_event_serializer_writes_them(api, make_run, settings):
    from events.recorder import record_event
    from runs.serializers import EventSerializer

    run = make_run()
    record_event(
        run.pk, EventType.AGENT_THINKING, {"message": "héllo ✓", "nested": {"a": [1, 2.5, None, True]}}
    )
    record_event(run.pk, EventType.COMMAND_OUTPUT, {})
    for zone in ("UTC", "Europe/Berlin"):
        settings.TIME_ZONE = zone
        expected = EventSerializer(Event.objects.filter(run=run).order_by("seq"), many=True).data
        with CaptureQueriesContext(connection) as queries:
            body = api.get(f"/api/runs/{run.pk}/events/?after=0").json()
        assert body["results"] == [dict(item) for item in expected], zone
        assert body["cursor"] == 3
        assert len([q for q in queries.captured_queries if "events_event" in q["sql"]]) == 1
    assert api.get("/api/runs/999999/events/").status_code == 404
    assert api.get(f"/api/runs/{run.pk}/events/?after=3").json() == {"results": [], "cursor": 3}
