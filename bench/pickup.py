"""Pickup latency: POST /api/runs/ -> RUN_STARTED, beside raw django-q2 pickup of a no-op task.

Both are measured in the same run, on the same machine, against the same idle cluster and `poll`.
Target (issue 2 / issue 7 row 1): p50 <= 1.5 x baseline, p95 <= 2 x baseline.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Installation, django_setup, report, summary

SAMPLES = int(os.environ.get("BENCH_SAMPLES", "50"))
WARMUP = 3
TIMEOUT = 20.0


def raw_pickup(install: Installation) -> list[float]:
    from django_q.tasks import async_task

    log = install.root / "noop.log"
    log.touch()
    samples: list[float] = []
    for index in range(SAMPLES + WARMUP):
        before = len(log.read_text().splitlines())
        async_task("bench.noop.record_start", time.time(), str(log))
        deadline = time.monotonic() + TIMEOUT
        while len(lines := log.read_text().splitlines()) == before:
            if time.monotonic() > deadline:
                raise RuntimeError("the no-op task was not picked up")
            time.sleep(0.002)
        if index >= WARMUP:
            samples.append(float(lines[-1].split()[0]))
        time.sleep(0.05)
    return samples


def run_pickup(install: Installation) -> list[float]:
    from events.models import Event

    samples: list[float] = []
    with install.client() as client:
        project = client.post(
            "/api/projects/", json={"name": "bench", "local_path": str(install.project_dir)}
        )
        project.raise_for_status()
        body = {
            "project_id": project.json()["id"],
            "goal": "pickup benchmark",
            "options": {"agent": "simple", "max_steps": 1, "step_seconds": 0},
        }
        for index in range(SAMPLES + WARMUP):
            sent = time.time()
            response = client.post("/api/runs/", json=body)
            response.raise_for_status()
            run_id = response.json()["id"]
            deadline = time.monotonic() + TIMEOUT
            while (started := Event.objects.filter(run_id=run_id, type="RUN_STARTED").first()) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"run {run_id} was not picked up")
                time.sleep(0.002)
            if index >= WARMUP:
                samples.append(started.created_at.timestamp() - sent)
            while not Event.objects.filter(run_id=run_id, type="RUN_COMPLETED").exists():
                time.sleep(0.005)
            time.sleep(0.05)
    return samples


def main() -> dict[str, Any]:
    with Installation() as install:
        install.start_web()
        install.start_workers()
        django_setup(install)
        time.sleep(2)  # let the cluster start its workers
        baseline = summary(raw_pickup(install))
        ours = summary(run_pickup(install))
    ratio50 = round(ours["p50_ms"] / baseline["p50_ms"], 2)
    ratio95 = round(ours["p95_ms"] / baseline["p95_ms"], 2)
    print(f"pickup ({SAMPLES} samples, nproc {os.cpu_count()}, {install.env['DATABASE_URL'].split(':')[0]})")
    print(f"  {'':34} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"  {'raw django-q2 no-op (baseline)':34} {baseline['p50_ms']:>8} {baseline['p95_ms']:>8}")
    print(f"  {'POST /api/runs/ -> RUN_STARTED':34} {ours['p50_ms']:>8} {ours['p95_ms']:>8}")
    print(f"  ratio p50 {ratio50} (target <= 1.5), p95 {ratio95} (target <= 2.0)")
    return {
        "name": "pickup",
        "baseline": baseline,
        "agent_runner": ours,
        "ratio_p50": ratio50,
        "ratio_p95": ratio95,
        "target": {"ratio_p50": 1.5, "ratio_p95": 2.0},
        "met": ratio50 <= 1.5 and ratio95 <= 2.0,
    }


if __name__ == "__main__":
    report(main())
