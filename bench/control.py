"""Control latency: POST pause or stop on a running run -> its worker is done (the lease is released, and no
event was written after RUN_PAUSED / RUN_STOPPED), p50 / p99 per variant over BENCH_CONTROL_RUNS runs each
(default 50, pause and stop alternating). Target: p99 <= 1 s in every variant.

- simple agent: between and inside its 0.5 s steps;
- LLM agent, model streaming: the default agent while a scripted LLM streams its reply slowly;
- LLM agent, command running: while its run_command tool runs `sleep 600`;
- pipeline, command running: while its command `sleep 600` runs. Stop only: a pipeline's pause lets the
  running command finish by design (README, "Pipelines"), so it is no control-latency case.

After each sample no process of the command may be left. The worker's last event (the newest event it wrote
after the POST; 0 when it wrote none) is reported beside the release.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Installation, django_setup, make_repository, report, summary
from bench.scripted_llm import Script, ScriptedLLM

RUNS = int(os.environ.get("BENCH_CONTROL_RUNS", "50"))
TIMEOUT = 20.0
TARGET_MS = 1000
STREAM_CHUNK_SECONDS = 0.03  # ~70 chunks: the reply takes ~2 s to generate, so control lands inside it
STREAMED_PLAN = {
    "action": "plan",
    "steps": [
        f"Step {n}: read the code that matters for the goal and note what has to change" for n in range(10)
    ],
    "thought": "The repository is small; I will read it before I change anything.",
}
# How long after the run is under way the control is sent, so that it lands at different points of a simple
# step (0.5 s) or of the worker's 0.2 s check period while the model streams or the command runs.
JITTER: dict[str, Callable[[int], float]] = {
    "simple": lambda index: 0.1 + (index % 5) * 0.07,
    "llm_streaming": lambda index: 0.05 + (index % 5) * 0.05,
    "llm_command": lambda index: 0.05 + (index % 5) * 0.05,
    "pipeline_command": lambda index: 0.05 + (index % 5) * 0.05,
}
VARIANTS = {
    "simple": "simple agent, 0.5 s steps",
    "llm_streaming": "LLM agent, model streaming",
    "llm_command": "LLM agent, command running",
    "pipeline_command": "pipeline, command running",
}


def wait_until(ready: Callable[[], Any], what: str, *, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := ready()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.005)
    return value


def command_processes(argv: list[str]) -> list[int]:
    """Live processes whose command line is exactly `argv` (Linux /proc; a zombie's command line is empty)."""
    wanted = ("\0".join(argv) + "\0").encode()
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(entry.path, "cmdline").read_bytes() == wanted:
                    found.append(int(entry.name))
    return found


@dataclass
class Started:
    run_id: int
    argv: list[str] | None = None  # the command whose processes must be gone after the sample
    script: Script | None = None  # the streamed reply the control must land in


@dataclass
class Sample:
    done: float  # POST -> lease released, seconds
    recorded: float  # POST -> the RUN_PAUSED / RUN_STOPPED event (the API's part)
    last_event: float  # POST -> the worker's newest event, 0 when it wrote none after the POST
    late_events: int  # events after RUN_PAUSED / RUN_STOPPED
    leftover: int  # processes of the command still alive once the worker was done


class ControlBench:
    def __init__(self, install: Installation, client: Any, llm: ScriptedLLM) -> None:
        from events.models import Event
        from runs.models import Run

        self.install, self.client, self.llm, self.Event, self.Run = install, client, llm, Event, Run
        project = client.post("/api/projects/", json={"name": "control", "local_path": str(install.project_dir),
                                                      "allowed_commands": ["sleep"]})  # fmt: skip
        project.raise_for_status()
        self.project_id = project.json()["id"]

    def _create(self, goal: str, options: dict[str, Any], run_type: str = "agent") -> int:
        body = {"project_id": self.project_id, "goal": goal, "run_type": run_type, "options": options}
        response = self.client.post("/api/runs/", json=body)
        response.raise_for_status()
        return response.json()["id"]

    def _sleep_command(self, index: int) -> list[str]:
        # GNU sleep adds up its arguments: the second one makes each sample's process recognisable.
        return ["sleep", "600", f"0.{os.getpid()}{index:04d}"]

    def start(self, variant: str, index: int) -> Started:
        if variant == "simple":
            run_id = self._create("control", {"agent": "simple", "max_steps": 1000, "step_seconds": 0.5})
            wait_until(lambda: self.Event.objects.filter(run_id=run_id, type="EXECUTING").exists(),
                       f"run {run_id} to execute")  # fmt: skip
            return Started(run_id)
        if variant == "llm_streaming":
            goal = f"control streaming {index}"
            script = self.llm.add(goal, [STREAMED_PLAN], chunk_delay=STREAM_CHUNK_SECONDS)
            run_id = self._create(goal, {"max_steps": 10})
            if not script.streaming.wait(TIMEOUT):
                raise RuntimeError(f"run {run_id} did not ask the model")
            return Started(run_id, script=script)
        argv = self._sleep_command(index)
        goal = f"control command {index}"
        if variant == "llm_command":
            self.llm.add(goal, [{"action": "plan", "steps": ["Wait for the service"]},
                                {"action": "run_command", "command": shlex.join(argv)}])  # fmt: skip
            run_id = self._create(goal, {"max_steps": 10})
        else:
            run_id = self._create(goal, {"commands": [shlex.join(argv)], "command_timeout": 900}, "pipeline")
        wait_until(lambda: command_processes(argv), f"the command of run {run_id} to start")
        return Started(run_id, argv)

    def control(self, started: Started, action: str) -> Sample:
        run_id = started.run_id
        if started.script is not None and started.script.finished.is_set():
            raise RuntimeError(f"run {run_id}: the model finished its reply before the {action} was sent")
        sent_at = time.time()
        sent = time.perf_counter()
        self.client.post(f"/api/runs/{run_id}/{action}/").raise_for_status()
        wait_until(lambda: not self.Run.objects.filter(pk=run_id, lease_owner__isnull=False).exists(),
                   f"the worker of run {run_id} to let go")  # fmt: skip
        done = time.perf_counter() - sent
        control_type = "RUN_PAUSED" if action == "pause" else "RUN_STOPPED"
        events = self.Event.objects.filter(run_id=run_id)
        marker = events.get(type=control_type)
        late = events.filter(seq__gt=marker.seq).count()
        newest = events.filter(created_at__gte=_aware(sent_at)).exclude(pk=marker.pk).order_by("-seq").first()
        leftover = command_processes(started.argv) if started.argv else []
        for pid in leftover:  # counted as a failure; killed so that it cannot outlive the benchmark
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if action == "pause":
            self.client.post(f"/api/runs/{run_id}/stop/").raise_for_status()
        last_event = newest.created_at.timestamp() - sent_at if newest else 0.0
        recorded = marker.created_at.timestamp() - sent_at
        return Sample(done, recorded, max(0.0, last_event), late, len(leftover))


def _aware(timestamp: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, tz=UTC)


def main() -> dict[str, Any]:
    llm = ScriptedLLM()
    try:
        with Installation(WORKER_CONCURRENCY="2", **llm.env()) as install:
            make_repository(install.project_dir)
            django_setup(install)
            install.start_web()
            install.start_workers()
            samples: dict[str, dict[str, list[Sample]]] = {}
            with install.client() as client:
                bench = ControlBench(install, client, llm)
                for variant in VARIANTS:
                    for index in range(RUNS):
                        action = "stop" if variant == "pipeline_command" or index % 2 else "pause"
                        started = bench.start(variant, index)
                        time.sleep(JITTER[variant](index))
                        samples.setdefault(variant, {}).setdefault(action, []).append(
                            bench.control(started, action)
                        )
            engine = install.engine
    finally:
        llm.close()
    rows: dict[str, dict[str, Any]] = {}
    for variant, actions in samples.items():
        for action, taken in actions.items():
            rows.setdefault(variant, {})[action] = {
                **summary([s.done for s in taken]),
                "recorded_p99_ms": summary([s.recorded for s in taken])["p99_ms"],
                "last_event_p99_ms": summary([s.last_event for s in taken])["p99_ms"],
                "late_events": sum(s.late_events for s in taken),
                "leftover_processes": sum(s.leftover for s in taken),
            }
    every = [row for actions in rows.values() for row in actions.values()]
    met = all(
        r["p99_ms"] <= TARGET_MS and not r["late_events"] and not r["leftover_processes"] for r in every
    )
    print(f"control ({RUNS} runs per variant, pause and stop alternating, {engine})")
    print(f"  {'POST ->':37} {'':3} {'worker done (lease released)':>28} {'event':>8} {'last':>8}")
    print(
        f"  {'':37} {'n':>3} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'p99 ms':>8} {'p99 ms':>8} late left"
    )
    for variant, actions in rows.items():
        for action, row in actions.items():
            print(
                f"  {VARIANTS[variant] + ': ' + action:37} {row['n']:>3} {row['p50_ms']:>9} {row['p95_ms']:>9}"
                f" {row['p99_ms']:>9} {row['recorded_p99_ms']:>8} {row['last_event_p99_ms']:>8}"
                f" {row['late_events']:>4} {row['leftover_processes']:>4}"
            )
    print(
        "  event = the RUN_PAUSED / RUN_STOPPED event recorded; last = the worker's newest event (0: none after"
    )
    print(
        "  the POST); late = events after the control event; left = command processes alive once it was done"
    )
    print(f"  target p99 <= {TARGET_MS} ms, no late event, no process left -> {'met' if met else 'NOT met'}")
    return {"name": "control", "rows": rows, "met": met}


if __name__ == "__main__":
    report(main())
