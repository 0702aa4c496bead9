"""`make bench`: run every benchmark, print its table, write bench/results/latest.json."""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

BENCHMARKS = ["pickup"]


def main() -> int:
    results = {"machine": {"nproc": os.cpu_count(), "python": platform.python_version()}, "benchmarks": []}
    failed = False
    for name in os.environ.get("BENCH_ONLY", ",".join(BENCHMARKS)).split(","):
        started = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        result = module.main()
        result["seconds"] = round(time.monotonic() - started, 1)
        results["benchmarks"].append(result)
        failed |= not result.get("met", True)
        print()
    out = Path(os.environ.get("BENCH_RESULTS") or ROOT / "results" / "latest.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}; targets {'NOT all met' if failed else 'all met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
