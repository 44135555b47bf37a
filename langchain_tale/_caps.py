"""Map a hard output cap to each provider's own parameter."""

from __future__ import annotations

from typing import Any


def cap_kwargs(llm: Any, max_tokens: int | None) -> dict[str, Any]:
    """Per-call kwargs that cap output at ``max_tokens`` for ``llm``'s provider.

    - Gemini (``ChatGoogleGenerativeAI``/``ChatVertexAI``) ignores a per-call ``max_tokens``:
      it takes ``max_output_tokens``.
    - Anthropic with extended thinking needs ``thinking.budget_tokens >= 1024`` and below
      ``max_tokens``: the cap is added on top of the thinking budget.
    - Everything else (OpenAI, local llama.cpp, most others) takes ``max_tokens``.
    """
    if max_tokens is None:
        return {}
    name = type(llm).__name__
    if name in ("ChatGoogleGenerativeAI", "ChatVertexAI"):
        return {"max_output_tokens": max_tokens}
    if name == "ChatAnthropic":
        thinking = getattr(llm, "thinking", None) or {}
        if thinking.get("type") == "enabled":
            budget = max(1024, int(thinking.get("budget_tokens", 1024)))
            return {"max_tokens": budget + max_tokens}
        return {"max_tokens": max_tokens}
    return {"max_tokens": max_tokens}
