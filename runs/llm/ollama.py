"""Ollama's native chat API: POST /api/chat with `format` = the JSON schema, streamed as NDJSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from runs.llm.base import LLMBadReply, LLMReply, Message, StreamingClient


class OllamaClient(StreamingClient):
    provider = "ollama"

    def _request(self, messages: list[Message], schema: dict[str, Any], fallback: bool) -> tuple[str, dict]:
        body = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "format": "json" if fallback else schema,
            "options": {"temperature": 0, "seed": 7},
        }
        return f"{self.base_url}/api/chat", body

    def _unreachable_message(self, exc: Exception) -> str:
        return f"no LLM at {self.base_url}: start Ollama or set LLM_BASE_URL ({type(exc).__name__})"

    def _parse_stream(self, lines: Iterator[str], reply: LLMReply) -> None:
        parts: list[str] = []
        for line in lines:
            try:
                chunk = json.loads(line)
            except json.JSONDecodeError:
                raise LLMBadReply(f"ollama sent a line that is not JSON: {line[:200]!r}") from None
            if "error" in chunk:
                raise LLMBadReply(f"ollama: {chunk['error']}")
            parts.append((chunk.get("message") or {}).get("content") or "")
            if chunk.get("done"):
                reply.model = chunk.get("model") or reply.model
                reply.prompt_tokens = int(chunk.get("prompt_eval_count") or 0)
                reply.completion_tokens = int(chunk.get("eval_count") or 0)
                break
        else:
            raise LLMBadReply("ollama closed the stream before it was done")
        reply.content = "".join(parts)
