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

from pathlib import Path

from tale_shared.estimators.base import (
    DEFAULT_FALLBACK_TOKENS,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MIN_TOKENS,
    BudgetEstimator,
)
from tale_shared.estimators.fixed import FixedBudgetEstimator
from tale_shared.estimators.heuristic import HeuristicEstimator, question_features
from tale_shared.estimators.regression import EstimatorFileError, RegressionEstimator
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
    "FixedBudgetEstimator",
    "HeuristicEstimator",
    "RegressionEstimator",
    "ZeroShotEstimator",
    "make_estimator",
    "parse_budget_reply",
    "question_features",
]


def make_estimator(spec: str, model: ChatModel | None = None) -> BudgetEstimator:
    """Build an estimator from a short spec, as the CLI takes it.

    ``"fixed:200"``, ``"heuristic"``, ``"zero-shot"`` (needs ``model``),
    ``"regression:PATH"``, or ``"regression"`` for the packaged default.
    """
    name, _, arg = spec.partition(":")
    name = name.strip().lower().replace("_", "-")
    if name == "fixed":
        try:
            return FixedBudgetEstimator(int(arg))
        except ValueError:
            raise ValueError(f"use fixed:N with a positive integer N, got {spec!r}") from None
    if name == "heuristic":
        return HeuristicEstimator()
    if name in ("zero-shot", "zeroshot"):
        if model is None:
            raise ValueError("the zero-shot estimator needs a model")
        return ZeroShotEstimator(model)
    if name == "regression":
        if arg:
            return RegressionEstimator.load(Path(arg))
        from tale_shared.profiles import default_regression_estimator

        return default_regression_estimator()
    raise ValueError(
        f"unknown estimator {spec!r}: use fixed:N, heuristic, zero-shot or regression[:PATH]"
    )
