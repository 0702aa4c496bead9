"""Console pages through Django's test client: login, fragments, forms, controls, CSRF, query counts."""

from __future__ import annotations

import html
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from events.models import Event, EventType
from events.recorder import record_event
from projects.models import Project
from runs import lifecycle
from runs.execution import execute_run
from runs.models import Run, RunStatus


def text(response) -> str:
    return html.unescape(response.content.decode())


def words(response) -> str:
    """The visible text, tags removed and white space folded."""
    return " ".join(re.sub(r"<[^>]+>", " ", text(response)).split())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/", "/runs/new/", "/runs/1/", "/runs/1/events/", "/projects/", "/status/bar/"]
)
def test_it_requires_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_it_logs_in_and_out(client, alice):
    page = client.post("/accounts/login/", {"username": "alice", "password": "alice-password-1"}, follow=True)
    assert page.status_code == 200 and "Log out alice" in text(page)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_it_shows_counts_projects_and_filtered_runs(logged_in, make_run, project):
    done = make_run(goal="fix the login page")
    make_run(goal="write docs")
    Run.objects.filter(pk=done.pk).update(status=RunStatus.COMPLETED)
    response = logged_in.get("/")
    page = text(response)
    assert "1 Completed" in words(response) and "1 Queued" in words(response)
    assert f'href="/runs/{done.pk}/"' in page and project.name in page
    filtered = text(logged_in.get("/?status=COMPLETED&q=login"))
    table = filtered[filtered.index('id="runs-table"') :]
    assert done.name in table and "write-docs" not in table
    assert 'value="login"' in filtered, "the filter stays in the form (bookmarkable query string)"


@pytest.mark.django_db
def test_it_refreshes_the_table_only_while_runs_are_active(logged_in, make_run):
    run = make_run()
    fragment = logged_in.get("/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="runs-table")
    assert "<html" not in text(fragment) and 'hx-trigger="every 3s"' in text(fragment)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    quiet = logged_in.get("/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="runs-table")
    assert "hx-trigger" not in text(quiet)
    counts = text(quiet)[text(quiet).index('id="counts"') :]
    assert 'hx-swap-oob="true"' in counts and "1 Completed" in words(quiet), "counts refresh with the table"
    assert 'id="project-list" hx-swap-oob="true"' in text(quiet)


@pytest.mark.django_db
def test_it_fetches_the_new_run_form_when_the_dialog_opens(logged_in, project):
    page = text(logged_in.get("/"))
    assert 'id="create-dialog"' in page and 'id="create-form"' in page and 'name="goal"' not in page
    assert 'id="open-create" data-dialog="create-dialog"' in page and 'href="/runs/new/"' in page
    form = text(logged_in.get("/runs/new/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="create-form"))
    assert "<html" not in form and 'hx-post="/runs/new/"' in form and 'name="goal"' in form
    assert f'<option value="{project.pk}">' in form


@pytest.mark.django_db
def test_it_creates_a_run_without_javascript(logged_in, project):
    response = logged_in.post(
        "/runs/new/",
        {
            "project": project.pk,
            "goal": "Add a changelog",
            "run_type": "agent",
            "agent": "simple",
            "max_steps": 2,
        },
        follow=True,
    )
    run = Run.objects.get()
    assert response.redirect_chain[-1][0] == f"/runs/{run.pk}/"
    assert f"Run created: {run.name}" in text(response)
    assert run.options == {"dry_run": False, "verbose": False, "max_steps": 2, "agent": "simple"}


@pytest.mark.django_db
def test_it_shows_errors_beside_the_fields(logged_in, project):
    response = logged_in.post(
        "/runs/new/", {"project": project.pk, "goal": "", "run_type": "agent", "metadata": "{x"}
    )
    assert response.status_code == 400
    page = text(response)
    assert "This field is required." in page and "Not valid JSON" in page
    assert 'id="id_metadata_error"' in page and not Run.objects.exists()
    dialog = logged_in.post(
        "/runs/new/", {"project": project.pk, "goal": "g", "metadata": "[1]"}, HTTP_HX_REQUEST="true"
    )
    assert (
        dialog.status_code == 200 and "<html" not in text(dialog) and "must be a JSON object" in text(dialog)
    )


@pytest.mark.django_db
def test_it_redirects_the_dialog_to_the_new_run(logged_in, project):
    response = logged_in.post(
        "/runs/new/",
        {"project": project.pk, "goal": "g", "run_type": "task", "agent": "simple"},
        HTTP_HX_REQUEST="true",
    )
    assert response["HX-Redirect"] == f"/runs/{Run.objects.get().pk}/"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "shown", "hidden"),
    [
        (RunStatus.QUEUED, ["pause", "stop"], ["resume"]),
        (RunStatus.PAUSED, ["resume", "stop"], ["pause"]),
        (RunStatus.COMPLETED, [], ["pause", "resume", "stop"]),
    ],
)
def test_it_shows_only_valid_controls(logged_in, make_run, status, shown, hidden):
    run = make_run()
    Run.objects.filter(pk=run.pk).update(status=status)
    page = text(logged_in.get(f"/runs/{run.pk}/"))
    for action in shown:
        assert f'action="/runs/{run.pk}/{action}/"' in page
    for action in hidden:
        assert f'action="/runs/{run.pk}/{action}/"' not in page
    assert ('name="text"' in page) == (status != RunStatus.COMPLETED), "directive box only while active"


@pytest.mark.django_db
def test_it_pauses_and_reports_invalid_actions_as_a_notice(logged_in, make_run):
    run = make_run()
    paused = logged_in.post(f"/runs/{run.pk}/pause/", follow=True)
    assert "Run paused." in text(paused) and Run.objects.get(pk=run.pk).status == RunStatus.PAUSED
    again = logged_in.post(f"/runs/{run.pk}/pause/", follow=True)
    assert again.status_code == 200 and "Cannot pause run" in text(again)
    directive = logged_in.post(f"/runs/{run.pk}/directive/", {"text": "go slower"}, follow=True)
    assert "Directive sent" in text(directive)
    assert Event.objects.filter(
        run=run, type=EventType.DIRECTIVE_RECEIVED, payload__text="go slower"
    ).exists()


@pytest.mark.django_db
def test_it_enforces_csrf_on_controls(alice, make_run):
    client = Client(enforce_csrf_checks=True)
    client.login(username="alice", password="alice-password-1")
    run = make_run()
    assert client.post(f"/runs/{run.pk}/stop/").status_code == 403
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


@pytest.mark.django_db
def test_it_polls_events_with_a_constant_number_of_queries(logged_in, make_run):
    run = make_run()
    with CaptureQueriesContext(connection) as few:
        first = logged_in.get(f"/runs/{run.pk}/events/?after=0", HTTP_HX_REQUEST="true")
    for n in range(50):
        record_event(run.pk, EventType.AGENT_THINKING, {"message": f"thought {n}"})
    with CaptureQueriesContext(connection) as many:
        later = logged_in.get(f"/runs/{run.pk}/events/?after=1", HTTP_HX_REQUEST="true")
    assert len(many) == len(few)
    event_queries = [q["sql"] for q in many.captured_queries if "events_event" in q["sql"]]
    assert len(event_queries) == 1 and "seq >" in event_queries[0].replace('"', "")
    if connection.vendor == "sqlite":  # the poll reads the (run, seq) index, never the whole table
        with connection.cursor() as cursor:
            plan = " ".join(str(row) for row in cursor.execute(f"EXPLAIN QUERY PLAN {event_queries[0]}"))
        assert "SEARCH events_event USING INDEX" in plan and "(run_id=? AND seq>?)" in plan, plan
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    assert "<html" not in text(first) and "thought 49" in text(later) and "after=51" in text(later)


@pytest.mark.django_db
def test_it_removes_the_directive_box_when_the_run_ends(logged_in, make_run):
    run = make_run(options={"max_steps": 1})
    page = text(logged_in.get(f"/runs/{run.pk}/"))
    assert 'id="directive"' in page and f'action="/runs/{run.pk}/directive/"' in page
    live = text(logged_in.get(f"/runs/{run.pk}/events/?after=1", HTTP_HX_REQUEST="true"))
    assert 'hx-swap-oob="delete"' not in live
    execute_run(run.pk)
    ended = text(logged_in.get(f"/runs/{run.pk}/events/?after=1", HTTP_HX_REQUEST="true"))
    assert '<div id="directive" hx-swap-oob="delete">' in ended and "COMPLETED" in ended
    assert 'id="run-live" hx-swap-oob="true"' in ended and f'action="/runs/{run.pk}/stop/"' not in ended


@pytest.mark.django_db
def test_it_refreshes_a_pipelines_commands_as_a_fragment(logged_in, project):
    from runs.services import create_run

    project.allowed_commands = ["git status"]
    project.save()
    run = create_run(
        project_id=project.pk, goal="check", run_type="pipeline", run_options={"commands": ["git status"]}
    )
    page = text(logged_in.get(f"/runs/{run.pk}/"))
    assert 'id="commands"' in page and 'hx-trigger="every 2s"' in page
    with CaptureQueriesContext(connection) as queries:
        fragment = text(logged_in.get(f"/runs/{run.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="commands"))
    assert fragment.lstrip().startswith('<section class="card" id="commands"') and "<html" not in fragment
    assert "git status" in fragment and 'id="event-log"' not in fragment
    assert len(queries) <= 5, "session, user, run and the command events only"


@pytest.mark.django_db
def test_it_shows_options_and_metadata_in_the_header(logged_in, make_run):
    run = make_run(options={"max_steps": 3}, metadata={"ticket": "T-12"})
    page = text(logged_in.get(f"/runs/{run.pk}/"))
    assert "max_steps=3" in page and "ticket=T-12" in page


@pytest.mark.django_db
def test_it_stops_polling_a_finished_run(logged_in, make_run):
    run = make_run(options={"max_steps": 1})
    execute_run(run.pk)
    last = Run.objects.get(pk=run.pk).event_seq
    response = logged_in.get(f"/runs/{run.pk}/events/?after={last}", HTTP_HX_REQUEST="true")
    assert response.status_code == 286 and "hx-trigger" not in text(response)
    assert "live updates stopped" in text(logged_in.get(f"/runs/{run.pk}/"))


@pytest.mark.django_db
def test_it_renders_a_long_log_in_pages(logged_in, make_run):
    run = make_run()
    for n in range(5000):
        record_event(run.pk, EventType.AGENT_THINKING, {"message": f"thought {n}"})
    page = text(logged_in.get(f"/runs/{run.pk}/"))
    assert page.count('class="event ') == 200 and "thought 4999" in page and "thought 4700" not in page
    oldest = 5001 - 199
    assert f"before={oldest}" in page
    older = text(logged_in.get(f"/runs/{run.pk}/events/older/?before={oldest}", HTTP_HX_REQUEST="true"))
    assert (
        older.count('class="event ') == 200
        and "thought 4600" in older
        and 'hx-swap-oob="afterbegin:#event-log"' in older
    )


@pytest.mark.django_db
def test_it_registers_projects_with_errors_beside_the_field(logged_in, make_repo):
    bad = logged_in.post("/projects/", {"name": "etc", "local_path": "/etc"})
    assert bad.status_code == 400 and "system directory" in text(bad) and not Project.objects.exists()
    path = make_repo("console")
    good = logged_in.post(
        "/projects/", {"name": "console", "local_path": str(path), "allowed_commands": "pytest -q\n"}
    )
    project = Project.objects.get()
    assert good["Location"] == f"/projects/{project.pk}/" and project.allowed_commands == ["pytest -q"]
    assert "console" in text(logged_in.get(f"/projects/{project.pk}/"))


@pytest.mark.django_db
def test_it_shows_the_failure_reason_at_the_top(logged_in, make_run):
    run = make_run()
    lifecycle.fail(run.pk, "disk on fire")
    page = text(logged_in.get(f"/runs/{run.pk}/"))
    assert page.index("disk on fire") < page.index("Goal")


@pytest.mark.django_db
def test_it_reviews_from_the_run_page(logged_in, finished_run):
    run = finished_run()
    page = text(logged_in.get(f"/runs/{run.pk}/"))
    assert "hello.py" in page and "+2" in page and "def hello():" in page
    approved = logged_in.post(
        f"/runs/{run.pk}/approve/review/", {"strategy": "merge", "comment": "ok"}, follow=True
    )
    assert "Changes approved." in text(approved)
    assert Run.objects.get(pk=run.pk).review_state == "approved"
    rolled = logged_in.post(f"/runs/{run.pk}/rollback/review/", follow=True)
    assert "rolled back" in text(rolled)


@pytest.mark.django_db
def test_it_reports_service_status(logged_in, settings, httpserver):
    from django.core.cache import cache

    cache.clear()
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.9.0"})
    settings.OLLAMA_URL = httpserver.url_for("/").rstrip("/")
    settings.FORGEJO_URL = "http://127.0.0.1:9"
    settings.TAIGA_URL = ""
    response = logged_in.get("/status/bar/")
    bar = words(response)
    assert (
        "Ollama up" in bar
        and "Forgejo down" in bar
        and "Taiga not configured" in bar
        and "Worker down" in bar
    )
    assert "<html" not in text(response)


@pytest.mark.django_db
def test_it_shows_forgejo_and_taiga_up_when_they_answer(logged_in, settings, httpserver):
    from django.core.cache import cache

    cache.clear()
    httpserver.expect_request("/api/v1/version").respond_with_json({"version": "11.0.1"})
    httpserver.expect_request("/api/v1/").respond_with_json({"projects": "/api/v1/projects"})
    settings.FORGEJO_URL = settings.TAIGA_URL = httpserver.url_for("/").rstrip("/")
    bar = words(logged_in.get("/status/bar/"))
    assert "Forgejo up" in bar and "Taiga up" in bar and "Ollama not configured" in bar


@pytest.mark.django_db
def test_it_caches_probes_so_pages_never_wait(logged_in, settings, httpserver):
    from django.core.cache import cache

    cache.clear()
    httpserver.expect_request("/api/version").respond_with_json({"version": "1"})
    settings.OLLAMA_URL = httpserver.url_for("/").rstrip("/")
    logged_in.get("/status/bar/")
    logged_in.get("/status/bar/")
    assert len(httpserver.log) == 1, "the second render used the cached probe"
    page = text(logged_in.get("/"))
    assert 'hx-get="/status/bar/"' in page and len(httpserver.log) == 1, "pages never probe"
    assert "Ollama</strong> up" in page and 'hx-trigger="every 15s"' in page, "pages render the cached probe"
    cache.clear()
    empty = text(logged_in.get("/"))
    assert "Checking services" in empty and 'hx-trigger="load, every 15s"' in empty
    assert len(httpserver.log) == 1


@pytest.mark.django_db
def test_it_paginates_the_runs_table_keeping_filters(logged_in, make_run):
    for _ in range(27):
        make_run(goal="paged run")
    first = text(logged_in.get("/?q=paged"))
    assert first.count('<td data-label="Name">') == 25 and "Page 1 of 2" in first
    assert "q=paged&amp;page=2" in first or "q=paged&page=2" in first
    second = text(logged_in.get("/?q=paged&page=2"))
    assert second.count('<td data-label="Name">') == 2


@pytest.mark.django_db
def test_it_pages_all_runs_and_one_status_from_the_status_counts(logged_in, make_run):
    for n in range(27):
        run = make_run(goal=f"run {n}")
        if n % 3 == 0:
            lifecycle.apply_action(run.pk, lifecycle.Action.STOP, actor="alice")
    for url, rows in (("/", 25), ("/?page=2", 2), ("/?status=STOPPED", 9), ("/?status=QUEUED", 18)):
        with CaptureQueriesContext(connection) as queries:
            page = text(logged_in.get(url))
        assert page.count('<td data-label="Name">') == rows, url
        counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
        assert len(counts) == 2, counts  # per status, and awaiting review: not the list's length again
    assert "Page 2 of 2" in text(logged_in.get("/?page=2"))
    with CaptureQueriesContext(connection) as queries:
        assert text(logged_in.get("/?q=run+2")).count('<td data-label="Name">') == 8  # 2, 20-26
    assert len([q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]) == 3


@pytest.mark.django_db
def test_it_links_admin_and_browsable_api_for_staff_only(client, alice):
    client.login(username="alice", password="alice-password-1")
    assert 'href="/admin/"' not in text(client.get("/")) and 'href="/docs"' in text(client.get("/"))
    alice.is_staff = True
    alice.save()
    page = text(client.get("/"))
    assert 'href="/admin/"' in page and 'href="/api/"' in page


@pytest.mark.django_db
def test_it_sends_the_header_again_only_when_what_it_shows_changed(logged_in, make_run):
    run = make_run(options={"max_steps": 5})
    page = text(logged_in.get(f"/runs/{run.pk}/"))
    phase = re.search(r"phase=([0-9a-f]+)", page).group(1)
    record_event(run.pk, EventType.STEP_COMPLETED, {"step": 1}, changes={"current_iteration": 1})
    with CaptureQueriesContext(connection) as queries:
        same = text(logged_in.get(f"/runs/{run.pk}/events/?after=1&phase={phase}", HTTP_HX_REQUEST="true"))
    assert '<dd id="run-step" hx-swap-oob="true">1 / 5</dd>' in same and 'id="run-live"' not in same
    assert not [q for q in queries.captured_queries if "projects_project" in q["sql"]], "no whole run needed"
    assert f"after=2&phase={phase}" in same
    lifecycle.apply_action(run.pk, lifecycle.Action.PAUSE)
    changed = text(logged_in.get(f"/runs/{run.pk}/events/?after=2&phase={phase}", HTTP_HX_REQUEST="true"))
    assert 'id="run-live" hx-swap-oob="true"' in changed and "PAUSED" in changed
    assert f'action="/runs/{run.pk}/resume/"' in changed and 'id="run-step" hx-swap-oob' not in changed
    assert re.search(r"phase=([0-9a-f]+)", changed).group(1) != phase


@pytest.mark.django_db
def test_a_poll_that_brings_run_started_brings_the_header_that_says_running(logged_in, make_run, monkeypatch):
    """A worker may claim the run while a poll reads: the run is read after its events, never before."""
    from runs import selectors

    run = make_run()
    page = text(logged_in.get(f"/runs/{run.pk}/"))
    phase = re.search(r"phase=([0-9a-f]+)", page).group(1)
    real = selectors.events_after

    def claimed_meanwhile(run_id: int, after: int, limit: int):
        if not Run.objects.filter(pk=run_id, status=RunStatus.RUNNING).exists():
            lifecycle.claim(run_id, "worker-1")  # commits RUNNING and RUN_STARTED in one write
        return real(run_id, after, limit)

    monkeypatch.setattr(selectors, "events_after", claimed_meanwhile)
    poll = text(logged_in.get(f"/runs/{run.pk}/events/?after=0&phase={phase}", HTTP_HX_REQUEST="true"))
    assert "RUN_STARTED" in poll
    assert 'id="run-live" hx-swap-oob="true"' in poll and "RUNNING" in poll


@pytest.mark.django_db
def test_it_renders_each_event_row_once_however_many_polls_show_it(logged_in, make_run, monkeypatch):
    from runs.templatetags import console

    rendered: list[int] = []
    real = console.get_template

    class Counting:
        def __init__(self, name: str) -> None:
            self.template = real(name)

        def render(self, context):
            rendered.append(context["event"].seq)
            return self.template.render(context)

    monkeypatch.setattr(console, "get_template", Counting)
    monkeypatch.setattr(console, "_rendered_rows", console._RenderedRows())
    run = make_run()
    for n in range(3):
        record_event(run.pk, EventType.AGENT_THINKING, {"message": f"thought {n}"})
    polls = [text(logged_in.get(f"/runs/{run.pk}/events/?after=0", HTTP_HX_REQUEST="true")) for _ in range(3)]
    assert sorted(rendered) == [1, 2, 3, 4]
    assert all(poll.count('class="event ') == 4 and "thought 2" in poll for poll in polls)
    assert polls[0].split('<div id="poller"')[0] == polls[2].split('<div id="poller"')[0]
