"""The benchmarks run and print figures (no timing assertions: the machines are shared and noisy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import BASE_DIR


@pytest.mark.slow
def test_it_runs_the_pickup_benchmark(tmp_path):
    results_file = tmp_path / "latest.json"
    env = {**os.environ, "BENCH_SAMPLES": "3", "BENCH_ONLY": "pickup", "BENCH_RESULTS": str(results_file)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "bench/run.py"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "POST /api/runs/ -> RUN_STARTED" in done.stdout and "raw django-q2" in done.stdout
    results = json.loads(results_file.read_text())
    pickup = results["benchmarks"][0]
    assert pickup["baseline"]["n"] == 3 and pickup["agent_runner"]["p50_ms"] > 0
