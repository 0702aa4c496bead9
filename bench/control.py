"""Control latency: POST pause or stop on a running simple-agent run -> its worker has stopped (the lease is
released, so no further agent event can be written), p50 / p99 over BENCH_CONTROL_RUNS runs (default 50).
Target: p99 <= 1 s."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Installation, django_setup, report, summary

RUNS = int(os.environ.get("BENCH_CONTROL_RUNS", "50"))


def main() -> dict[str, Any]:
    with Installation(WORKER_CONCURRENCY="2") as install:
        django_setup(install)
        from events.models import Event
        from runs.models import Run

        install.start_web()
        install.start_workers()
        samples: dict[str, list[float]] = {"pause": [], "stop": []}
        with install.client() as client:
            project = client.post(
                "/api/projects/", json={"name": "control", "local_path": str(install.project_dir)}
            )
            body = {"project_id": project.json()["id"], "goal": "control",
                    "options": {"agent": "simple", "max_steps": 1000, "step_seconds": 0.5}}  # fmt: skip
            for index in range(RUNS):
                action = "pause" if index % 2 == 0 else "stop"
                run_id = client.post("/api/runs/", json=body).json()["id"]
                deadline = time.monotonic() + 20
                while not Event.objects.filter(run_id=run_id, type="EXECUTING").exists():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"run {run_id} did not start")
                    time.sleep(0.01)
                time.sleep(0.1 + (index % 5) * 0.07)  # land at different points of the step
                sent = time.perf_counter()
                client.post(f"/api/runs/{run_id}/{action}/").raise_for_status()
                while Run.objects.filter(pk=run_id, lease_owner__isnull=False).exists():
                    time.sleep(0.005)
                samples[action].append(time.perf_counter() - sent)
                if action == "pause":
                    client.post(f"/api/runs/{run_id}/stop/")
        engine = install.engine
    rows = {action: summary(values) for action, values in samples.items()}
    met = all(row["p99_ms"] <= 1000 for row in rows.values())
    print(f"control ({RUNS} runs, simple agent with 0.5 s steps, {engine})")
    for action, row in rows.items():
        print(f"  {action:5} -> worker stopped   p50 {row['p50_ms']:7} ms  p99 {row['p99_ms']:7} ms")
    print(f"  target p99 <= 1000 ms -> {'met' if met else 'NOT met'}")
    return {"name": "control", "rows": rows, "met": met}


if __name__ == "__main__":
    report(main())
