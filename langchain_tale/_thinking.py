"""The thinking knob of each LangChain reasoning model, set from a budget.

Providers are told apart by class (looked up in modules already imported, as
:mod:`langchain_tale._caps` does). :func:`thinking_kwargs` turns the core's
:class:`~tale_shared.thinking.ThinkingSettings` into the per-call kwargs each class sends.
"""

from __future__ import annotations

from typing import Any

from langchain_tale._caps import OLLAMA_OPTIONS
from tale_shared._optional import is_instance_of
from tale_shared.thinking import (
    ThinkingProvider,
    ThinkingSettings,
    thinking_settings,
    thinks_by_name,
)


def thinking_provider(llm: Any) -> ThinkingProvider | None:
    """Which thinking knob ``llm``'s class has, or ``None`` (no known knob)."""
    if is_instance_of(llm, "langchain_anthropic", "ChatAnthropic"):
        return "anthropic"
    if is_instance_of(llm, "langchain_aws", "ChatBedrockConverse"):
        return "bedrock"
    if is_instance_of(llm, "langchain_google_genai", "ChatGoogleGenerativeAI") or is_instance_of(
        llm, "langchain_google_vertexai", "ChatVertexAI"
    ):
        return "gemini"
    if is_instance_of(llm, "langchain_openai", "ChatOpenAI"):
        return "openai"
    if is_instance_of(llm, "langchain_ollama", "ChatOllama"):
        return "ollama"
    return None


def _model(llm: Any) -> str:
    for attr in ("model_name", "model", "model_id"):
        value = getattr(llm, attr, None)
        if isinstance(value, str):
            return value
    return ""


def is_reasoning_model(llm: Any) -> bool:
    """Whether ``llm`` thinks before it answers: a model that always does (OpenAI's o-series
    and gpt-5, Gemini 2.5 and later), or one whose thinking its user switched on (Claude's
    ``thinking``, Bedrock's thinking request fields, Ollama's ``reasoning``)."""
    provider = thinking_provider(llm)
    if provider == "anthropic":
        thinking = getattr(llm, "thinking", None) or {}
        return thinking.get("type") in ("enabled", "adaptive")
    if provider == "bedrock":
        fields = getattr(llm, "additional_model_request_fields", None) or {}
        return isinstance(fields.get("thinking"), dict)
    if provider == "gemini":
        return thinks_by_name(provider, _model(llm))
    if provider == "openai":
        effort = getattr(llm, "reasoning_effort", None) or getattr(llm, "reasoning", None)
        return bool(effort) or thinks_by_name(provider, _model(llm))
    if provider == "ollama":
        return bool(getattr(llm, "reasoning", None))
    return False


def settings_for(llm: Any, budget: int, answer_tokens: int | None = None) -> ThinkingSettings:
    """The core's settings for ``llm``'s provider; ``ValueError`` for a model with no knob."""
    provider = thinking_provider(llm)
    if provider is None:
        raise ValueError(
            f"{type(llm).__name__} has no thinking knob tale knows (Anthropic, Bedrock "
            "Converse, Gemini, OpenAI, Ollama): drop +think, or state the budget in the prompt"
        )
    return thinking_settings(provider, budget, model=_model(llm), answer_tokens=answer_tokens)


def thinking_kwargs(llm: Any, settings: ThinkingSettings) -> dict[str, Any]:
    """The per-call kwargs that send ``settings`` through ``llm``'s class."""
    cap = settings.max_output_tokens
    thinking = {"type": "enabled", "budget_tokens": settings.thinking_tokens}
    if settings.provider == "anthropic":
        return {"thinking": thinking, "max_tokens": cap}
    if settings.provider == "bedrock":
        own = dict(getattr(llm, "additional_model_request_fields", None) or {})
        return {"additional_model_request_fields": {**own, "thinking": thinking}, "max_tokens": cap}
    if settings.provider == "gemini":
        knob = (
            {"thinking_level": settings.effort}
            if settings.effort is not None
            else {"thinking_budget": settings.thinking_tokens}
        )
        return {**knob, "max_output_tokens": cap}
    if settings.provider == "openai":
        if getattr(llm, "use_responses_api", None):
            reasoning = dict(getattr(llm, "reasoning", None) or {})
            return {"reasoning": {**reasoning, "effort": settings.effort}, "max_tokens": cap}
        return {"reasoning_effort": settings.effort, "max_tokens": cap}
    own = {k: v for k in OLLAMA_OPTIONS if (v := getattr(llm, k, None)) is not None}
    return {"reasoning": True, "options": {**own, "num_predict": cap}}


def with_thinking(
    kwargs: dict[str, Any], llm: Any, budget: int, answer_tokens: int | None = None
) -> tuple[dict[str, Any], ThinkingSettings, Any]:
    """The caller's call kwargs with the thinking knob and cap for ``budget`` added (what the
    caller set itself wins), the settings sent, and the model to call: ``llm`` itself, or a
    copy when ``llm``'s own thinking field would replace a per-call one (``ChatAnthropic``
    sends its ``thinking`` field over the call's)."""
    settings = settings_for(llm, budget, answer_tokens)
    extra = thinking_kwargs(llm, settings)
    model = llm
    if settings.provider == "anthropic" and getattr(llm, "thinking", None) is not None:
        model = llm.model_copy(update={"thinking": extra.pop("thinking")})
    return {**extra, **kwargs}, settings, model
