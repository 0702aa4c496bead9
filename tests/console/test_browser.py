"""The console in a real Chromium against a live server and a real worker cluster."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from config import status as status_bar
from runs.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_for_workers() -> None:
    """The cluster reports itself, and the status bar's cached probe from earlier tests is dropped."""
    import time

    from django.core.cache import cache

    from runs.services import worker_status

    deadline = time.monotonic() + 20
    while not worker_status()["alive"]:
        assert time.monotonic() < deadline, "the worker cluster did not come up"
        time.sleep(0.1)
    cache.delete(status_bar.CACHE_KEY)


def log_in(page: Page, live_server) -> None:
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-password-1")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()


def test_it_creates_a_run_in_the_dialog_and_follows_it_live(page: Page, live_server, alice, make_repo, start_cluster,
                                                           screenshot):  # fmt: skip
    start_cluster()
    wait_for_workers()
    repo = make_repo("webapp")
    log_in(page, live_server)
    page.get_by_role("link", name="Projects").first.click()
    page.get_by_label("Name").fill("webapp")
    page.get_by_label("Local path").fill("/etc")
    page.get_by_role("button", name="Register").click()
    expect(page.locator(".has-error")).to_contain_text("system directory")
    page.get_by_label("Local path").fill(str(repo))
    page.get_by_role("button", name="Register").click()
    expect(page.locator(".toast")).to_contain_text("Project webapp registered")
    screenshot(page, "project-light")
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("#status-bar")).to_contain_text("Worker up", timeout=10_000)
    screenshot(page, "dashboard-light")
    page.locator("#open-create").click()
    dialog = page.locator("#create-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Project")).to_be_focused()  # fetched when the dialog opened, then focused
    page.set_viewport_size({"width": 1280, "height": 1000})  # the whole dialog in the screenshots
    screenshot(page, "create-dialog")
    dialog.get_by_label("Project").select_option(label="webapp")
    dialog.get_by_label("Goal").fill("Tidy the README")
    dialog.get_by_label("Agent").select_option("simple")
    dialog.get_by_label("Max steps").fill("4")
    dialog.get_by_label("Metadata").fill("{not json")
    dialog.get_by_role("button", name="Create run").click()
    expect(dialog.locator("#id_metadata_error")).to_contain_text("Not valid JSON")
    screenshot(page, "create-dialog-error")
    page.set_viewport_size({"width": 1280, "height": 720})
    assert not Run.objects.exists()
    dialog.get_by_label("Metadata").fill('{"ticket": "T-7"}')
    dialog.get_by_role("button", name="Create run").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    expect(page.locator(".toast")).to_contain_text("Run created")
    log = page.get_by_role("log")
    expect(log).to_contain_text("RUN_STARTED", timeout=10_000)
    duration = page.locator("#run-live [data-tick]")
    first = duration.inner_text()
    page.wait_for_timeout(1200)
    assert duration.inner_text() != first or "COMPLETED" in page.locator("#run-status").inner_text()
    expect(log).to_contain_text("RUN_COMPLETED", timeout=15_000)
    expect(page.locator("#poller")).to_contain_text("live updates stopped", timeout=5_000)
    polls_after_the_end: list[str] = []
    page.on(
        "request",
        lambda request: "/events/?after=" in request.url and polls_after_the_end.append(request.url),
    )
    expect(page.locator("#run-status")).to_contain_text("COMPLETED")
    expect(page.get_by_role("textbox", name="Directive")).to_have_count(0)
    # Follow keeps the log scrolled to its newest event without scrolling the page away from the header;
    # scrolling back through the log turns it off. (A short window, so that 13 events overflow the log.)
    page.set_viewport_size({"width": 1280, "height": 520})
    page.evaluate("""() => {
        window.scrollTo(0, 0);
        const follow = document.getElementById("follow");
        follow.checked = true;
        follow.dispatchEvent(new Event("change"));
    }""")
    assert log.evaluate("el => el.scrollHeight > el.clientHeight")
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 8
    assert page.evaluate("window.scrollY") == 0
    log.evaluate("el => { el.scrollTop = 0; }")
    expect(page.locator("#follow")).not_to_be_checked()
    page.locator("#follow").check()
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 8
    page.set_viewport_size({"width": 1280, "height": 720})
    newest = log.locator("li.event").last
    newest.locator("summary").click()
    expect(newest.locator("pre")).to_be_visible()
    expect(page.get_by_text("ticket=T-7")).to_be_visible()
    run = Run.objects.get()
    assert run.run_metadata == {"ticket": "T-7"} and run.status == "COMPLETED"
    screenshot(page, "run-completed-light")
    page.wait_for_timeout(1600)  # longer than one polling interval
    assert not polls_after_the_end, "polling stopped when the run ended"


def test_it_pauses_resumes_directs_and_stops_from_the_page(page: Page, live_server, alice, make_run, start_cluster,
                                                           screenshot):  # fmt: skip
    start_cluster()
    run = make_run(options={"max_steps": 40, "step_seconds": 0.5})
    log_in(page, live_server)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    log = page.get_by_role("log")
    expect(log).to_contain_text("STEP_COMPLETED", timeout=10_000)
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#run-status")).to_contain_text("PAUSED")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    page.get_by_role("textbox", name="Directive").fill("Prefer small commits")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".toast")).to_contain_text("Directive sent")
    expect(log).to_contain_text("Prefer small commits")
    page.get_by_role("button", name="Resume").click()
    expect(log).to_contain_text("DIRECTIVE_APPLIED", timeout=10_000)
    page.emulate_media(color_scheme="dark")
    screenshot(page, "run-live-dark")
    page.emulate_media(color_scheme="light")
    screenshot(page, "run-live-light")
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "run-live-375px")
    page.set_viewport_size({"width": 1280, "height": 720})
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#run-status")).to_contain_text("STOPPED")
    expect(page.get_by_role("button", name="Resume")).to_have_count(0)
    assert Run.objects.get(pk=run.pk).status == "STOPPED"


def test_it_works_without_javascript(browser, live_server, alice, project, make_run):
    from runs import lifecycle

    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, live_server)
    page.goto(f"{live_server.url}/runs/new/")
    page.get_by_label("Project").select_option(label="demo")
    page.get_by_label("Goal").fill("Without scripts")
    page.get_by_label("Agent").select_option("simple")
    page.get_by_label("Metadata").fill("[1, 2]")
    page.get_by_role("button", name="Create run").click()
    expect(page.locator("#id_metadata_error")).to_contain_text("must be a JSON object")
    page.get_by_label("Metadata").fill("")
    page.get_by_role("button", name="Create run").click()
    expect(page.locator(".toast")).to_contain_text("Run created")
    run = Run.objects.get(goal="Without scripts")
    expect(page).to_have_url(f"{live_server.url}/runs/{run.pk}/")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#run-status")).to_contain_text("PAUSED")
    lifecycle.apply_action(run.pk, lifecycle.Action.RESUME, actor="bob")
    page.get_by_role("button", name="Resume").click()  # a stale page: the run is running again
    expect(page.get_by_role("alert")).to_contain_text("Cannot resume")
    expect(page.locator("#run-status")).to_contain_text("QUEUED")
    page.get_by_role("button", name="Stop").click()  # no confirmation without scripts: a plain POST
    expect(page.locator("#run-status")).to_contain_text("STOPPED")
    assert Run.objects.get(pk=run.pk).status == "STOPPED"
    context.close()


def test_it_keeps_a_run_when_the_stop_is_cancelled(page: Page, live_server, alice, make_run):
    run = make_run()
    log_in(page, live_server)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#run-status")).to_contain_text("QUEUED")
    assert Run.objects.get(pk=run.pk).status == "QUEUED"


def test_it_shows_new_events_without_reloading(page: Page, live_server, alice, make_run):
    from events.models import EventType
    from events.recorder import record_event

    run = make_run()
    log_in(page, live_server)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    marker = page.evaluate("() => { window.__kept = true; return window.__kept; }")
    record_event(run.pk, EventType.AGENT_THINKING, {"message": "pushed from the server"})
    expect(page.get_by_role("log")).to_contain_text("pushed from the server", timeout=5_000)
    assert marker and page.evaluate("() => window.__kept === true"), "the page was not reloaded"
    page.locator("#type-filter").select_option("RUN_CREATED")
    expect(page.locator("li.event[data-type=AGENT_THINKING]")).to_be_hidden()
    expect(page.locator("li.event[data-type=RUN_CREATED]")).to_be_visible()


def test_it_loads_older_events_and_shows_them_from_the_top(page: Page, live_server, alice, make_run):
    from events.models import EventType
    from events.recorder import record_event

    run = make_run()  # stays QUEUED (no worker): the page keeps polling while older events load
    for n in range(250):
        record_event(run.pk, EventType.AGENT_THINKING, {"message": f"thought {n}"})
    log_in(page, live_server)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    log = page.get_by_role("log")
    expect(log.locator("li.event")).to_have_count(200)
    expect(page.locator("#follow")).to_be_checked()
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 8, (
        "Follow starts at the end"
    )
    page.get_by_role("link", name="Load older events").click()
    expect(log.locator("li.event")).to_have_count(251)
    expect(page.locator("#follow")).not_to_be_checked()
    page.wait_for_function("() => document.getElementById('event-log').scrollTop === 0")
    expect(log.locator("li.event").first).to_contain_text("RUN_CREATED")
    expect(page.get_by_role("link", name="Load older events")).to_have_count(0)
    record_event(run.pk, EventType.AGENT_THINKING, {"message": "arrived while reading"})
    expect(log).to_contain_text("arrived while reading", timeout=5_000)
    assert log.evaluate("el => el.scrollTop") == 0, (
        "with Follow off, new events leave the reader where they are"
    )


def test_it_recovers_after_a_failed_poll(page: Page, live_server, alice, make_run):
    from events.models import EventType
    from events.recorder import record_event

    run = make_run()
    log_in(page, live_server)
    failures = []

    def fail_once(route):
        if not failures:
            failures.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route(re.compile(r".*/runs/\d+/events/\?after=.*"), fail_once)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    page.wait_for_timeout(2000)
    record_event(run.pk, EventType.AGENT_THINKING, {"message": "after the outage"})
    expect(page.get_by_role("log")).to_contain_text("after the outage", timeout=6_000)
    assert failures, "one poll failed on the way"


def test_it_refreshes_the_dashboard_while_runs_are_active(
    page: Page, live_server, alice, make_run, screenshot
):
    run = make_run()
    log_in(page, live_server)
    expect(page.locator("#runs-table")).to_contain_text("QUEUED")
    Run.objects.filter(pk=run.pk).update(status="COMPLETED")
    expect(page.locator("#runs-table")).to_contain_text("COMPLETED", timeout=8_000)
    expect(page.locator("#counts")).to_contain_text("1 Completed")
    expect(page.locator("#project-list")).to_contain_text("COMPLETED")
    expect(page.locator("#runs-table")).not_to_have_attribute("hx-trigger", re.compile("every"))
    page.emulate_media(color_scheme="dark")
    screenshot(page, "dashboard-dark")
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, "dashboard-375px")


def test_it_reviews_changes_in_the_browser(page: Page, live_server, alice, finished_run, screenshot):
    import subprocess

    approved_run, rejected_run = finished_run(), finished_run(path="other.py", content="x = 1\n")
    repo = approved_run.project.local_path
    log_in(page, live_server)
    page.goto(f"{live_server.url}/runs/{approved_run.pk}/")
    review = page.locator("#review")
    expect(review).to_contain_text("hello.py")
    expect(review).to_contain_text("+2")
    expect(review.locator("table.diff")).to_contain_text("def hello():")
    screenshot(page, "review-pending")
    review.get_by_label("Strategy").select_option("merge")
    review.get_by_role("button", name="Approve").click()
    expect(page.locator(".toast")).to_contain_text("Changes approved")
    log = subprocess.run(
        ["git", "-C", repo, "log", "--format=%s", "-3"], capture_output=True, text=True
    ).stdout
    assert f"Merge run {approved_run.pk}" in log

    page.goto(f"{live_server.url}/runs/{rejected_run.pk}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#review").get_by_role("button", name="Reject").click()
    expect(page.locator(".toast")).to_contain_text("Changes rejected")
    branches = subprocess.run(
        ["git", "-C", repo, "branch", "--list", rejected_run.branch], capture_output=True, text=True
    )
    assert branches.stdout.strip() == ""

    page.goto(f"{live_server.url}/runs/{approved_run.pk}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator(".toast")).to_contain_text("rolled back")
    from pathlib import Path

    assert not (Path(repo) / "hello.py").exists()
    assert Run.objects.get(pk=approved_run.pk).review_state == "rolled_back"


def test_it_streams_a_pipeline_live_and_opens_the_failed_command(page: Page, live_server, alice, project, start_cluster,
                                                                screenshot):  # fmt: skip
    import sys
    from pathlib import Path

    from runs.services import create_run

    repo = Path(project.local_path)
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (repo / "test_calc.py").write_text(
        "import time\n\nfrom calc import add\n\n\ndef test_add():\n    print('checking')\n    time.sleep(1.5)\n"
        "    assert add(2, 2) == 5\n"
    )
    import subprocess

    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "calc"],
                   check=True)  # fmt: skip
    python = sys.executable
    project.allowed_commands = [f"{python} -m ruff", f"{python} -m pytest"]
    project.save()
    start_cluster()
    wait_for_workers()
    run = create_run(project_id=project.pk, goal="CI", run_type="pipeline", run_options={
        "commands": [f"{python} -m ruff check --no-cache .", f"{python} -m pytest -q -s -p no:cacheprovider test_calc.py",
                     f"{python} -m ruff format --check ."]})  # fmt: skip
    log_in(page, live_server)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    log = page.get_by_role("log")
    expect(log).to_contain_text("COMMAND_OUTPUT", timeout=15_000)
    expect(log).to_contain_text("checking", timeout=15_000)
    expect(page.locator("#run-status")).to_contain_text("FAILED", timeout=30_000)
    page.reload()
    failed = page.locator("#commands li.state-failed details")
    expect(failed).to_have_attribute("open", "")
    expect(failed).to_contain_text("assert")
    expect(page.locator("#commands li.state-passed")).to_have_count(1)
    expect(page.locator("#commands li.state-pending")).to_have_count(1)
    screenshot(page, "pipeline-failed")
