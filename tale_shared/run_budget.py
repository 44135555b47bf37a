"""A total budget for a multi-step run (an agent), and what happens when it is spent.

Both adapters' agent hooks — LangChain's ``TaleBudgetMiddleware`` and LlamaIndex's
``TaleLLM`` — count real usage into a :class:`RunSpending` and ask a :class:`RunBudget`
before each model call.

Example:
    >>> budget = RunBudget(total_tokens=1000, exit_behavior="end")
    >>> spent = RunSpending().add(tokens=1200, cost_usd=0.001)
    >>> budget.check(spent)
    "Stopped: the agent's token budget spent (1200/1000 tokens)."
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tale_shared.pricing import PriceTable
    from tale_shared.usage import TokenUsage

ExitBehavior = Literal["end", "error", "warn"]


class UnpricedModelWarning(UserWarning):
    """A USD budget meets a model whose price is unknown: the USD total is not enforced."""


class TaleBudgetExceededError(RuntimeError):
    """The run spent its total token or USD budget (``exit_behavior="error"``)."""

    def __init__(self, message: str, tokens: int, cost_usd: float | None) -> None:
        super().__init__(message)
        self.tokens = tokens
        self.cost_usd = cost_usd


@dataclass(frozen=True)
class RunSpending:
    """Tokens and USD a run has spent; ``cost_usd`` is ``None`` once any price was unknown."""

    tokens: int = 0
    cost_usd: float | None = 0.0
    steps: int = 0

    def add(self, tokens: int, cost_usd: float | None, *, step: bool = True) -> RunSpending:
        """Spending after one more call; ``step=False`` for a call that is not an agent step
        of its own (a step's estimator call)."""
        cost = None if cost_usd is None or self.cost_usd is None else self.cost_usd + cost_usd
        return RunSpending(self.tokens + tokens, cost, self.steps + int(step))


@dataclass(frozen=True)
class StepRecord:
    """One agent step: the budget it was given (``None``: none), its output tokens and how
    many tools it called."""

    budget: int | None
    output_tokens: int
    tool_calls: int


class RunLedger:
    """What one run has spent so far, shared by every call of the run (and the threads and
    tasks it spawns): adds and reads happen under a lock.

    Example:
        >>> ledger = RunLedger()
        >>> ledger.add(120, 0.001).tokens
        120
        >>> ledger.spent.steps
        1
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spent = RunSpending()
        self._steps: list[StepRecord] = []

    def record_step(self, step: StepRecord) -> None:
        """Note what one agent step got and did (an adapter calls this after each step)."""
        with self._lock:
            self._steps.append(step)

    @property
    def steps(self) -> list[StepRecord]:
        """Each step of the run: its budget, output tokens and tool calls, in order."""
        with self._lock:
            return list(self._steps)

    @property
    def spent(self) -> RunSpending:
        with self._lock:
            return self._spent

    def add(self, tokens: int, cost_usd: float | None, *, step: bool = True) -> RunSpending:
        """Add one call's tokens and cost; returns the spending after it."""
        with self._lock:
            self._spent = self._spent.add(tokens, cost_usd, step=step)
            return self._spent

    def reset(self) -> None:
        with self._lock:
            self._spent = RunSpending()
            self._steps = []


@dataclass(frozen=True)
class RunBudget:
    """A total in tokens and/or USD, and the policy when it is spent.

    A USD total can only be enforced for models whose price is known. A call to a model with
    no price makes the run's cost unknown: :meth:`warn_if_unpriced` then warns (once per
    model) that ``total_usd`` is no longer enforced, and says how to give the price. The
    token total, if any, still holds.
    """

    total_tokens: int | None = None
    total_usd: float | None = None
    exit_behavior: ExitBehavior = "end"
    _warned: set[str] = field(default_factory=set, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.exit_behavior not in ("end", "error", "warn"):
            raise ValueError(
                f"exit_behavior must be 'end', 'error' or 'warn', not {self.exit_behavior!r}"
            )
        if self.total_tokens is not None and (
            isinstance(self.total_tokens, bool)
            or not isinstance(self.total_tokens, int)
            or self.total_tokens < 1
        ):
            raise ValueError(f"total_tokens must be a positive integer, not {self.total_tokens!r}")
        if self.total_usd is not None and not (
            isinstance(self.total_usd, (int, float))
            and math.isfinite(self.total_usd)
            and self.total_usd > 0
        ):
            # NaN compares False with everything: it would be accepted and never enforced
            raise ValueError(f"total_usd must be a positive finite number, not {self.total_usd!r}")

    def exhausted(self, spent: RunSpending) -> str | None:
        """Why the budget is spent, or ``None`` while it is not."""
        if self.total_tokens is not None and spent.tokens >= self.total_tokens:
            return f"token budget spent ({spent.tokens}/{self.total_tokens} tokens)"
        if (
            self.total_usd is not None
            and spent.cost_usd is not None
            and (spent.cost_usd >= self.total_usd)
        ):
            return f"USD budget spent (${spent.cost_usd:.6f}/${self.total_usd:.6f})"
        return None

    def check(self, spent: RunSpending) -> str | None:
        """Apply the policy before a model call: ``None`` to go on, else the message to end
        the run with. Raises :class:`TaleBudgetExceededError` for ``"error"``; warns and
        returns ``None`` for ``"warn"``."""
        reason = self.exhausted(spent)
        if reason is None:
            return None
        message = f"Stopped: the agent's {reason}."
        if self.exit_behavior == "error":
            raise TaleBudgetExceededError(message, spent.tokens, spent.cost_usd)
        if self.exit_behavior == "warn":
            warnings.warn(message, stacklevel=3)
            return None
        return message

    def price(self, prices: PriceTable, model: str | None, usage: TokenUsage) -> float | None:
        """What one call cost (``None``: unknown), with :meth:`warn_if_unpriced`'s warning
        when a USD total cannot be enforced — how every agent adapter prices a call."""
        cost = prices.cost(model, usage)
        self.warn_if_unpriced(model, cost)
        return cost

    def warn_if_unpriced(self, model: str | None, cost_usd: float | None) -> None:
        """Warn once per model when a USD total is set but this call's price is unknown."""
        if self.total_usd is None or cost_usd is not None:
            return
        name = model or "an unnamed model"
        with self._lock:
            if name in self._warned:
                return
            self._warned.add(name)
        warnings.warn(
            f"total_usd={self.total_usd} cannot be enforced: no price is known for {name}, "
            "so the run's cost is unknown (only total_tokens still holds). Give its price "
            "with PriceTable(overrides=...) and pass price_table=.",
            UnpricedModelWarning,
            stacklevel=3,
        )

    def tracker_sentence(self, spent: RunSpending) -> str | None:
        """The Budget Tracker's line (Liu et al. 2025, *Budget-Aware Tool-Use Enables
        Effective Agent Scaling*): what is left of the run's token total, stated to the agent
        at every step; ``None`` without a token total.

        >>> RunBudget(total_tokens=2000).tracker_sentence(RunSpending(tokens=500, steps=2))
        'Budget: 1500 of 2000 tokens left for this task (2 steps taken).'
        """
        if self.total_tokens is None:
            return None
        left = max(0, self.total_tokens - spent.tokens)
        steps = "1 step" if spent.steps == 1 else f"{spent.steps} steps"
        return f"Budget: {left} of {self.total_tokens} tokens left for this task ({steps} taken)."

    def step_cap(self, estimate: int, spent: RunSpending) -> int:
        """A step's budget: the estimate, but no more than the tokens left (at least 1)."""
        if self.total_tokens is None:
            return estimate
        return max(1, min(estimate, self.total_tokens - spent.tokens))
