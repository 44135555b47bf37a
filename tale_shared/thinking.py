"""Reasoning models: the estimated budget through each provider's own thinking knob.

A reasoning model thinks before it answers, and every provider has a knob for how long; none
chooses the value per question. TALE's estimator does, so a method with ``+think`` (chosen
automatically for a reasoning model) sends the per-question — or, in an agent, per-step —
budget ``B`` through the knob, with room ``A`` for the visible answer above it
(:data:`ANSWER_TOKENS` unless the call's own cap says otherwise):

- **Anthropic** (``ChatAnthropic``, LlamaIndex ``Anthropic``): ``thinking.budget_tokens =
  max(1024, B)`` (the API's minimum is 1,024); ``max_tokens = budget_tokens + A``.
- **Bedrock Converse** (Claude): ``additionalModelRequestFields.thinking`` as Anthropic's;
  ``maxTokens = budget_tokens + A``.
- **Gemini 2.5**: ``thinking_budget = B`` clamped to the model's range (Pro 128-32,768, Flash
  0-24,576, Flash-Lite 512-24,576); ``max_output_tokens = B + A``.
- **Gemini 3** (levels): ``thinking_level`` ``low`` for B <= 1,024, else ``high``;
  ``max_output_tokens = B + A``.
- **OpenAI** (Chat Completions ``reasoning_effort``, Responses API ``reasoning.effort``):
  ``low`` for B <= 1,024, ``medium`` <= 4,096, ``high`` above; ``max_completion_tokens`` /
  ``max_output_tokens = B + A``.
- **Ollama**: ``think = True``; ``options.num_predict = B + A``.
- **llama.cpp ``<think>`` models** (embedded): budget forcing (s1) — the thinking is cut at B,
  closed, and the answer asked for; early exit when trial answers agree.

Why the OpenAI bands: effort is the only knob OpenAI offers, and the reasoning it buys is not
a fixed length. ``low`` is the smallest effort every reasoning model accepts (``minimal``
only on some) and is what a grade-school budget (the estimators give 40-300 tokens) needs;
competition problems get budgets of one to a few thousand tokens, which ``medium`` spends;
above 4,096 the question asks for more than ``medium`` typically thinks, so ``high``. The
cap ``B + A`` is sent too, so a reply cannot run past the budget by much whatever the
effort. The bands are :data:`OPENAI_EFFORT_BANDS`; pass ``effort_bands=`` to change them.

Reasoning tokens are counted apart from the visible answer in every record
(``TokenUsage.reasoning_tokens``, ``visible_output_tokens``); they are part of
``output_tokens`` and priced as output, as every provider bills them.

Example:
    >>> settings = thinking_settings("anthropic", 300)
    >>> settings.thinking_tokens, settings.max_output_tokens
    (1024, 2048)
    >>> thinking_settings("openai", 300).effort, thinking_settings("openai", 3000).effort
    ('low', 'medium')
    >>> thinking_settings("gemini", 50000, model="gemini-2.5-flash").thinking_tokens
    24576
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

ThinkingProvider = Literal["anthropic", "bedrock", "gemini", "openai", "ollama"]
PROVIDERS: tuple[ThinkingProvider, ...] = ("anthropic", "bedrock", "gemini", "openai", "ollama")

ANTHROPIC_MIN_BUDGET = 1024
"""Anthropic's (and Bedrock's Claude's) smallest ``budget_tokens``."""
ANSWER_TOKENS = 1024
"""Room for the visible answer above the thinking budget, when the call names no cap."""
OPENAI_EFFORT_BANDS: tuple[tuple[int, str], ...] = ((1024, "low"), (4096, "medium"))
"""``(up to B tokens, effort)``, in order; a larger budget gets ``high``."""
GEMINI_LEVEL_AT = 1024
"""Gemini models that take a level: ``low`` up to this budget, ``high`` above."""
GEMINI_BUDGET_RANGES: tuple[tuple[str, int, int], ...] = (
    ("flash-lite", 512, 24576),
    ("flash", 0, 24576),
    ("pro", 128, 32768),
)
"""``(name part, least, most)`` of ``thinking_budget`` per Gemini 2.5 model (first match)."""


@dataclass(frozen=True)
class ThinkingSettings:
    """What one call sends for a budget: the provider's knob and the output cap.

    ``thinking_tokens`` is the number sent as a thinking budget (Anthropic, Bedrock, Gemini
    2.5), ``effort`` the level sent instead (OpenAI effort, Gemini 3 level); Ollama takes
    neither, only ``think`` and the cap.
    """

    provider: ThinkingProvider
    budget: int
    thinking_tokens: int | None
    effort: str | None
    max_output_tokens: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def openai_effort(budget: int, bands: tuple[tuple[int, str], ...] = OPENAI_EFFORT_BANDS) -> str:
    """The reasoning effort whose band holds ``budget`` (see the module docstring).

    Examples:
        >>> [openai_effort(b) for b in (60, 1024, 1025, 4096, 9000)]
        ['low', 'low', 'medium', 'medium', 'high']
    """
    for most, effort in bands:
        if budget <= most:
            return effort
    return "high"


def gemini_takes_levels(model: str | None) -> bool:
    """Whether a Gemini model takes ``thinking_level`` (Gemini 3) rather than a budget.

    >>> gemini_takes_levels("gemini-3-pro-preview"), gemini_takes_levels("gemini-2.5-pro")
    (True, False)
    """
    name = (model or "").lower()
    return "gemini-3" in name or "gemini-4" in name


def _gemini_range(model: str | None) -> tuple[int, int]:
    name = (model or "").lower()
    for part, least, most in GEMINI_BUDGET_RANGES:
        if part in name:
            return least, most
    return 0, 24576


def thinking_settings(
    provider: ThinkingProvider,
    budget: int,
    *,
    model: str | None = None,
    answer_tokens: int | None = None,
    effort_bands: tuple[tuple[int, str], ...] = OPENAI_EFFORT_BANDS,
) -> ThinkingSettings:
    """The knob and cap ``provider`` gets for a budget of ``budget`` tokens (``model``: which
    Gemini model, for its range or levels). ``answer_tokens`` is the room for the visible
    answer above the thinking (default :data:`ANSWER_TOKENS`)."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"a thinking budget must be a whole number of at least 1, got {budget}")
    room = ANSWER_TOKENS if answer_tokens is None else answer_tokens
    if room < 1:
        raise ValueError(f"answer_tokens must be at least 1, got {room}")
    if provider in ("anthropic", "bedrock"):
        tokens = max(ANTHROPIC_MIN_BUDGET, budget)
        return ThinkingSettings(provider, budget, tokens, None, tokens + room)
    if provider == "gemini":
        if gemini_takes_levels(model):
            level = "low" if budget <= GEMINI_LEVEL_AT else "high"
            return ThinkingSettings(provider, budget, None, level, budget + room)
        least, most = _gemini_range(model)
        tokens = min(most, max(least, budget))
        return ThinkingSettings(provider, budget, tokens, None, tokens + room)
    if provider == "openai":
        effort = openai_effort(budget, effort_bands)
        return ThinkingSettings(provider, budget, None, effort, budget + room)
    if provider == "ollama":
        return ThinkingSettings(provider, budget, None, None, budget + room)
    raise ValueError(f"no thinking knob is known for {provider!r}: one of {', '.join(PROVIDERS)}")


_ALWAYS_THINK: dict[str, re.Pattern[str]] = {
    "openai": re.compile(r"^(o\d|gpt-5|gpt-oss)", re.I),  # o1, o3, o4-mini, gpt-5, gpt-oss
    "gemini": re.compile(r"gemini-(2\.5|[3-9])", re.I),  # Gemini 2.5 and later
}


def thinks_by_name(provider: ThinkingProvider | None, model: str | None) -> bool:
    """Whether ``model`` of ``provider`` always thinks, by its name alone (OpenAI's
    o-series, gpt-5 and gpt-oss; Gemini 2.5 and later) — what both adapters ask before the
    settings a user switched thinking on with.

    >>> thinks_by_name("openai", "o4-mini"), thinks_by_name("gemini", "gemini-2.0-flash")
    (True, False)
    """
    pattern = _ALWAYS_THINK.get(provider or "")
    return bool(pattern and model and pattern.search(model))


THINK_CLOSE = "</think>"
"""How a llama.cpp reasoning model (DeepSeek-R1 distills, QwQ, Qwen3) ends its thinking."""

__all__ = [
    "ANSWER_TOKENS",
    "OPENAI_EFFORT_BANDS",
    "PROVIDERS",
    "THINK_CLOSE",
    "ThinkingProvider",
    "ThinkingSettings",
    "gemini_takes_levels",
    "openai_effort",
    "thinking_settings",
    "thinks_by_name",
]
