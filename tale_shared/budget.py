"""The token budget one question gets, and who decided it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tale_shared.usage import TokenUsage


class TokenBudget(BaseModel):
    """A token budget for one question.

    Attributes:
        tokens: the budget, always a positive integer inside the estimator's bounds.
        estimator: the name of the estimator that produced it.
        usage: the estimator's own token usage (zero for estimators that call no model).
        fallback_reason: why the estimator fell back to its default, if it did (for example
            the model's reply held no number).
        raw_reply: the estimator model's reply text, when there was one.

    Example:
        >>> TokenBudget(tokens=120, estimator="fixed").tokens
        120
    """

    model_config = ConfigDict(frozen=True)

    tokens: int = Field(ge=1)
    estimator: str
    usage: TokenUsage = Field(default_factory=TokenUsage)
    fallback_reason: str | None = None
    raw_reply: str | None = None
    latency_s: float = Field(default=0.0, ge=0)
    model: str | None = None
    cap: int | None = Field(default=None, ge=1)
    """The output cap the estimator's model call was sent with (``None``: no call, or
    uncapped)."""

    @property
    def fell_back(self) -> bool:
        return self.fallback_reason is not None


def budget_metadata(method: str, budget: TokenBudget | None, style: str) -> dict[str, Any]:
    """What a reply says of its budget, the same in both adapters (LangChain's
    ``response_metadata["tale"]``, LlamaIndex's ``metadata["tale"]``).

    >>> budget = TokenBudget(tokens=50, estimator="fixed")
    >>> budget_metadata("tale-fixed:50@paper", budget, "paper")["budget"]
    50
    """
    return {
        "method": method,
        "budget": budget.tokens if budget else None,
        "estimator": budget.estimator if budget else None,
        "style": style,
        "estimator_usage": budget.usage.model_dump() if budget else None,
        "fallback_reason": budget.fallback_reason if budget else None,
    }
