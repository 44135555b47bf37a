"""Budget estimators: one interface (``estimate`` / ``aestimate``), four ways to get a budget.

=================== ================================================= ===================
estimator           how                                               model calls
=================== ================================================= ===================
FixedBudgetEstimator the same budget for every question               none
HeuristicEstimator  features of the question (quantities, operations) none (microseconds)
ZeroShotEstimator   the paper's prompt sent to a model                one per question
RegressionEstimator learned from optimal-budget search results        none
=================== ================================================= ===================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tale_shared.estimators.base import (
    DEFAULT_FALLBACK_TOKENS,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MIN_TOKENS,
    BudgetEstimator,
)
from tale_shared.estimators.fixed import FixedBudgetEstimator
from tale_shared.estimators.heuristic import HeuristicEstimator, question_features
from tale_shared.estimators.regression import (
    EstimatorFileError,
    RegressionEstimator,
    default_regression_estimator,
)
from tale_shared.estimators.zero_shot import (
    ESTIMATOR_PROMPT,
    ZeroShotEstimator,
    parse_budget_reply,
)
from tale_shared.models import ChatModel

__all__ = [
    "DEFAULT_FALLBACK_TOKENS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MIN_TOKENS",
    "ESTIMATOR_PROMPT",
    "BudgetEstimator",
    "EstimatorFileError",
    "EstimatorSlot",
    "FixedBudgetEstimator",
    "HeuristicEstimator",
    "RegressionEstimator",
    "ZeroShotEstimator",
    "make_estimator",
    "parse_budget_reply",
    "parse_estimator_spec",
    "question_features",
    "resolve_estimator",
]


ESTIMATOR_NAMES = ("fixed", "heuristic", "zero-shot", "regression")


def parse_estimator_spec(spec: str) -> tuple[str, str]:
    """``(name, argument)`` of an estimator spec, checked without building anything — so a
    command can refuse a bad spec before it loads a model.

    >>> parse_estimator_spec("fixed:200")
    ('fixed', '200')
    >>> parse_estimator_spec("Zero_Shot")
    ('zero-shot', '')
    """
    name, _, arg = spec.partition(":")
    name = name.strip().lower().replace("_", "-")
    if name == "zeroshot":
        name = "zero-shot"
    if name not in ESTIMATOR_NAMES:
        raise ValueError(
            f"unknown estimator {spec!r}: use fixed:N, heuristic, zero-shot or regression[:PATH]"
        )
    if name == "fixed":
        try:
            if int(arg) < 1:
                raise ValueError
        except ValueError:
            raise ValueError(f"use fixed:N with a positive integer N, got {spec!r}") from None
    if name == "regression" and arg and not Path(arg).is_file():
        raise ValueError(f"no regression estimator file at {arg!r}")
    return name, arg


def make_estimator(spec: str, model: ChatModel | None = None) -> BudgetEstimator:
    """Build an estimator from a short spec, as the CLI takes it.

    ``"fixed:200"``, ``"heuristic"``, ``"zero-shot"`` (needs ``model``),
    ``"regression:PATH"``, or ``"regression"`` for the packaged default.
    """
    name, arg = parse_estimator_spec(spec)
    if name == "fixed":
        return FixedBudgetEstimator(int(arg))
    if name == "heuristic":
        return HeuristicEstimator()
    if name == "zero-shot":
        if model is None:
            raise ValueError("the zero-shot estimator needs a model")
        return ZeroShotEstimator(model)
    if arg:
        return RegressionEstimator.load(Path(arg))
    return default_regression_estimator()


@dataclass(frozen=True)
class EstimatorSlot:
    """An estimator as an adapter holds it: resolved once, at construction.

    A spec that needs no model is built by :func:`resolve_estimator` (the regression file is
    read and checked once, not per call); ``"zero-shot"`` is bound at call time with
    :meth:`bind`, because its model call belongs to the caller's run (a LangChain config, a
    LlamaIndex span) and uses the caller's model. An empty slot means a method without a
    budget (vanilla, direct, chain-of-draft).

    Example:
        >>> slot = resolve_estimator("fixed:120")
        >>> slot.bind(lambda: None).estimate("What is 2 + 2?").tokens
        120
        >>> resolve_estimator("zero-shot").zero_shot
        True
    """

    estimator: BudgetEstimator | None = None
    zero_shot: bool = False

    @property
    def spec(self) -> str | None:
        """The spec string it serialises as (``None`` when empty)."""
        if self.zero_shot:
            return "zero-shot"
        if self.estimator is None:
            return None
        return self.estimator.spec or self.estimator.name

    def bind(
        self, model: Callable[[], ChatModel | None], **zero_shot_options: Any
    ) -> BudgetEstimator | None:
        """The estimator for one call: ``model()`` is only asked for by ``"zero-shot"``."""
        if not self.zero_shot:
            return self.estimator
        chat_model = model()
        if chat_model is None:
            raise ValueError("the zero-shot estimator needs a model")
        return ZeroShotEstimator(chat_model, **zero_shot_options)


def resolve_estimator(estimator: BudgetEstimator | str | None) -> EstimatorSlot:
    """The one place an adapter turns its ``estimator=`` argument into an estimator.

    An estimator object is used as it is; a spec string is checked and, unless it is
    ``"zero-shot"``, built now; ``None`` gives an empty slot (no budget).
    """
    if estimator is None:
        return EstimatorSlot()
    if isinstance(estimator, BudgetEstimator):
        return EstimatorSlot(estimator)
    if not isinstance(estimator, str):
        raise TypeError(
            f"estimator must be a tale estimator or a spec string, got {type(estimator).__name__}"
        )
    if parse_estimator_spec(estimator)[0] == "zero-shot":
        return EstimatorSlot(zero_shot=True)
    return EstimatorSlot(make_estimator(estimator))
