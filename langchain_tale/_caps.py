"""Map a hard output cap to the parameter each provider's LangChain class really sends.

Providers are told apart with ``isinstance`` against their classes, looked up only in
modules already imported (a ``ChatOpenAI`` instance means ``langchain_openai`` is loaded), so
nothing is imported here and a class that merely shares a name is not mistaken for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from tale_shared._optional import is_instance_of

OPENAI_HOSTS = ("api.openai.com",)
OLLAMA_OPTIONS = (
    "mirostat",
    "mirostat_eta",
    "mirostat_tau",
    "num_ctx",
    "num_gpu",
    "num_thread",
    "num_predict",
    "repeat_last_n",
    "repeat_penalty",
    "temperature",
    "seed",
    "stop",
    "tfs_z",
    "top_k",
    "top_p",
)
"""The model fields ``ChatOllama`` turns into ``options`` (a per-call ``options`` replaces
them all, so the cap is sent with the model's own)."""


def _base_url(llm: Any) -> str | None:
    """The URL the client really calls: its root client's, else the configured one."""
    client = getattr(llm, "root_client", None)
    url = getattr(client, "base_url", None) or getattr(llm, "openai_api_base", None)
    return str(url) if url else None


def serves_openai_itself(llm: Any) -> bool:
    """Whether a ``ChatOpenAI`` calls OpenAI's own API (or Azure's), not a compatible server.

    Decided from the client's configuration (its base URL), once per call of
    :func:`cap_kwargs`, never from a reply.
    """
    if is_instance_of(llm, "langchain_openai.chat_models.azure", "AzureChatOpenAI"):
        return True
    url = _base_url(llm)
    return url is None or (urlparse(url).hostname or "") in OPENAI_HOSTS


def cap_kwargs(llm: Any, max_tokens: int | None) -> dict[str, Any]:
    """Per-call kwargs that cap output at ``max_tokens`` for ``llm``'s provider.

    - ``ChatOpenAI`` sends ``max_tokens`` as ``max_completion_tokens``, which OpenAI reads
      and many OpenAI-compatible servers (llama.cpp's, older vLLM, ...) ignore. Pointed at a
      server other than OpenAI's, the cap also goes in the body as ``max_tokens`` through
      ``extra_body`` (merged with the model's own ``extra_body``).
    - Gemini (``ChatGoogleGenerativeAI``/``ChatVertexAI``) takes ``max_output_tokens``.
    - Anthropic with extended thinking needs ``thinking.budget_tokens >= 1024`` and below
      ``max_tokens``: the cap is added on top of the thinking budget.
    - Ollama (``ChatOllama``) reads ``options.num_predict``; a per-call ``options`` replaces
      the model's, so they are sent along.
    - Everything else (local llama.cpp, most others) takes ``max_tokens``.
    """
    if max_tokens is None:
        return {}
    if is_instance_of(llm, "langchain_google_genai", "ChatGoogleGenerativeAI") or is_instance_of(
        llm, "langchain_google_vertexai", "ChatVertexAI"
    ):
        return {"max_output_tokens": max_tokens}
    if is_instance_of(llm, "langchain_anthropic", "ChatAnthropic"):
        thinking = getattr(llm, "thinking", None) or {}
        if thinking.get("type") == "enabled":
            budget = max(1024, int(thinking.get("budget_tokens", 1024)))
            return {"max_tokens": budget + max_tokens}
        return {"max_tokens": max_tokens}
    if is_instance_of(llm, "langchain_ollama", "ChatOllama"):
        own = {k: v for k in OLLAMA_OPTIONS if (v := getattr(llm, k, None)) is not None}
        return {"options": {**own, "num_predict": max_tokens}}
    if is_instance_of(llm, "langchain_openai", "ChatOpenAI") and not serves_openai_itself(llm):
        extra = dict(getattr(llm, "extra_body", None) or {})
        return {"max_tokens": max_tokens, "extra_body": {**extra, "max_tokens": max_tokens}}
    return {"max_tokens": max_tokens}


def _tighter(given: Any, cap: Any) -> Any:
    if isinstance(given, int) and isinstance(cap, int):
        return min(given, cap)
    if isinstance(given, Mapping) and isinstance(cap, Mapping):
        return {**given, **{k: _tighter(given.get(k), v) for k, v in cap.items()}}
    return cap


def with_cap(kwargs: Mapping[str, Any], llm: Any, max_tokens: int | None) -> dict[str, Any]:
    """The caller's call kwargs with the cap added; a tighter cap the caller gave wins."""
    merged = dict(kwargs)
    for key, cap in cap_kwargs(llm, max_tokens).items():
        merged[key] = _tighter(merged.get(key), cap)
    if isinstance(merged.get("options"), Mapping) and "stop" in merged:
        # ChatOllama reads a call's stop words from options once options are given
        merged["options"] = {**merged["options"], "stop": merged.pop("stop")}
    return merged
