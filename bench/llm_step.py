"""Per-step overhead of the LLM agent with an instant scripted LLM, beside the git commit alone.

Real LLM-agent runs (gunicorn + qcluster) against a scripted Ollama server in this process. Each run plans
PLAN_STEPS steps; each step is two model turns, `write_file` (one file of ~1 KB) and `step_done` (which
commits). The server notes when it accepted each request's connection and when it had written the reply, so
the platform's time is the time from a reply to the next request, with the model's own time left out. A step's overhead is
the sum of its two gaps: after the write_file reply (LLM_CALL event, the write, TOOL_CALL event, the next
turn's checks, the next request) and after the step_done reply (LLM_CALL event, the commit, STEP_COMPLETED
with the checkpoint, the next turn's checks, the next request). The last step of a plan is left out of the
samples: its second gap also holds the verification prompt (a diff of the whole branch), work done once per
plan rather than per step.

Baseline: the same commit alone, `git add -A` + `git commit` of one changed file in a worktree of the same
repository, with the flags and environment runs/workspace.py uses, taken between the runs.
Target (issue 7 row 8): overhead p50 <= 2 x baseline p50. BENCH_LLM_STEPS samples (default 200).
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Installation, django_setup, make_repository, report, summary
from bench.scripted_llm import Script, ScriptedLLM

STEPS = int(os.environ.get("BENCH_LLM_STEPS", "200"))
PLAN_STEPS = 10
SAMPLED_PER_RUN = PLAN_STEPS - 1
TIMEOUT = 120.0
TARGET_RATIO = 2.0


def file_text(run: int, step: int) -> str:
    """What a step writes: about 1 KB of text, different in every step."""
    return "".join(
        f"- run {run}, step {step}, note {line}: keep the public API unchanged\n" for line in range(20)
    )


def script(run: int) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = [
        {"action": "plan", "steps": [f"Write notes/step-{n:02d}.md" for n in range(1, PLAN_STEPS + 1)]}
    ]
    for step in range(1, PLAN_STEPS + 1):
        replies.append({"action": "write_file", "path": f"notes/step-{step:02d}.md", "content": file_text(run, step),
                        "thought": "Write the notes of this step."})  # fmt: skip
        replies.append({"action": "step_done", "summary": f"notes/step-{step:02d}.md written"})
    replies.append({"action": "finish", "success": True, "summary": "all notes written"})
    return replies


def step_overheads(served: list[tuple[float, float]]) -> list[float]:
    """Requests are 0 plan, 2k-1 write_file of step k, 2k step_done of step k, ..., last finish."""
    gap = [served[i + 1][0] - served[i][1] for i in range(len(served) - 1)]  # reply i -> request i + 1
    return [gap[2 * step - 1] + gap[2 * step] for step in range(1, SAMPLED_PER_RUN + 1)]


def wait_for_completion(run_id: int, scripted: Script) -> None:
    """Until the run has completed; the run's row is read twice a second at most while it works, so that the
    benchmark's own queries hardly touch what it measures."""
    from runs.models import Run

    deadline = time.monotonic() + TIMEOUT
    while True:
        finished = scripted.finished.wait(0.5)
        run = Run.objects.filter(pk=run_id).values("status", "error").get()
        if run["status"] == "COMPLETED":
            return
        if run["status"] in ("FAILED", "STOPPED") or time.monotonic() > deadline:
            raise RuntimeError(
                f"run {run_id} is {run['status']}, not COMPLETED: {run['error']} {scripted.errors}"
            )
        if finished:
            time.sleep(0.01)  # the last reply is out; the worker is recording the run's completion


def baseline_commits(tree: Path, run: int) -> list[float]:
    from runs import workspace

    times = []
    for step in range(1, SAMPLED_PER_RUN + 1):
        path = tree / "notes" / f"step-{step:02d}.md"
        path.parent.mkdir(exist_ok=True)
        path.write_text(file_text(run, step) + "baseline\n")
        started = time.perf_counter()
        workspace.git("add", "-A", cwd=tree)
        workspace.git("commit", "-q", "--no-verify", "-m", f"Write notes/step-{step:02d}.md", cwd=tree,
                      config=workspace.COMMIT_CONFIG)
        times.append(time.perf_counter() - started)
    return times


def main() -> dict[str, Any]:
    llm = ScriptedLLM()
    runs = math.ceil(STEPS / SAMPLED_PER_RUN)
    overheads: list[float] = []
    model_times: list[float] = []
    commits: list[float] = []
    try:
        with Installation(**llm.env()) as install:
            make_repository(install.project_dir)
            django_setup(install)
            from runs import workspace

            tree = install.root / "baseline-worktree"
            workspace.git("worktree", "add", "-q", "-b", "bench/baseline", str(tree), cwd=install.project_dir)
            install.start_web()
            install.start_workers()
            with install.client() as client:
                project = client.post(
                    "/api/projects/", json={"name": "llm-step", "local_path": str(install.project_dir)}
                )
                project.raise_for_status()
                for run in range(runs):
                    goal = f"llm step benchmark {run}"
                    scripted = llm.add(goal, script(run))
                    body = {"project_id": project.json()["id"], "goal": goal, "options": {"max_steps": 30}}
                    created = client.post("/api/runs/", json=body)
                    created.raise_for_status()
                    run_id = created.json()["id"]
                    wait_for_completion(run_id, scripted)
                    if scripted.errors:
                        raise RuntimeError(f"run {run_id}: {scripted.errors}")
                    overheads.extend(step_overheads(scripted.served))
                    model_times.extend(end - start for start, end in scripted.served)
                    commits.extend(baseline_commits(tree, run))
                    # every step committed: the plan's steps are on the run's branch
                    count = workspace.git("rev-list", "--count", f"main..agent-runner/run-{run_id}", cwd=tree)
                    if int(count) != PLAN_STEPS:
                        raise RuntimeError(f"run {run_id} made {count.strip()} commits, not {PLAN_STEPS}")
            engine = install.engine
    finally:
        llm.close()
    ours = summary(overheads[:STEPS])
    baseline = summary(commits[:STEPS])
    model = summary(model_times)
    ratio = round(ours["p50_ms"] / baseline["p50_ms"], 2)
    print(
        f"llm_step ({ours['n']} steps in {runs} runs of {PLAN_STEPS}-step plans, instant scripted LLM, {engine})"
    )
    print(f"  {'':52} {'p50 ms':>8} {'p95 ms':>8}")
    print(
        f"  {'git add + git commit of one file (baseline)':52} {baseline['p50_ms']:>8} {baseline['p95_ms']:>8}"
    )
    print(f"  {'LLM-agent step: platform time between replies':52} {ours['p50_ms']:>8} {ours['p95_ms']:>8}")
    print(f"  {'(the scripted model per reply, left out)':52} {model['p50_ms']:>8} {model['p95_ms']:>8}")
    print(
        f"  ratio p50 {ratio} (target <= {TARGET_RATIO}) -> {'met' if ratio <= TARGET_RATIO else 'NOT met'}"
    )
    return {
        "name": "llm_step",
        "baseline": baseline,
        "agent_runner": ours,
        "model_per_reply": model,
        "ratio_p50": ratio,
        "target": {"ratio_p50": TARGET_RATIO},
        "met": ratio <= TARGET_RATIO,
    }


if __name__ == "__main__":
    report(main())
