"""Training the regression estimator on optimal-budget search results, and comparing
estimators on the same items."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tale_shared.estimators import BudgetEstimator, HeuristicEstimator, RegressionEstimator
from tale_shared.models import ChatModel
from tale_shared.research._tables import markdown_table
from tale_shared.research.search import SearchResult, load_results


def training_pairs(results: Sequence[SearchResult]) -> list[SearchResult]:
    """Items with an optimal budget (vanilla correct and a feasible budget found)."""
    return [r for r in results if r.error is None and r.optimal_budget is not None]


def in_range(prediction: float, result: SearchResult) -> bool:
    """Whether a budget is inside the item's feasible range: at least the optimal budget and
    at most the vanilla answer's tokens (the search's upper bound)."""
    assert result.optimal_budget is not None and result.vanilla_tokens is not None
    return result.optimal_budget <= prediction <= max(result.vanilla_tokens, result.optimal_budget)


def _scores(predictions: Sequence[float], rows: Sequence[SearchResult]) -> dict[str, float]:
    errors = [abs(p - (r.optimal_budget or 0)) for p, r in zip(predictions, rows, strict=True)]
    return {
        "mae": float(statistics.mean(errors)),
        "median_abs_error": float(statistics.median(errors)),
        "in_feasible_range": sum(in_range(p, r) for p, r in zip(predictions, rows, strict=True))
        / len(rows),
        "mean_prediction": float(statistics.mean(predictions)),
    }


def cross_validate(
    rows: Sequence[SearchResult], folds: int = 5, seed: int = 0, *, constant: bool = False
) -> dict[str, float]:
    """K-fold cross-validated scores of the regression estimator (predictions clamped).

    With ``constant=True`` the same folds score the baseline any estimator must beat: the
    training folds' median optimal budget for every question.
    """
    if len(rows) < folds * 2:
        raise ValueError(f"{len(rows)} items with an optimal budget: too few for {folds} folds")
    order = [int(i) for i in np.random.default_rng(seed).permutation(len(rows))]
    predictions: dict[int, float] = {}
    for k in range(folds):
        test = set(order[k::folds])
        train = [i for i in order if i not in test]
        budgets = [rows[i].optimal_budget or 1 for i in train]
        if constant:
            median = float(statistics.median(budgets))
            predictions.update((i, median) for i in test)
            continue
        est = RegressionEstimator().fit([rows[i].question for i in train], budgets)
        predictions.update((i, est.estimate(rows[i].question).tokens) for i in test)
    return _scores([predictions[i] for i in range(len(rows))], rows)


def train_from_search(
    runs: str | Path, *, folds: int = 5, metadata: dict[str, Any] | None = None
) -> tuple[RegressionEstimator, dict[str, Any]]:
    """Fit on every item with an optimal budget; report cross-validated scores."""
    rows = training_pairs(load_results(runs))
    folds = min(folds, len(rows) // 2)  # few items: fewer folds, each with two or more
    if folds < 2:
        raise ValueError(f"{len(rows)} items with an optimal budget: too few to cross-validate")
    report: dict[str, Any] = {
        "items": len(rows),
        "folds": folds,
        "cv": cross_validate(rows, folds=folds),
        "cv_constant_median": cross_validate(rows, folds=folds, constant=True),
    }
    models = sorted({r.model for r in rows})
    estimator = RegressionEstimator().fit(
        [r.question for r in rows],
        [r.optimal_budget or 1 for r in rows],
        metadata={
            "trained_on": str(runs),
            "models": models,
            "cv": report["cv"],
            "cv_constant_median": report["cv_constant_median"],
            **(metadata or {}),
        },
    )
    return estimator, report


def evaluate(estimator: BudgetEstimator, rows: Sequence[SearchResult]) -> dict[str, float]:
    """Scores of any estimator on search results (its model calls included in the tokens)."""
    from tqdm.auto import tqdm

    name = type(estimator).__name__
    budgets = [estimator.estimate(r.question) for r in tqdm(rows, desc=name, leave=False)]
    scores = _scores([b.tokens for b in budgets], rows)
    scores["estimator_tokens_per_item"] = statistics.mean(b.usage.total_tokens for b in budgets)
    scores["fallbacks"] = sum(b.fell_back for b in budgets)
    return scores


def compare_estimators(
    runs: str | Path,
    *,
    estimator_report: dict[str, Any] | None = None,
    zero_shot_model: ChatModel | None = None,
) -> str:
    """A Markdown table: regression (cross-validated) vs heuristic vs zero-shot, same items."""
    from tale_shared.estimators import ZeroShotEstimator

    rows = training_pairs(load_results(runs))
    table = {"heuristic": evaluate(HeuristicEstimator(), rows)}
    if estimator_report is not None:
        folds = estimator_report.get("folds", 5)
        table[f"regression ({folds}-fold CV)"] = estimator_report["cv"]
        if "cv_constant_median" in estimator_report:
            table[f"constant: training median ({folds}-fold CV)"] = estimator_report[
                "cv_constant_median"
            ]
    if zero_shot_model is not None:
        table["zero-shot"] = evaluate(ZeroShotEstimator(zero_shot_model), rows)
    body = markdown_table(
        ["estimator", "MAE", "in feasible range", "mean budget", "estimator tokens/item"],
        (
            [
                name,
                f"{s['mae']:.1f}",
                f"{s['in_feasible_range']:.0%}",
                f"{s['mean_prediction']:.0f}",
                f"{s.get('estimator_tokens_per_item', 0):.1f}",
            ]
            for name, s in table.items()
        ),
    )
    return f"{len(rows)} items with an optimal budget\n{body}"
