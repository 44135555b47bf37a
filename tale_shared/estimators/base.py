"""The one interface every budget estimator implements."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

from tale_shared.budget import TokenBudget

DEFAULT_MIN_TOKENS = 32
DEFAULT_MAX_TOKENS = 2048
DEFAULT_FALLBACK_TOKENS = 256
"""The budget an estimator falls back to when it cannot produce one (documented in the README)."""


class BudgetEstimator(ABC):
    """Maps a question to a :class:`~tale_shared.budget.TokenBudget`.

    Every budget is clamped to ``[min_tokens, max_tokens]``; an estimator that cannot produce
    a number uses ``fallback_tokens`` and says why in ``TokenBudget.fallback_reason``.
    Subclasses implement :meth:`estimate`; :meth:`aestimate` defaults to it, which suits
    estimators that make no I/O (override it when the estimator calls a model).
    """

    name: str = "estimator"

    def __init__(
        self,
        *,
        min_tokens: int = DEFAULT_MIN_TOKENS,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        fallback_tokens: int = DEFAULT_FALLBACK_TOKENS,
    ) -> None:
        if min_tokens < 1:
            raise ValueError(f"min_tokens must be at least 1, got {min_tokens}")
        if max_tokens < min_tokens:
            raise ValueError(f"max_tokens ({max_tokens}) is below min_tokens ({min_tokens})")
        self.min_tokens = min_tokens
        self.max_tokens = max_tokens
        self.fallback_tokens = self.clamp(fallback_tokens)

    def clamp(self, tokens: float) -> int:
        """Round ``tokens`` and clamp it to ``[min_tokens, max_tokens]``."""
        if not math.isfinite(tokens):
            return self.max_tokens
        return int(min(self.max_tokens, max(self.min_tokens, round(tokens))))

    @property
    def spec(self) -> str | None:
        """The spec string that rebuilds this estimator (``make_estimator(spec)``), or
        ``None`` when there is none (a custom estimator, an unsaved fit)."""
        return None

    @abstractmethod
    def estimate(self, question: str) -> TokenBudget:
        """The budget for ``question``. Raises ``ValueError`` for an empty question."""

    async def aestimate(self, question: str) -> TokenBudget:
        """Async :meth:`estimate`."""
        return self.estimate(question)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_tokens={self.min_tokens}, max_tokens={self.max_tokens})"
