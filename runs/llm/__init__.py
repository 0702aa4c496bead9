"""LLM clients behind one small interface: Ollama's native chat API and any OpenAI-compatible server.

`get_client()` picks one from settings (LLM_PROVIDER, LLM_BASE_URL, LLM_MODEL, LLM_API_KEY, LLM_TIMEOUT,
LLM_MAX_RETRIES); `options.model` on a run overrides the model.
"""

from __future__ import annotations

from django.conf import settings

from runs.llm.base import LLMBadReply, LLMClient, LLMError, LLMReply, LLMUnavailable, Message

__all__ = ["LLMBadReply", "LLMClient", "LLMError", "LLMReply", "LLMUnavailable", "Message", "get_client"]

PROVIDERS = ("ollama", "openai")


def get_client(*, model: str | None = None) -> LLMClient:
    from runs.llm.ollama import OllamaClient
    from runs.llm.openai_compat import OpenAICompatibleClient

    provider = settings.LLM_PROVIDER.lower()
    options = {
        "base_url": settings.LLM_BASE_URL,
        "model": model or settings.LLM_MODEL,
        "api_key": settings.LLM_API_KEY,
        "timeout": settings.LLM_TIMEOUT,
        "max_retries": settings.LLM_MAX_RETRIES,
    }
    if provider == "ollama":
        return OllamaClient(**options)
    if provider == "openai":
        return OpenAICompatibleClient(**options)
    raise LLMError(f"LLM_PROVIDER must be one of {', '.join(PROVIDERS)}; got {settings.LLM_PROVIDER!r}.")
