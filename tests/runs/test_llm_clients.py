"""Both LLM clients against a scripted server over real HTTP: protocol, tokens, retries, failures."""

from __future__ import annotations

import socket

import pytest

from runs.llm import LLMError, LLMUnavailable, get_client
from runs.llm.base import BACKOFF_SECONDS
from tests.runs.conftest import Fault

SCHEMA = {"type": "object", "properties": {"action": {"type": "string"}}, "required": ["action"]}
MESSAGES = [{"role": "user", "content": "hi"}]


def nothing() -> None:
    return None


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_it_streams_a_reply_with_tokens_and_latency(scripted_llm, settings, provider):
    settings.LLM_PROVIDER = provider
    scripted_llm.queue({"action": "finish"})
    reply = get_client().chat(MESSAGES, schema=SCHEMA, interrupt=nothing)
    assert reply.content == '{"action": "finish"}'
    assert (reply.prompt_tokens, reply.completion_tokens, reply.model) == (100, 20, "scripted-model")
    assert reply.latency_ms > 0 and reply.attempts == 1
    body = scripted_llm.requests[0]["body"]
    assert body["stream"] is True and body["messages"] == MESSAGES
    if provider == "ollama":
        assert scripted_llm.requests[0]["path"] == "/api/chat" and body["format"] == SCHEMA
    else:
        assert scripted_llm.requests[0]["path"] == "/v1/chat/completions"
        assert body["response_format"]["json_schema"]["schema"] == SCHEMA


def test_it_falls_back_to_json_object_when_the_schema_is_refused(scripted_llm, settings):
    settings.LLM_PROVIDER = "openai"
    scripted_llm.queue(
        Fault(status=400, body='{"error": "response_format json_schema is not supported"}'), {"a": 1}
    )
    reply = get_client().chat(MESSAGES, schema=SCHEMA, interrupt=nothing)
    assert reply.content == '{"a": 1}'
    formats = [r["body"]["response_format"]["type"] for r in scripted_llm.requests]
    assert formats == ["json_schema", "json_object"]


@pytest.mark.parametrize("status", [500, 429, 503])
def test_it_retries_server_errors_a_bounded_number_of_times(scripted_llm, settings, status, monkeypatch):
    monkeypatch.setattr("runs.llm.base.BACKOFF_SECONDS", (0.01,) * len(BACKOFF_SECONDS))
    scripted_llm.queue(Fault(status=status), Fault(status=status), {"ok": True})
    assert get_client().chat(MESSAGES, schema=SCHEMA, interrupt=nothing).attempts == 3
    scripted_llm.queue(*[Fault(status=status)] * 5)
    with pytest.raises(LLMError, match="failed 3 times"):
        get_client().chat(MESSAGES, schema=SCHEMA, interrupt=nothing)


def test_it_retries_a_dropped_stream(scripted_llm, settings, monkeypatch):
    monkeypatch.setattr("runs.llm.base.BACKOFF_SECONDS", (0.01,) * len(BACKOFF_SECONDS))
    settings.LLM_PROVIDER = "openai"
    scripted_llm.queue(Fault(disconnect=True), {"action": "x" * 80}, {"action": "y"})
    reply = get_client().chat(MESSAGES, schema=SCHEMA, interrupt=nothing)
    assert reply.content == '{"action": "y"}' and reply.attempts == 2


def test_it_says_where_no_llm_answered(settings, monkeypatch):
    monkeypatch.setattr("runs.llm.base.BACKOFF_SECONDS", (0.01,) * len(BACKOFF_SECONDS))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.LLM_BASE_URL = f"http://127.0.0.1:{port}"
    settings.LLM_PROVIDER = "ollama"
    with pytest.raises(
        LLMUnavailable, match=f"no LLM at http://127.0.0.1:{port}: start Ollama or set LLM_BASE_URL"
    ):
        get_client().chat(MESSAGES, schema=SCHEMA, interrupt=nothing)


def test_it_sends_the_api_key_only_as_a_bearer_header(scripted_llm, settings):
    settings.LLM_PROVIDER = "openai"
    settings.LLM_API_KEY = "sk-very-secret"
    scripted_llm.queue({"action": "finish"})
    get_client().chat(MESSAGES, schema=SCHEMA, interrupt=nothing)
    request = scripted_llm.requests[0]
    assert request["headers"]["Authorization"] == "Bearer sk-very-secret"
    assert "sk-very-secret" not in str(request["body"])


def test_it_gives_up_a_call_when_interrupted(scripted_llm):
    import time

    class Stop(Exception):
        pass

    scripted_llm.queue(Fault(chunk_delay=0.5), {"action": "slow" * 20})
    started = time.monotonic()

    def interrupt() -> None:
        if time.monotonic() - started > 0.3:
            raise Stop

    with pytest.raises(Stop):
        get_client().chat(MESSAGES, schema=SCHEMA, interrupt=interrupt)
    assert time.monotonic() - started < 1.0


class ChunkedBody:
    """A response whose body arrives in the given pieces, as a socket may cut it."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = pieces

    def iter_bytes(self):
        yield from self.pieces


def test_it_splits_a_stream_into_lines_wherever_the_chunks_are_cut():
    import threading

    from runs.llm.base import StreamingClient

    text = 'data: {"c": "héllo ✓"}\r\n\r\n: keep-alive\n{"done": true}\n\nlast line without a newline'
    encoded = text.encode()
    expected = ['data: {"c": "héllo ✓"}', ": keep-alive", '{"done": true}', "last line without a newline"]
    for size in (1, 2, 3, 7, len(encoded)):  # cuts inside "é" and "✓", and between \r and \n
        pieces = [encoded[i : i + size] for i in range(0, len(encoded), size)]
        lines = list(StreamingClient._lines(ChunkedBody(*pieces), threading.Event()))
        assert lines == expected, size
    cancelled = threading.Event()
    cancelled.set()
    assert list(StreamingClient._lines(ChunkedBody(encoded), cancelled)) == []
