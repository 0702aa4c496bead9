"""A scripted LLM served over real HTTP, speaking Ollama's /api/chat (NDJSON) and the OpenAI-compatible
/v1/chat/completions (server-sent events). Tests queue replies; the server streams them in small chunks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


@dataclass
class Fault:
    """A scripted misbehaviour instead of a reply."""

    status: int | None = None  # answer with this HTTP status
    body: str = "scripted failure"
    chunk_delay: float = 0.0  # seconds between streamed chunks of the next reply
    disconnect: bool = False  # close the stream before it is finished


@dataclass
class ScriptedLLM:
    server: HTTPServer
    replies: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    model: str = "scripted-model"

    @property
    def url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def queue(self, *replies: Any) -> None:
        with self.lock:
            self.replies.extend(replies)

    def _next(self) -> Any:
        with self.lock:
            if not self.replies:
                return Fault(status=500, body="the script has no more replies")
            return self.replies.pop(0)

    def handle(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        with self.lock:
            self.requests.append({"path": request.path, "body": body, "headers": dict(request.headers)})
        reply = self._next()
        delay = 0.0
        disconnect = False
        if isinstance(reply, Fault):
            if reply.status:
                return Response(reply.body, status=reply.status)
            delay, disconnect = reply.chunk_delay, reply.disconnect
            reply = self._next()
        text = reply if isinstance(reply, str) else json.dumps(reply)
        chunks = [text[i : i + 16] for i in range(0, len(text), 16)] or [""]
        if request.path.endswith("/api/chat"):
            stream = self._ollama(chunks, delay, disconnect)
            return Response(stream, mimetype="application/x-ndjson")
        return Response(self._openai(chunks, delay, disconnect), mimetype="text/event-stream")

    def _ollama(self, chunks: list[str], delay: float, disconnect: bool) -> Iterator[str]:
        for index, chunk in enumerate(chunks):
            if disconnect and index == len(chunks) // 2:
                return
            time.sleep(delay)
            yield json.dumps(
                {"model": self.model, "message": {"role": "assistant", "content": chunk}, "done": False}
            )
            yield "\n"
        yield (
            json.dumps({"model": self.model, "done": True, "prompt_eval_count": 100, "eval_count": 20}) + "\n"
        )

    def _openai(self, chunks: list[str], delay: float, disconnect: bool) -> Iterator[str]:
        for index, chunk in enumerate(chunks):
            if disconnect and index == len(chunks) // 2:
                return
            time.sleep(delay)
            event = {"model": self.model, "choices": [{"index": 0, "delta": {"content": chunk}}]}
            yield f"data: {json.dumps(event)}\n\n"
        yield f"data: {json.dumps({'model': self.model, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
        usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        yield f"data: {json.dumps({'model': self.model, 'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"


@pytest.fixture
def scripted_llm(settings) -> Iterator[ScriptedLLM]:
    """Ollama protocol by default; set settings.LLM_PROVIDER = "openai" to speak the other one."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    llm = ScriptedLLM(server)
    server.expect_request("/api/chat", method="POST").respond_with_handler(llm.handle)
    server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(llm.handle)
    settings.LLM_PROVIDER = "ollama"
    settings.LLM_BASE_URL = llm.url
    settings.LLM_MODEL = "scripted-model"
    settings.LLM_MAX_RETRIES = 2
    settings.LLM_TIMEOUT = 10
    try:
        yield llm
    finally:
        server.clear()
        if server.is_running():
            server.stop()


def edit_script(content: str = "def hello():\n    return 'hi'\n", path: str = "hello.py") -> list[dict]:
    """Replies of a model that writes one file in one step and finishes."""
    return [
        {"action": "plan", "steps": [f"Write {path}"]},
        {"action": "write_file", "path": path, "content": content},
        {"action": "step_done", "summary": f"{path} written"},
        {"action": "finish", "success": True, "summary": "done"},
    ]


@pytest.fixture
def finished_run(scripted_llm, make_run):
    """A run of the LLM agent that changed one file and now awaits review."""
    from runs.execution import execute_run
    from runs.models import Run

    def make(**script: Any) -> Run:
        scripted_llm.queue(*edit_script(**script))
        run = make_run(options={"agent": "llm", "max_steps": 10})
        assert execute_run(run.pk) == "completed"
        return Run.objects.select_related("project").get(pk=run.pk)

    return make
