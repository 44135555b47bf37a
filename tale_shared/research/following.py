"""Does a model follow a stated budget? Token elasticity over many items, from bench rows.

Run ``tale bench`` with fixed budgets in one style (``--methods
tale-fixed:25@system,tale-fixed:50@system,tale-fixed:100@system,tale-fixed:200@system``) on
each model, then read the rows here: per model, the Spearman rank correlation between the
stated budget and the output tokens over every (item, budget) answer, and per budget the
median of output tokens / budget. A model that follows budgets has a clearly positive
correlation and medians near 1; one that ignores them answers the same length at 25 as at
200 (correlation near 0, medians falling as the budget grows).

Example:
    >>> rows = [BenchRow(method=f"tale-fixed:{b}@system", id=str(i), budget=b,
    ...                  output_tokens=b + i, model="m") for b in (25, 50, 100) for i in (1, 2)]
    >>> f = budget_following(rows)["m"]
    >>> round(f.spearman, 2), f.median_ratio[25]
    (0.96, 1.06)
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tale_shared.research.bench import BenchRow

_FIXED = re.compile(r"^tale-fixed:(\d+)@")


@dataclass(frozen=True)
class BudgetFollowing:
    """How one model's output length answered the budgets it was told."""

    model: str
    n_items: int
    spearman: float
    """Rank correlation of stated budget and output tokens over every answer."""
    median_ratio: dict[int, float]
    """Per budget: the median of output tokens / budget."""
    median_tokens: dict[int, float]
    """Per budget: the median output tokens."""

    def follows(
        self,
        *,
        min_spearman: float = 0.5,
        band: tuple[float, float] = (0.5, 1.5),
        at: tuple[int, ...] = (50, 100, 200),
    ) -> bool:
        """The pre-registered test (``benchmarks/results/tale-pt-selection-rule.md``):
        Spearman at least ``min_spearman`` and the median output/budget inside ``band`` at
        each of the budgets ``at`` that were run."""
        lo, hi = band
        ratios = [r for b, r in self.median_ratio.items() if b in at]
        return self.spearman >= min_spearman and bool(ratios) and all(lo <= r <= hi for r in ratios)


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):  # ties share their mean rank
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (ties averaged); 0.0 when either side is constant."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError("spearman needs two sequences of the same length, at least 2")
    rx, ry = _ranks(x), _ranks(y)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return 0.0 if vx == 0 or vy == 0 else cov / (vx * vy) ** 0.5


def stated_budget_of(row: BenchRow) -> int | None:
    """The budget a fixed-budget row stated (its ``budget``, else its method's number)."""
    if row.budget is not None:
        return row.budget
    match = _FIXED.match(row.method)
    return int(match[1]) if match else None


def budget_following(rows: Sequence[BenchRow]) -> dict[str, BudgetFollowing]:
    """Per model, how its answers followed the stated budgets (fixed-budget rows only, no
    errors; items answered at every budget)."""
    by_model: dict[str, list[tuple[str, int, int]]] = {}
    for row in rows:
        budget = stated_budget_of(row)
        if budget is None or row.error is not None or not _FIXED.match(row.method):
            continue
        by_model.setdefault(row.model or "?", []).append((row.id, budget, row.output_tokens))
    out = {}
    for model, answers in by_model.items():
        budgets = sorted({b for _, b, _ in answers})
        ids = {i for i, _, _ in answers}
        complete = {i for i in ids if {b for j, b, _ in answers if j == i} == set(budgets)}
        kept = [(i, b, t) for i, b, t in answers if i in complete]
        if len(budgets) < 2 or not kept:
            continue
        out[model] = BudgetFollowing(
            model=model,
            n_items=len(complete),
            spearman=spearman([b for _, b, _ in kept], [t for _, _, t in kept]),
            median_ratio={
                b: round(statistics.median(t / b for _, bb, t in kept if bb == b), 2)
                for b in budgets
            },
            median_tokens={
                b: statistics.median(t for _, bb, t in kept if bb == b) for b in budgets
            },
        )
    return out


def following_table(found: dict[str, BudgetFollowing]) -> str:
    """A Markdown table: one row per model."""
    from tale_shared.research._tables import markdown_table

    budgets = sorted({b for f in found.values() for b in f.median_ratio})
    return markdown_table(
        [
            "model",
            "items",
            "Spearman r",
            *(f"median out/budget @{b}" for b in budgets),
            "follows",
        ],
        (
            [
                f.model,
                f.n_items,
                f"{f.spearman:.2f}",
                *(f"{f.median_ratio.get(b, float('nan')):.2f}" for b in budgets),
                "yes" if f.follows() else "no",
            ]
            for f in found.values()
        ),
    )


def plot_following(found: dict[str, BudgetFollowing], out: str | Path, title: str = "") -> Path:
    """Median output tokens against the stated budget, one line per model, with y = x."""
    from tale_shared.research.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    top = 0.0
    for f in found.values():
        xs = sorted(f.median_tokens)
        ys = [f.median_tokens[b] for b in xs]
        ax.plot(xs, ys, marker="o", label=f"{f.model} (r = {f.spearman:.2f})")
        top = max(top, *xs, *ys)
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="output = budget")
    ax.set_xlabel("stated budget (tokens)")
    ax.set_ylabel("median output tokens")
    ax.set_title(title or "Does the model follow the budget?")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = [
    "BudgetFollowing",
    "budget_following",
    "following_table",
    "plot_following",
    "spearman",
    "stated_budget_of",
]
