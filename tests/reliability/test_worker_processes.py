"""Runs executed by real `manage.py qcluster` processes: end to end, control, racing claims, SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings

from events.models import Event, EventType
from runs import lifecycle, services
from runs.lifecycle import Action
from runs.models import Run, RunStatus
from tests.conftest import BASE_DIR, worker_database_url
from tests.reliability.conftest import wait_until

T = EventType
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def status(run: Run) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run.pk)


def types(run: Run) -> list[str]:
    return list(Event.objects.filter(run=run).order_by("seq").values_list("type", flat=True))


def steps_completed(run: Run) -> list[int]:
    return list(
        Event.objects.filter(run=run, type=T.STEP_COMPLETED)
        .order_by("seq")
        .values_list("payload__step", flat=True)
    )


def assert_gapless(run: Run) -> None:
    seqs = list(Event.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


def test_it_executes_runs_end_to_end_in_a_real_cluster(start_cluster, make_run):
    cluster = start_cluster()
    runs = [make_run(options={"max_steps": 3, "step_seconds": 0.05}) for _ in range(4)]
    for run in runs:
        wait_until(lambda run=run: status(run) == RunStatus.COMPLETED, what=f"run {run.pk} to complete")
        assert types(run) == [
            T.RUN_CREATED, T.RUN_STARTED, T.AGENT_THINKING, T.PLAN_GENERATED,
            T.EXECUTING, T.STEP_COMPLETED, T.EXECUTING, T.STEP_COMPLETED, T.EXECUTING, T.STEP_COMPLETED,
            T.RUN_COMPLETED,
        ]  # fmt: skip
        assert_gapless(run)
    assert "database is locked" not in cluster.output()


def test_it_pauses_resumes_and_stops_runs_in_a_real_cluster(start_cluster, make_run):
    start_cluster()
    run = make_run(options={"max_steps": 6, "step_seconds": 0.4})
    wait_until(lambda: 2 in steps_completed(run), what="step 2")
    services.send_directive(run.pk, text="first, while running", actor="alice")
    lifecycle.apply_action(run.pk, Action.PAUSE, actor="alice")
    paused_at = Event.objects.filter(run=run).count()
    wait_until(
        lambda: Run.objects.get(pk=run.pk).lease_owner is None, timeout=1.5, what="the lease to be released"
    )
    time.sleep(1.0)
    agent_events = Event.objects.filter(run=run, seq__gt=paused_at, type__in=[T.EXECUTING, T.STEP_COMPLETED])
    assert not agent_events.exists(), "no stepping while paused"
    services.send_directive(run.pk, text="second, while paused", actor="alice")
    lifecycle.apply_action(run.pk, Action.RESUME, actor="alice")
    wait_until(lambda: status(run) == RunStatus.COMPLETED, what="completion after resume")
    assert steps_completed(run) == [1, 2, 3, 4, 5, 6]
    applied = Event.objects.filter(run=run, type=T.DIRECTIVE_APPLIED).order_by("seq")
    assert [e.payload["text"] for e in applied] == ["first, while running", "second, while paused"]
    assert_gapless(run)

    doomed = make_run(options={"max_steps": 10, "step_seconds": 0.4})
    wait_until(lambda: T.EXECUTING in types(doomed), what="the second run to start")
    stopped_seq = lifecycle.apply_action(doomed.pk, Action.STOP, actor="alice").event_seq
    wait_until(
        lambda: Run.objects.get(pk=doomed.pk).lease_owner is None, timeout=1.5, what="the worker to leave"
    )
    time.sleep(0.5)
    assert Event.objects.filter(run=doomed).count() == stopped_seq
    assert types(doomed)[-1] == T.RUN_STOPPED


CLAIMER = """
import random, sys
import django
django.setup()
from runs.execution import execute_run
ids = [int(x) for x in sys.argv[1].split(",")]
random.Random(int(sys.argv[2])).shuffle(ids)
for run_id in ids:
    execute_run(run_id)
"""


def test_it_executes_each_run_exactly_once_when_processes_race(make_run):
    runs = [make_run(options={"max_steps": 1, "step_seconds": 0}) for _ in range(30)]
    ids = ",".join(str(run.pk) for run in runs)
    env = {
        "DATABASE_URL": worker_database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PATH": "/usr/bin:/bin",
    }
    racers = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, ids, str(seed)], cwd=BASE_DIR, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in range(4)
    ]  # fmt: skip
    outputs = [racer.communicate(timeout=120) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0, 0, 0], outputs
    assert not any("database is locked" in out + err for out, err in outputs)
    for run in runs:
        assert status(run) == RunStatus.COMPLETED
        assert types(run).count(T.RUN_STARTED) == 1
        assert_gapless(run)


def test_it_recovers_a_run_whose_worker_was_killed(start_cluster, make_run):
    first = start_cluster(RUN_LEASE_SECONDS="2")
    run = make_run(options={"max_steps": 5, "step_seconds": 0.4})
    wait_until(lambda: 2 in steps_completed(run), what="step 2")
    first.kill(signal.SIGKILL)
    killed_at = time.monotonic()
    done_before = steps_completed(run)
    wait_until(lambda: services.sweep(grace_seconds=0)["recovered"] == [run.pk], timeout=10, what="the sweep")
    detected = time.monotonic() - killed_at
    print(f"WORKER_LOST recorded {detected:.2f} s after SIGKILL (RUN_LEASE_SECONDS=2, sweeping every 50 ms)")
    assert detected < 2 + 1.5, f"WORKER_LOST after {detected:.1f} s"
    start_cluster(RUN_LEASE_SECONDS="2")
    wait_until(lambda: status(run) == RunStatus.COMPLETED, what="completion on another worker")
    assert steps_completed(run) == [1, 2, 3, 4, 5]
    assert steps_completed(run)[: len(done_before)] == done_before
    assert types(run).count(T.WORKER_LOST) == 1
    assert types(run).count(T.PLAN_GENERATED) == 1
    assert_gapless(run)


def swept(run: Run) -> bool:
    result = services.sweep(grace_seconds=0)
    return run.pk in result["recovered"] + result["failed"]


def test_it_fails_a_run_after_losing_too_many_workers(start_cluster, make_run, settings):
    settings.RUN_MAX_ATTEMPTS = 2
    run = make_run(options={"max_steps": 50, "step_seconds": 0.3})
    for _ in range(2):
        cluster = start_cluster(RUN_LEASE_SECONDS="1")
        wait_until(lambda: Run.objects.get(pk=run.pk).lease_owner is not None, what="a worker to claim")
        cluster.kill(signal.SIGKILL)
        wait_until(lambda: swept(run), timeout=10, what="the sweep")
    final = Run.objects.get(pk=run.pk)
    assert final.status == RunStatus.FAILED and "Worker lost 2 times" in final.error
    assert types(run).count(T.WORKER_LOST) == 2


def test_it_ignores_the_task_django_q2_redelivers_after_the_cluster_was_killed(start_cluster, make_run):
    from django_q.models import OrmQ

    fast = {"RUN_LEASE_SECONDS": "1", "RUN_TIMEOUT_SECONDS": "4", "RUN_RETRY_MARGIN_SECONDS": "1"}
    first = start_cluster(**fast)
    run = make_run(options={"max_steps": 5, "step_seconds": 0.3})
    wait_until(lambda: 2 in steps_completed(run), what="step 2")
    first.kill(signal.SIGKILL)
    assert OrmQ.objects.exists(), "the killed cluster's task is still in the queue, to be redelivered"
    wait_until(lambda: swept(run), timeout=10, what="the sweep")
    second = start_cluster(**fast)
    wait_until(lambda: status(run) == RunStatus.COMPLETED, what="completion")
    wait_until(lambda: not OrmQ.objects.exists(), timeout=20, what="the redelivered task to be consumed")
    time.sleep(0.5)
    assert types(run).count(T.RUN_COMPLETED) == 1 and types(run).count(T.RUN_STARTED) == 2
    assert steps_completed(run) == [1, 2, 3, 4, 5]
    assert_gapless(run)
    assert "database is locked" not in second.output()


def test_it_fences_a_frozen_worker_that_lost_its_lease(start_cluster, make_run):
    frozen = start_cluster(RUN_LEASE_SECONDS="1", LOG_LEVEL="INFO")
    run = make_run(options={"max_steps": 6, "step_seconds": 0.3})
    wait_until(lambda: 2 in steps_completed(run), what="step 2")
    os.killpg(frozen.process.pid, signal.SIGSTOP)
    try:
        # If the freeze caught a process inside a transaction, PostgreSQL ends that session after
        # PG_IDLE_IN_TRANSACTION_TIMEOUT_MS (10 s) and its locks go with it.
        wait_until(lambda: swept(run), timeout=40, what="the sweep to see the expired lease")
        start_cluster(RUN_LEASE_SECONDS="1")
        wait_until(
            lambda: status(run) == RunStatus.COMPLETED, timeout=60, what="completion on the second cluster"
        )
        finished = Event.objects.filter(run=run).count()
    finally:
        os.killpg(frozen.process.pid, signal.SIGCONT)
    wait_until(lambda: "lease" in frozen.output(), timeout=10, what="the frozen worker to notice")
    time.sleep(1.0)
    assert Event.objects.filter(run=run).count() == finished, "the thawed worker wrote nothing"
    assert steps_completed(run) == [1, 2, 3, 4, 5, 6]
    assert types(run).count(T.WORKER_LOST) == 1
    assert_gapless(run)


def test_it_executes_200_runs_exactly_once_across_two_clusters(start_cluster, make_run):
    clusters = [start_cluster(WORKER_CONCURRENCY="2"), start_cluster(WORKER_CONCURRENCY="2")]
    runs = [make_run(options={"max_steps": 1, "step_seconds": 0}) for _ in range(200)]
    started = time.monotonic()
    wait_until(
        lambda: Run.objects.filter(pk__in=[r.pk for r in runs], status=RunStatus.COMPLETED).count() == 200,
        timeout=120,
        what="200 runs to complete",
    )
    elapsed = time.monotonic() - started
    starts = Event.objects.filter(run__in=runs, type=T.RUN_STARTED).values_list("run_id", flat=True)
    assert sorted(starts) == sorted(r.pk for r in runs), "every run started exactly once"
    assert all("database is locked" not in cluster.output() for cluster in clusters)
    print(f"200 runs on two clusters in {elapsed:.1f} s")


def test_it_fails_a_run_whose_agent_kills_its_own_worker_every_time(
    start_cluster, make_run, project, scripted_llm
):
    project.allowed_commands = ["sh -c"]
    project.save()
    kill_parent = {"action": "run_command", "command": "sh -c 'kill -9 $PPID'"}
    scripted_llm.queue({"action": "plan", "steps": ["crash"]}, *[kill_parent] * 10)
    run = make_run(options={"agent": "llm", "max_steps": 30})
    start_cluster(
        RUN_LEASE_SECONDS="1", RUN_MAX_ATTEMPTS="2", LLM_PROVIDER="ollama", LLM_BASE_URL=scripted_llm.url,
        LLM_MODEL="scripted-model", WORKSPACE_ROOT=str(Path(project.local_path).parent / "workspaces"),
    )  # fmt: skip

    def finished() -> bool:
        services.sweep(grace_seconds=0)
        return status(run) == RunStatus.FAILED

    with override_settings(RUN_MAX_ATTEMPTS=2):
        wait_until(finished, timeout=60, what="the run to fail")
    final = Run.objects.get(pk=run.pk)
    assert "Worker lost 2 times" in final.error
    assert types(run).count(T.WORKER_LOST) == 2 and types(run).count(T.RUN_STARTED) == 2
    assert_gapless(run)


def test_it_runs_a_workflow_through_a_real_cluster(start_cluster, project):
    from runs.services import create_run

    start_cluster(WORKER_CONCURRENCY="1")
    quick = {"agent": "simple", "max_steps": 1, "step_seconds": 0}
    steps = [
        {"key": "one", "goal": "a", "run_type": "task", "options": quick},
        {"key": "two", "goal": "b", "run_type": "task", "options": quick, "depends_on": ["one"]},
        {"key": "three", "goal": "c", "run_type": "task", "options": quick, "depends_on": ["one"]},
        {"key": "four", "goal": "d", "run_type": "task", "options": quick, "depends_on": ["two", "three"]},
    ]
    parent = create_run(project_id=project.pk, goal="flow", run_type="workflow", run_options={"steps": steps})
    wait_until(lambda: status(parent) == RunStatus.COMPLETED, timeout=60, what="the workflow to complete")
    children = list(
        Run.objects.filter(parent=parent).order_by("created_at", "id").values_list("step_key", "status")
    )
    keys = [key for key, _ in children]
    assert keys[0] == "one" and keys[-1] == "four" and set(keys[1:3]) == {"two", "three"}
    assert {s for _, s in children} == {RunStatus.COMPLETED} and len(children) == 4
