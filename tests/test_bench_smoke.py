"""Every benchmark runs and prints figures, at a tiny size (no timing assertions: machines are shared)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import BASE_DIR

TINY = {
    "BENCH_SAMPLES": "3",
    "BENCH_THROUGHPUT_COUNT": "20",
    "BENCH_THROUGHPUT_ROUNDS": "1",
    "BENCH_CONTROL_RUNS": "2",
    "BENCH_EVENTS": "5000",
    "BENCH_RUNS": "500",
    "BENCH_REQUESTS": "10",
    "BENCH_MEMORY_RUNS": "15",
    "BENCH_LOAD_SECONDS": "3",
    "BENCH_LOAD_OPERATORS": "4",
    "BENCH_LOAD_RUNS": "2",
    "BENCH_LLM_STEPS": "3",
}


@pytest.mark.slow
def test_it_runs_every_benchmark(tmp_path):
    results_file = tmp_path / "latest.json"
    env = {**os.environ, **TINY, "BENCH_RESULTS": str(results_file)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "bench/run.py"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for heading in (
        "pickup",
        "throughput",
        "control",
        "events API",
        "load",
        "runs list",
        "memory",
        "llm_step",
    ):
        assert heading in done.stdout, done.stdout[-3000:]
    results = json.loads(results_file.read_text())
    assert results["machine"]["nproc"] >= 1
    names = [b["name"] for b in results["benchmarks"]]
    assert names == [
        "pickup",
        "throughput",
        "control",
        "events_api",
        "load",
        "runs_list",
        "memory",
        "llm_step",
    ]
    assert not [b for b in results["benchmarks"] if "error" in b], results
    load = next(b for b in results["benchmarks"] if b["name"] == "load")
    assert load["requests"] > 0 and load["errors"] == 0 and load["events_seen"] > 0, load
