"""Memory: resident size of the worker cluster's processes after 10 runs and after BENCH_MEMORY_RUNS
(default 1,000) simple runs, one worker, no recycling. Target: growth <= 20 MB."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Installation, django_setup, report

TOTAL = int(os.environ.get("BENCH_MEMORY_RUNS", "1000"))


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def rss_mb(pids: list[int]) -> dict[int, float]:
    sizes = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes[pid] = int(line.split()[1]) / 1024
        except OSError:
            continue
    return sizes


def run_batch(project_id: int, count: int) -> None:
    from events.models import Event
    from runs.services import create_run

    ids = [create_run(project_id=project_id, goal="memory", run_options={"agent": "simple", "max_steps": 2,
                                                                           "step_seconds": 0}).pk
           for _ in range(count)]  # fmt: skip
    deadline = time.monotonic() + 600
    while Event.objects.filter(run_id__in=ids, type="RUN_COMPLETED").count() < count:
        if time.monotonic() > deadline:
            raise RuntimeError("runs did not complete")
        time.sleep(0.2)


def main() -> dict[str, Any]:
    with Installation(WORKER_CONCURRENCY="1", WORKER_RECYCLE="1000000") as install:
        django_setup(install)
        from projects.models import Project

        project = Project.objects.create(name="memory", local_path=str(install.project_dir))
        cluster = install.start_workers()
        time.sleep(2)
        run_batch(project.pk, 10)
        time.sleep(1)
        after_10 = rss_mb(descendants(cluster.pid))
        run_batch(project.pk, TOTAL - 10)
        time.sleep(1)
        after_all = rss_mb(descendants(cluster.pid))
    worker = max(after_all, key=lambda pid: after_all[pid] - after_10.get(pid, after_all[pid]))
    growth = after_all[worker] - after_10.get(worker, after_all[worker])
    total_growth = sum(after_all.values()) - sum(after_10[pid] for pid in after_all if pid in after_10)
    met = growth <= 20
    print(f"memory (one worker, {TOTAL} runs)")
    print(
        f"  largest growth of one process: {growth:.1f} MB ({after_10.get(worker, 0):.1f} -> {after_all[worker]:.1f} MB)"
    )
    print(f"  all cluster processes: {sum(after_10.values()):.1f} -> {sum(after_all.values()):.1f} MB; "
          f"target <= 20 MB -> {'met' if met else 'NOT met'}")  # fmt: skip
    return {"name": "memory", "runs": TOTAL, "growth_mb": round(growth, 1), "cluster_growth_mb": round(total_growth, 1),
            "met": met}  # fmt: skip


if __name__ == "__main__":
    report(main())
