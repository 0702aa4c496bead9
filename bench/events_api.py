"""Events API with a big history: GET /api/runs/{id}/events/?after=<seq> with BENCH_EVENTS events (default
1,000,000) across 1,000 runs, beside a SELECT 1 round trip through the same stack (GET /health).
Target: p99 <= 15 ms and a constant number of queries."""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Installation, django_setup, report, summary

EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
RUNS = 1000
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "400"))


def populate(install: Installation) -> list[int]:
    from django.db import transaction

    from events.models import Event
    from projects.models import Project
    from runs.models import Run, RunStatus

    project = Project.objects.create(name="events", local_path=str(install.project_dir))
    per_run = EVENTS // RUNS
    runs = Run.objects.bulk_create(
        [Run(project=project, goal="history", name=f"history-{n}", status=RunStatus.COMPLETED, event_seq=per_run)
         for n in range(RUNS)], batch_size=1000,
    )  # fmt: skip
    payload = {"agent": "simple", "message": "a typical event payload of a few dozen bytes"}
    for chunk in range(0, RUNS, 50):
        batch = [Event(run=run, seq=seq, type="AGENT_THINKING", payload=payload)
                 for run in runs[chunk : chunk + 50] for seq in range(1, per_run + 1)]  # fmt: skip
        with transaction.atomic():
            Event.objects.bulk_create(batch, batch_size=5000)
    return [run.pk for run in runs]


def query_count(install: Installation, run_id: int, after: int) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {install.token}")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/api/runs/{run_id}/events/?after={after}").status_code == 200
    return len(queries)


def main() -> dict[str, Any]:
    with Installation() as install:
        django_setup(install)
        started = time.monotonic()
        ids = populate(install)
        populated = time.monotonic() - started
        install.start_web()
        per_run = EVENTS // RUNS
        rng = random.Random(7)
        with install.client() as client:
            for _ in range(20):
                client.get("/health")
            base, ours = [], []
            for _ in range(REQUESTS):
                t0 = time.perf_counter()
                client.get("/health").raise_for_status()
                base.append(time.perf_counter() - t0)
                url = f"/api/runs/{rng.choice(ids)}/events/?after={rng.randrange(per_run)}&limit=100"
                t0 = time.perf_counter()
                client.get(url).raise_for_status()
                ours.append(time.perf_counter() - t0)
        counts = {query_count(install, ids[0], 0), query_count(install, ids[-1], per_run - 5)}
        engine = install.engine
    baseline, measured = summary(base), summary(ours)
    met = measured["p99_ms"] <= 15 and len(counts) == 1
    print(
        f"events API ({EVENTS} events in {RUNS} runs, loaded in {populated:.0f} s, {REQUESTS} requests, {engine})"
    )
    print(f"  GET /health (SELECT 1, baseline)  p50 {baseline['p50_ms']} ms  p99 {baseline['p99_ms']} ms")
    print(f"  GET events ?after=&limit=100       p50 {measured['p50_ms']} ms  p99 {measured['p99_ms']} ms")
    print(f"  queries per request: {sorted(counts)} (constant: {len(counts) == 1}); target p99 <= 15 ms -> "
          f"{'met' if met else 'NOT met'}")  # fmt: skip
    return {"name": "events_api", "events": EVENTS, "baseline": baseline, "events_api": measured,
            "ratio_p99": round(measured["p99_ms"] / baseline["p99_ms"], 2), "queries": sorted(counts), "met": met}  # fmt: skip


if __name__ == "__main__":
    report(main())
