"""`make bench`: run every benchmark in its own process, print its table, write bench/results/latest.json."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BENCHMARKS = ["pickup", "throughput", "control", "events_api", "load", "runs_list", "memory", "llm_step"]


def main() -> int:
    results: dict = {
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
        "benchmarks": [],
    }
    unmet = []
    chosen = [name for name in os.environ.get("BENCH_ONLY", ",".join(BENCHMARKS)).split(",") if name]
    for name in chosen:
        started = time.monotonic()
        with tempfile.NamedTemporaryFile(suffix=".json") as handle:
            env = {**os.environ, "BENCH_RESULT_FILE": handle.name}
            done = subprocess.run(
                [sys.executable, str(ROOT / f"{name}.py")], env=env, cwd=ROOT.parent, timeout=900
            )
            text = Path(handle.name).read_text()
        if done.returncode != 0 or not text:
            results["benchmarks"].append({"name": name, "error": f"exit {done.returncode}"})
            unmet.append(name)
            continue
        result = json.loads(text)
        result["seconds"] = round(time.monotonic() - started, 1)
        results["benchmarks"].append(result)
        if not result.get("met", True):
            unmet.append(name)
        print()
    out = Path(os.environ.get("BENCH_RESULTS") or ROOT / "results" / "latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}; targets not met: {', '.join(unmet) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
