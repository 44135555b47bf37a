"""Plots: output tokens against the budget (token elasticity), and a search's trajectory.

matplotlib is optional: ``pip install 'tale-reasoning[plot]'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tale_shared.answers import extract_answer, is_correct
from tale_shared.models import ChatModel
from tale_shared.profiles import style_for
from tale_shared.prompts import get_style
from tale_shared.research.search import SearchResult


@dataclass(frozen=True)
class ElasticityPoint:
    budget: int | None  # None: vanilla CoT
    output_tokens: int
    correct: bool | None
    answer: str | None


def elasticity_curve(
    model: ChatModel,
    question: str,
    budgets: Sequence[int],
    *,
    gold: str | None = None,
    style: str | None = None,
    max_tokens: int = 512,
) -> list[ElasticityPoint]:
    """Run ``question`` at each budget (and once without): output tokens per budget."""
    chosen = style_for(model.model_name, style)
    points = []
    for budget in [None, *budgets]:
        messages = (get_style("vanilla") if budget is None else chosen).render(question, budget)
        c = model.complete(messages, max_tokens=max_tokens)
        points.append(
            ElasticityPoint(
                budget,
                c.usage.output_tokens,
                None if gold is None else is_correct(c.text, gold),
                extract_answer(c.text),
            )
        )
    return points


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'tale-reasoning[plot]'") from exc
    return plt


def _draw(
    budgets: list[int],
    tokens: list[int],
    correct: list[bool | None],
    vanilla: int | None,
    out: str | Path,
    title: str,
    labels: Sequence[str] | None = None,
) -> Path:
    plt = _pyplot()
    from matplotlib.ticker import ScalarFormatter

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    ax.plot(budgets, tokens, color="0.6", zorder=1)
    colors = ["tab:green" if c else "tab:red" if c is False else "tab:blue" for c in correct]
    ax.scatter(budgets, tokens, c=colors, zorder=2)
    lo, hi = min(budgets), max(budgets)
    ax.plot([lo, hi], [lo, hi], ls=":", color="0.3", label="output = budget")
    if vanilla is not None:
        ax.axhline(vanilla, ls="--", color="tab:purple", label=f"vanilla CoT ({vanilla} tokens)")
    for x, y, label in zip(budgets, tokens, labels or [], strict=False):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(0, 7), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.set_xlabel("token budget (log scale)")
    ax.set_ylabel("output tokens")
    ax.set_title(title, fontsize=9)
    ax.scatter([], [], c="tab:green", label="correct")
    ax.scatter([], [], c="tab:red", label="wrong")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_elasticity(points: Sequence[ElasticityPoint], out: str | Path, title: str = "") -> Path:
    budgeted = sorted((p for p in points if p.budget is not None), key=lambda p: p.budget or 0)
    vanilla = next((p.output_tokens for p in points if p.budget is None), None)
    return _draw(
        [p.budget or 0 for p in budgeted],
        [p.output_tokens for p in budgeted],
        [p.correct for p in budgeted],
        vanilla,
        out,
        title,
    )


def plot_search_trajectory(result: SearchResult, out: str | Path) -> Path:
    """One item's search: each try's output tokens against its budget, labelled in try order."""
    tries = [(n, s) for n, s in enumerate(result.trajectory, 1) if s.budget]
    if not tries:
        raise ValueError(f"item {result.id} has no budgeted step to plot")
    tries.sort(key=lambda t: t[1].budget or 0)
    return _draw(
        [s.budget or 0 for _, s in tries],
        [s.output_tokens for _, s in tries],
        [s.correct for _, s in tries],
        result.vanilla_tokens,
        out,
        f"{result.id}: optimal budget {result.optimal_budget} (labels: try order)",
        labels=[f"#{n}" for n, _ in tries],
    )
