"""What every LLM client shares: messages and replies, errors, bounded retries with backoff, and a call
that an operator's pause or stop interrupts within a fraction of a second even while the model generates."""

from __future__ import annotations

import functools
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

import httpx

CHECK_SECONDS = 0.2
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Message(TypedDict):
    role: str  # system | user | assistant
    content: str


@dataclass
class LLMReply:
    content: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    attempts: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


class LLMError(Exception):
    """The LLM could not give an answer; the message says why and what to do."""


class LLMUnavailable(LLMError):
    """No server answered at the configured address."""


class LLMBadReply(LLMError):
    """The server answered, but not with what was asked for."""


class RetryableHTTPError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


Interrupt = Callable[[], None]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: httpx loads the CA bundle again for every new client, i.e. for
    every model turn, and that cost ~40 ms a turn (profiled: bench/llm_step.py)."""
    return httpx.create_ssl_context()


class LLMClient(Protocol):
    model: str

    def chat(self, messages: list[Message], *, schema: dict[str, Any], interrupt: Interrupt) -> LLMReply:
        """One reply following `schema`; `interrupt()` is called often and may raise to abandon the call."""
        ...

    def close(self) -> None:
        """Let go of the connection kept for the next call."""
        ...


class StreamingClient:
    """Base of the two clients: subclasses build the request and parse the stream."""

    provider = "llm"

    def __init__(
        self, *, base_url: str, model: str, api_key: str = "", timeout: float = 120.0, max_retries: int = 3
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        # One connection pool for all the calls of a run: the next turn reuses the kept-alive connection
        # (and its TLS session) instead of connecting again. Closed by close(), or when a call is abandoned.
        self._http: httpx.Client | None = None

    # -- to implement ----------------------------------------------------------------------------
    def _request(self, messages: list[Message], schema: dict[str, Any], fallback: bool) -> tuple[str, dict]:
        raise NotImplementedError

    def _parse_stream(self, lines: Iterator[str], reply: LLMReply) -> None:
        raise NotImplementedError

    def _refuses_schema(self, status: int, body: str) -> bool:
        return False

    # -- shared ----------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/x-ndjson, text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def chat(self, messages: list[Message], *, schema: dict[str, Any], interrupt: Interrupt) -> LLMReply:
        """One completion whose content is asked to follow `schema`. Retries connection errors, timeouts,
        429 and 5xx with backoff; `interrupt()` is called every CHECK_SECONDS and may raise to abandon it."""
        fallback = False
        last_error: Exception | None = None
        started = time.monotonic()
        for attempt in range(1, self.max_retries + 2):
            try:
                reply = self._call_interruptibly(messages, schema, fallback, interrupt)
                reply.attempts = attempt
                reply.latency_ms = round((time.monotonic() - started) * 1000, 1)
                return reply
            except RetryableHTTPError as exc:
                last_error = exc
            except httpx.HTTPStatusError as exc:
                body = exc.response.text  # read before raise_for_status
                if not fallback and self._refuses_schema(exc.response.status_code, body):
                    fallback = True
                    continue
                raise LLMError(f"{self.provider} at {self.base_url} refused the request: {exc}") from None
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = LLMUnavailable(self._unreachable_message(exc))
            except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError, LLMBadReply) as exc:
                last_error = exc  # a slow, cut or garbled stream is worth another try
            if attempt <= self.max_retries:
                self._sleep(BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)], interrupt)
        if isinstance(last_error, LLMError):
            raise last_error
        tries = self.max_retries + 1
        problem = f"{type(last_error).__name__}: {last_error}"
        raise LLMError(f"{self.provider} at {self.base_url} failed {tries} times; last error: {problem}")

    def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            http.close()

    def _connection(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)), verify=_tls_context()
            )
        return self._http

    def _unreachable_message(self, exc: Exception) -> str:
        return f"no LLM at {self.base_url}: start the server or set LLM_BASE_URL ({type(exc).__name__})"

    @staticmethod
    def _sleep(seconds: float, interrupt: Interrupt) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(CHECK_SECONDS, remaining))
            interrupt()

    def _call_interruptibly(
        self, messages: list[Message], schema: dict[str, Any], fallback: bool, interrupt: Interrupt
    ) -> LLMReply:
        """Stream the reply in a helper thread; the calling thread keeps checking `interrupt()` and, when
        it raises, closes the connection so the server stops generating for us."""
        url, body = self._request(messages, schema, fallback)
        outcome: dict[str, Any] = {}
        cancelled = threading.Event()
        client = self._connection()

        def call() -> None:
            reply = LLMReply(content="", model=self.model)
            try:
                with client.stream("POST", url, json=body, headers=self._headers()) as response:
                    if response.status_code in RETRY_STATUSES:
                        raise RetryableHTTPError(
                            response.status_code, response.read().decode(errors="replace")
                        )
                    if response.status_code >= 400:
                        response.read()
                        response.raise_for_status()
                    self._parse_stream(self._lines(response, cancelled), reply)
                outcome["reply"] = reply
            except BaseException as exc:  # handed to the calling thread
                outcome["error"] = exc

        worker = threading.Thread(target=call, name="llm-call", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(CHECK_SECONDS)
                if worker.is_alive():
                    interrupt()
        except BaseException:
            cancelled.set()
            self.close()  # the helper may still be reading: the next call gets a new pool
            raise
        if "error" in outcome:
            raise outcome["error"]
        return outcome["reply"]

    @staticmethod
    def _lines(response: httpx.Response, cancelled: threading.Event) -> Iterator[str]:
        """The stream's non-empty lines (NDJSON or server-sent events; \n or \r\n). A model streams about a
        line per token: split from the bytes, a line costs a few microseconds, where httpx's iter_lines, which
        decodes the text first, cost ~25 (measured; bench/llm_step.py). A newline never occurs inside a
        multi-byte UTF-8 character, so each line is decoded whole."""
        line = bytearray()
        for chunk in response.iter_bytes():
            if cancelled.is_set():
                return
            start = 0
            while (end := chunk.find(b"\n", start)) != -1:
                line += chunk[start:end]
                if line.strip():
                    yield line.decode(errors="replace").rstrip("\r")
                line.clear()
                start = end + 1
            line += chunk[start:]
        if line.strip() and not cancelled.is_set():
            yield line.decode(errors="replace").rstrip("\r")
