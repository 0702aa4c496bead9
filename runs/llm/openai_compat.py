"""Any OpenAI-compatible server (Ollama's /v1, llama.cpp's server, vLLM, LM Studio, hosted APIs):
POST {base}/v1/chat/completions with `response_format` json_schema (json_object when the server refuses
the schema), streamed as server-sent events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from runs.llm.base import LLMBadReply, LLMReply, Message, StreamingClient


class OpenAICompatibleClient(StreamingClient):
    provider = "openai-compatible server"

    @property
    def endpoint(self) -> str:
        base = self.base_url if self.base_url.endswith("/v1") else f"{self.base_url}/v1"
        return f"{base}/chat/completions"

    def _request(self, messages: list[Message], schema: dict[str, Any], fallback: bool) -> tuple[str, dict]:
        response_format: dict[str, Any] = (
            {"type": "json_object"}
            if fallback
            else {
                "type": "json_schema",
                "json_schema": {"name": "agent_action", "strict": True, "schema": schema},
            }
        )
        body = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0,
            "seed": 7,
            "response_format": response_format,
        }
        return self.endpoint, body

    def _refuses_schema(self, status: int, body: str) -> bool:
        return status in (400, 422) and ("response_format" in body or "json_schema" in body)

    def _parse_stream(self, lines: Iterator[str], reply: LLMReply) -> None:
        parts: list[str] = []
        finished = False
        for line in lines:
            if not line.startswith("data:"):
                continue  # SSE comments, event names, keep-alives
            data = line[5:].strip()
            if data == "[DONE]":
                finished = True
                break
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError:
                raise LLMBadReply(f"the server sent an event that is not JSON: {data[:200]!r}") from None
            if "error" in chunk:
                raise LLMBadReply(f"the server reported: {chunk['error']}")
            reply.model = chunk.get("model") or reply.model
            for choice in chunk.get("choices") or []:
                parts.append((choice.get("delta") or {}).get("content") or "")
                if choice.get("finish_reason"):
                    finished = True
            usage = chunk.get("usage")
            if usage:
                reply.prompt_tokens = int(usage.get("prompt_tokens") or 0)
                reply.completion_tokens = int(usage.get("completion_tokens") or 0)
        if not finished:
            raise LLMBadReply("the server closed the stream before the reply was finished")
        reply.content = "".join(parts)
