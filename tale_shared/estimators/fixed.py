from __future__ import annotations

from tale_shared._validation import require_question
from tale_shared.budget import TokenBudget
from tale_shared.estimators.base import DEFAULT_MAX_TOKENS, BudgetEstimator


class FixedBudgetEstimator(BudgetEstimator):
    """The same budget for every question.

    Example:
        >>> FixedBudgetEstimator(100).estimate("What is 2+2?").tokens
        100
    """

    name = "fixed"

    def __init__(self, tokens: int, *, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
            raise ValueError(f"a fixed budget must be a positive integer, got {tokens!r}")
        if tokens > max_tokens:
            raise ValueError(f"a fixed budget of {tokens} exceeds max_tokens={max_tokens}")
        super().__init__(min_tokens=1, max_tokens=max_tokens, fallback_tokens=tokens)
        self.tokens = tokens

    def estimate(self, question: str) -> TokenBudget:
        require_question(question)
        return TokenBudget(tokens=self.tokens, estimator=self.name)

    @property
    def spec(self) -> str:
        return f"fixed:{self.tokens}"

    def __repr__(self) -> str:
        return f"FixedBudgetEstimator({self.tokens})"
