"""Runs list with BENCH_RUNS runs (default 100,000): GET /api/runs/ (plain and filtered) and the dashboard.
Target: p99 <= 50 ms and a constant number of queries."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.harness import Installation, django_setup, report, summary

RUNS = int(os.environ.get("BENCH_RUNS", "100000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))


def populate(install: Installation) -> None:
    from projects.models import Project
    from runs.models import Run, RunStatus

    projects = [Project.objects.create(name=f"p{n}", local_path=str(install.project_dir)) for n in range(10)]
    statuses = list(RunStatus)
    for start in range(0, RUNS, 10_000):
        Run.objects.bulk_create(
            [Run(project=projects[n % 10], goal=f"goal number {n}", name=f"run-{n}", status=statuses[n % 6],
                 options={"agent": "simple"}) for n in range(start, min(RUNS, start + 10_000))],
            batch_size=2000,
        )  # fmt: skip
    settle(install)


def settle(install: Installation) -> None:
    """A table that grew to RUNS runs over weeks has been vacuumed by PostgreSQL's autovacuum (which runs
    after every 20% of inserts) and its planner statistics are current; one loaded in seconds has neither
    until autovacuum's next round. VACUUM ANALYZE puts it in that steady state: the visibility map that
    lets the counts per status come from the status index alone, and statistics for the plans."""
    from django.db import connection

    if install.engine == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE runs_run")


def session(install: Installation) -> httpx.Client:
    client = httpx.Client(base_url=install.url, timeout=30)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    client.post("/accounts/login/", data={"username": "bench", "password": "bench-pass-1",
                                          "csrfmiddlewaretoken": token}, headers={"Referer": install.url})  # fmt: skip
    return client


def timed(client: httpx.Client, url: str) -> list[float]:
    for _ in range(5):
        client.get(url).raise_for_status()
    samples = []
    for _ in range(REQUESTS):
        t0 = time.perf_counter()
        client.get(url).raise_for_status()
        samples.append(time.perf_counter() - t0)
    return samples


def query_count(install: Installation, url: str) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {install.token}")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def main() -> dict[str, Any]:
    with Installation() as install:
        django_setup(install)
        started = time.monotonic()
        populate(install)
        loaded = time.monotonic() - started
        install.start_web()
        rows = {}
        with install.client() as api:
            rows["GET /api/runs/"] = summary(timed(api, "/api/runs/"))
            rows["GET /api/runs/?status=RUNNING&project=3"] = summary(
                timed(api, "/api/runs/?status=RUNNING&project=3")
            )
        browser = session(install)
        rows["GET / (dashboard)"] = summary(timed(browser, "/"))
        browser.close()
        last_page = max(1, RUNS // 50)
        counts = {query_count(install, "/api/runs/"), query_count(install, f"/api/runs/?page={last_page}")}
        engine = install.engine
    met = all(row["p99_ms"] <= 50 for row in rows.values()) and len(counts) == 1
    print(f"runs list ({RUNS} runs, loaded in {loaded:.0f} s, {REQUESTS} requests each, {engine})")
    for name, row in rows.items():
        print(f"  {name:42} p50 {row['p50_ms']:6} ms  p99 {row['p99_ms']:6} ms")
    print(f"  queries per API page: {sorted(counts)}; target p99 <= 50 ms -> {'met' if met else 'NOT met'}")
    return {"name": "runs_list", "runs": RUNS, "rows": rows, "queries": sorted(counts), "met": met}


if __name__ == "__main__":
    report(main())
