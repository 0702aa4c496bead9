"""Throughput: simple-agent runs (max_steps 1, step_seconds 0) created in bulk, to COMPLETED, beside raw
django-q2 no-op tasks through the same cluster. Target: >= 0.5 x baseline and >= 100 runs/s on SQLite.

Each side is measured BENCH_THROUGHPUT_ROUNDS times (default 5), alternating: a round is a baseline drain
followed at once by a runs drain, and the ratio is the median of the rounds' ratios, so that the machine's
speed, which moves by half within seconds on a shared host, is the same for both sides of each ratio and a
burst of other work does not decide the result. The median rates are printed too. Beside the rate, the CPU time the
whole cluster (every process of its session) spent per task is printed: on a shared machine it says more
than wall time about where the cost is.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Installation, django_setup, report

COUNT = int(os.environ.get("BENCH_THROUGHPUT_COUNT", "1000"))
ROUNDS = int(os.environ.get("BENCH_THROUGHPUT_ROUNDS", "5"))
TIMEOUT = 300.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def session_cpu_seconds(session: int) -> float:
    """User + system CPU of every live process in a session (the cluster's processes stay alive)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def drain(install: Installation, finished: Callable[[], int], what: str) -> float:
    """Start the cluster on a full queue, wait until COUNT are done; returns the cluster's CPU seconds per
    task from the first one finished to the last (so the cluster's start-up is not counted)."""
    cluster = install.start_workers()
    deadline = time.monotonic() + TIMEOUT
    start: tuple[int, float] | None = None
    while (done := finished()) < COUNT:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not finish within {TIMEOUT:.0f} s")
        if start is None and done:
            start = (done, session_cpu_seconds(cluster.pid))
        time.sleep(0.01)
    cpu = session_cpu_seconds(cluster.pid)
    install.stop_workers()
    if start is None or COUNT - start[0] < COUNT // 4:
        return float("nan")  # too few were left to measure after the first: a tiny size
    return (cpu - start[1]) / (COUNT - start[0])


def raw_tasks(install: Installation, index: int) -> tuple[float, float]:
    """No-op tasks per second (drain rate from the first start to the last) and cluster CPU per task."""
    from django_q.tasks import async_task

    log = install.root / f"noop-throughput-{index}.log"
    log.touch()
    for _ in range(COUNT):
        async_task("bench.noop.record_start", time.time(), str(log))
    cpu = drain(install, lambda: len(log.read_text().splitlines()), "no-op tasks")
    stamps = [float(line.split()[1]) for line in log.read_text().splitlines()]
    return COUNT / (max(stamps) - min(stamps)), cpu


def agent_runs(install: Installation, project_id: int) -> tuple[float, float]:
    """Runs per second from the first RUN_STARTED to the last RUN_COMPLETED, and cluster CPU per run."""
    from django.db.models import Max, Min

    from events.models import Event
    from runs.models import Run, RunStatus
    from runs.services import create_run

    options = {"agent": "simple", "max_steps": 1, "step_seconds": 0}
    ids = [create_run(project_id=project_id, goal="throughput", run_options=options).pk for _ in range(COUNT)]
    events = Event.objects.filter(run_id__in=ids)
    # Watched through the status index (~0.6 ms a look): counting these runs' RUN_COMPLETED events reads
    # the events table and cost ~8 ms of CPU each time, a third of a core taken from the cluster measured.
    completed = Run.objects.filter(pk__range=(min(ids), max(ids)), status=RunStatus.COMPLETED)
    cpu = drain(install, completed.count, "runs")
    first = events.filter(type="RUN_STARTED").aggregate(t=Min("created_at"))["t"]
    last = events.filter(type="RUN_COMPLETED").aggregate(t=Max("created_at"))["t"]
    return COUNT / (last - first).total_seconds(), cpu


def main() -> dict[str, Any]:
    baselines, ours = [], []
    with Installation(WORKER_CONCURRENCY="2") as install:
        django_setup(install)
        from projects.models import Project

        project = Project.objects.create(name="throughput", local_path=str(install.project_dir))
        for index in range(ROUNDS):
            baselines.append(raw_tasks(install, index))
            ours.append(agent_runs(install, project.pk))
        engine = install.engine
    baseline = statistics.median(rate for rate, _ in baselines)
    rate = statistics.median(rate for rate, _ in ours)
    baseline_cpu = statistics.median(cpu for _, cpu in baselines) * 1000
    run_cpu = statistics.median(cpu for _, cpu in ours) * 1000
    ratios = [ran / base for (base, _), (ran, _) in zip(baselines, ours, strict=True)]
    ratio = round(statistics.median(ratios), 2)
    met = ratio >= 0.5 and (engine != "sqlite" or rate >= 100)
    print(
        f"throughput ({COUNT} each, median of {ROUNDS} rounds, 2 workers, nproc {os.cpu_count()}, {engine})"
    )
    print(f"  {'':40} {'per s':>8} {'cluster CPU ms each':>20}")
    print(f"  {'raw django-q2 no-op tasks (baseline)':40} {baseline:8.1f} {baseline_cpu:20.2f}")
    print(f"  {'simple-agent runs to COMPLETED':40} {rate:8.1f} {run_cpu:20.2f}")
    print(f"  rounds: baseline {[round(r) for r, _ in baselines]}, runs {[round(r) for r, _ in ours]}, "
          f"ratios {[round(r, 2) for r in ratios]}")  # fmt: skip
    print(f"  ratio (median of the rounds' ratios) {ratio}, of the median rates {rate / baseline:.2f}; target >= "
          f"0.5 and >= 100 runs/s on SQLite -> {'met' if met else 'NOT met'}")  # fmt: skip
    return {"name": "throughput", "count": COUNT, "rounds": ROUNDS, "baseline_per_s": round(baseline, 1),
            "runs_per_s": round(rate, 1), "baseline_cpu_ms": round(baseline_cpu, 2),
            "run_cpu_ms": round(run_cpu, 2), "ratios": [round(r, 3) for r in ratios],
            "ratio_of_median_rates": round(rate / baseline, 2), "ratio": ratio, "met": met}  # fmt: skip


if __name__ == "__main__":
    report(main())
