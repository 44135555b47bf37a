"""The thinking knob of each LlamaIndex reasoning LLM, set from a budget: a copy of the LLM
with its thinking field and output cap (LlamaIndex LLMs fix both at construction, as
:func:`~llama_index_tale.llm_adapter.with_max_tokens` does for the cap)."""

from __future__ import annotations

from typing import Any

from llama_index.core.llms import LLM

from tale_shared._optional import is_instance_of
from tale_shared.thinking import (
    ThinkingProvider,
    ThinkingSettings,
    thinking_settings,
    thinks_by_name,
)


def thinking_provider(llm: Any) -> ThinkingProvider | None:
    """Which thinking knob ``llm``'s class has (LlamaIndex's Anthropic, OpenAI, GoogleGenAI),
    or ``None``."""
    if is_instance_of(llm, "llama_index.llms.anthropic", "Anthropic"):
        return "anthropic"
    if is_instance_of(llm, "llama_index.llms.google_genai", "GoogleGenAI"):
        return "gemini"
    if is_instance_of(llm, "llama_index.llms.openai", "OpenAI"):
        return "openai"
    return None


def _model(llm: Any) -> str:
    value = getattr(llm, "model", None)
    return value if isinstance(value, str) else ""


def is_reasoning_model(llm: Any) -> bool:
    """Whether ``llm`` thinks before answering: Claude with ``thinking_dict`` enabled, an
    OpenAI reasoning model (or one given a ``reasoning_effort``), Gemini 2.5 and later."""
    provider = thinking_provider(llm)
    if provider == "anthropic":
        return (getattr(llm, "thinking_dict", None) or {}).get("type") == "enabled"
    if provider == "openai":
        return bool(getattr(llm, "reasoning_effort", None)) or thinks_by_name(provider, _model(llm))
    if provider == "gemini":
        return thinks_by_name(provider, _model(llm))
    return False


def settings_for(llm: Any, budget: int, answer_tokens: int | None = None) -> ThinkingSettings:
    provider = thinking_provider(llm)
    if provider is None:
        raise ValueError(
            f"{type(llm).__name__} has no thinking knob tale knows (LlamaIndex's Anthropic, "
            "OpenAI, GoogleGenAI): drop +think, or state the budget in the prompt"
        )
    return thinking_settings(provider, budget, model=_model(llm), answer_tokens=answer_tokens)


def with_thinking(llm: LLM, settings: ThinkingSettings) -> LLM:
    """A copy of ``llm`` whose calls send ``settings``: the knob and the output cap."""
    cap = settings.max_output_tokens
    if settings.provider == "anthropic":
        thinking = {"type": "enabled", "budget_tokens": settings.thinking_tokens}
        return llm.model_copy(update={"thinking_dict": thinking, "max_tokens": cap})
    if settings.provider == "openai":
        return llm.model_copy(update={"reasoning_effort": settings.effort, "max_tokens": cap})
    if settings.provider == "gemini":
        knob = (
            {"thinking_level": settings.effort}
            if settings.effort is not None
            else {"thinking_budget": settings.thinking_tokens}
        )
        clone = llm.model_copy()
        config = dict(getattr(llm, "_generation_config", None) or {})
        config.update(thinking_config=knob, max_output_tokens=cap)
        clone._generation_config = config  # type: ignore[attr-defined]
        clone._max_tokens = cap  # type: ignore[attr-defined]
        return clone
    raise ValueError(f"no LlamaIndex thinking knob for {settings.provider}")
