"""A scripted LLM for benchmarks: Ollama's POST /api/chat (NDJSON stream) on 127.0.0.1, served from a thread
of the benchmark process so that it can tell exactly when each request arrived and each reply was sent.

A run's goal names its script (the agent's first user message starts with "Goal: <goal>"); each request for
that goal gets the script's next reply, streamed in 16-character chunks `chunk_delay` seconds apart (0: the
whole reply in one write, an instant model).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNK_CHARS = 16
MODEL = "bench-scripted"


@dataclass
class Script:
    replies: list[dict[str, Any]]
    chunk_delay: float = 0.0
    # (perf_counter when the request's connection was accepted, when its reply was written), one per request
    served: list[tuple[float, float]] = field(default_factory=list)
    streaming: threading.Event = field(default_factory=threading.Event)  # a reply has begun
    finished: threading.Event = field(default_factory=threading.Event)  # the last reply was written
    errors: list[str] = field(default_factory=list)


class ScriptedLLM:
    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, name="scripted-llm", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """Settings that point an installation's workers at this server."""
        return {"LLM_PROVIDER": "ollama", "LLM_BASE_URL": self.url, "LLM_MODEL": MODEL,
                "LLM_MAX_RETRIES": "0", "LLM_TIMEOUT": "30"}  # fmt: skip

    def add(self, goal: str, replies: list[dict[str, Any]], *, chunk_delay: float = 0.0) -> Script:
        script = Script(list(replies), chunk_delay)
        with self.lock:
            self.scripts[goal] = script
        return script

    def _next(self, goal: str) -> tuple[Script | None, dict[str, Any] | None]:
        with self.lock:
            script = self.scripts.get(goal)
            if script is None or len(script.served) >= len(script.replies):
                return script, None
            return script, script.replies[len(script.served)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Server(ThreadingHTTPServer):
    """Notes when each connection is accepted: what the server spends after that (a thread, parsing the
    request) is the model's time, not the client's."""

    daemon_threads = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.accepted: dict[Any, float] = {}

    def get_request(self) -> tuple[Any, Any]:
        connection, address = super().get_request()
        self.accepted[connection] = time.perf_counter()
        return connection, address


def _handler(llm: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            received = self.server.accepted.pop(self.request, time.perf_counter())  # type: ignore[attr-defined]
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            goal = _goal(body)
            script, reply = llm._next(goal)
            if script is None or reply is None:
                if script is not None:
                    script.errors.append("more requests than scripted replies")
                self.send_error(500, f"no scripted reply for goal {goal[:80]!r}")
                return
            index = len(script.served)
            script.served.append((received, 0.0))  # claims the reply; its end time is filled in below
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            text = json.dumps(reply)
            lines = [
                json.dumps({"model": MODEL, "message": {"role": "assistant", "content": text[i : i + CHUNK_CHARS]},
                            "done": False}) + "\n"
                for i in range(0, len(text), CHUNK_CHARS)
            ]  # fmt: skip
            lines.append(json.dumps({"model": MODEL, "done": True, "prompt_eval_count": 100,
                                     "eval_count": 20}) + "\n")  # fmt: skip
            script.streaming.set()
            try:
                if script.chunk_delay:
                    for line in lines:
                        self.wfile.write(line.encode())
                        time.sleep(script.chunk_delay)  # the model generating its next tokens
                else:
                    self.wfile.write("".join(lines).encode())
            except (BrokenPipeError, ConnectionResetError):
                return  # the worker hung up on a pause or stop: that is what the control benchmark wants
            script.served[index] = (received, time.perf_counter())
            if index == len(script.replies) - 1:
                script.finished.set()

    return Handler


def _goal(body: dict[str, Any]) -> str:
    for message in body.get("messages") or []:
        content = message.get("content") or ""
        if message.get("role") == "user" and content.startswith("Goal: "):
            return content.removeprefix("Goal: ").split("\n", 1)[0]
    return ""
