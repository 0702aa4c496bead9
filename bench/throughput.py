"""Throughput: simple-agent runs (max_steps 1, step_seconds 0) created in bulk, to COMPLETED, beside raw
django-q2 no-op tasks through the same cluster. Target: >= 0.5 x baseline and >= 100 runs/s on SQLite."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Installation, django_setup, report

COUNT = int(os.environ.get("BENCH_THROUGHPUT_COUNT", "400"))
TIMEOUT = 300.0


def raw_tasks(install: Installation) -> float:
    from django_q.tasks import async_task

    log = install.root / "noop-throughput.log"
    log.touch()
    for _ in range(COUNT):
        async_task("bench.noop.record_start", time.time(), str(log))
    install.start_workers()
    deadline = time.monotonic() + TIMEOUT
    while len(log.read_text().splitlines()) < COUNT:
        if time.monotonic() > deadline:
            raise RuntimeError("no-op tasks did not finish")
        time.sleep(0.05)
    install.stop_workers()
    # Each line is (start - enqueue); enqueue times are known only relative, so time the drain instead.
    return COUNT / _drain_seconds(log)


def _drain_seconds(log: Path) -> float:
    stamps = [float(line.split()[1]) for line in log.read_text().splitlines() if len(line.split()) > 1]
    return max(stamps) - min(stamps)


def agent_runs(install: Installation) -> float:
    from events.models import Event
    from projects.models import Project
    from runs.services import create_run

    project = Project.objects.create(name="throughput", local_path=str(install.project_dir))
    ids = [
        create_run(project_id=project.pk, goal="throughput", run_options={"agent": "simple", "max_steps": 1,
                                                                          "step_seconds": 0}).pk
        for _ in range(COUNT)
    ]  # fmt: skip
    install.start_workers()
    deadline = time.monotonic() + TIMEOUT
    while Event.objects.filter(run_id__in=ids, type="RUN_COMPLETED").count() < COUNT:
        if time.monotonic() > deadline:
            raise RuntimeError("runs did not complete")
        time.sleep(0.1)
    install.stop_workers()
    first = Event.objects.filter(run_id__in=ids, type="RUN_STARTED").order_by("created_at").first().created_at
    last = (
        Event.objects.filter(run_id__in=ids, type="RUN_COMPLETED").order_by("-created_at").first().created_at
    )
    return COUNT / (last - first).total_seconds()


def main() -> dict[str, Any]:
    with Installation(WORKER_CONCURRENCY="2") as install:
        django_setup(install)
        baseline = raw_tasks(install)
        ours = agent_runs(install)
        engine = install.engine
    ratio = round(ours / baseline, 2)
    met = ratio >= 0.5 and (engine != "sqlite" or ours >= 100)
    print(f"throughput ({COUNT} each, 2 workers, {engine})")
    print(f"  raw django-q2 no-op tasks (baseline)   {baseline:8.1f} /s")
    print(f"  simple-agent runs to COMPLETED         {ours:8.1f} /s")
    print(f"  ratio {ratio} (target >= 0.5; and >= 100 runs/s on SQLite) -> {'met' if met else 'NOT met'}")
    return {"name": "throughput", "baseline_per_s": round(baseline, 1), "runs_per_s": round(ours, 1),
            "ratio": ratio, "met": met}  # fmt: skip


if __name__ == "__main__":
    report(main())
