"""Which budget wording does a model follow? Measure each style, pick the best, save it.

For each style that takes a budget, a few training questions run at several budgets; the
figures are the correlation of budget and output tokens (does it follow at all), the share
of answers within the budget, and accuracy. The chosen style maximises
``0.5 * max(r, 0) + 0.25 * within_budget + 0.25 * accuracy`` — following the budget matters
most, but a style that follows it by giving up answering does not win.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from tale_shared.answers import is_correct
from tale_shared.models import ChatModel, Completion
from tale_shared.profiles import ModelProfile
from tale_shared.prompts import get_style, list_styles
from tale_shared.research._tables import markdown_table
from tale_shared.research.datasets import Item
from tale_shared.research.jobs import Output, run_jobs

CALIBRATED_STYLES = ("paper", "tokens", "words", "system")


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return 0.0
    return float(statistics.correlation(xs, ys))


def score(m: dict[str, float]) -> float:
    return 0.5 * max(m["r"], 0.0) + 0.25 * m["within_budget"] + 0.25 * m["accuracy"]


def measure_style(
    model: ChatModel,
    style_name: str,
    items: Sequence[Item],
    budgets: Sequence[int],
    max_tokens: int = 512,
    concurrency: int = 1,
) -> dict[str, float]:
    style = get_style(style_name)
    xs, ys, within, correct = [], [], [], []
    runs = [(budget, item) for budget in budgets for item in items]

    def call(run: tuple[int, Item]) -> tuple[tuple[int, Item], Completion]:
        budget, item = run
        return run, model.complete(style.render(item.question, budget), max_tokens=max_tokens)

    calls = Output[tuple[tuple[int, Item], Completion]](desc=f"calibrate {style_name}", unit="call")
    done = run_jobs(runs, call, calls, concurrency=concurrency)
    for (budget, item), c in done:
        xs.append(float(budget))
        ys.append(float(c.usage.output_tokens))
        within.append(c.usage.output_tokens <= budget)
        correct.append(is_correct(c.text, item.answer))
    return {
        "r": _pearson(xs, ys),
        "within_budget": sum(within) / len(within),
        "accuracy": sum(correct) / len(correct),
        "mean_tokens": statistics.mean(ys),
    }


def calibrate(
    model: ChatModel,
    items: Sequence[Item],
    *,
    budgets: Sequence[int] = (50, 100, 200),
    styles: Sequence[str] = CALIBRATED_STYLES,
    max_tokens: int = 512,
    concurrency: int = 1,
) -> tuple[ModelProfile, str]:
    """Measure ``styles`` on ``items``; return the best as a profile, and a Markdown table."""
    known = {s.name for s in list_styles()}
    measurements = {}
    for name in styles:
        if name not in known:
            raise ValueError(f"unknown style {name!r}")
        measurements[name] = measure_style(model, name, items, budgets, max_tokens, concurrency)
    best = max(measurements, key=lambda n: score(measurements[n]))
    profile = ModelProfile(
        model=model.model_name,
        style=best,
        source="calibrated",
        notes=f"{len(items)} questions x budgets {list(budgets)}",
        measurements=measurements,
    )
    table = markdown_table(
        ["style", "r(budget, tokens)", "within budget", "accuracy", "mean tokens", "score"],
        (
            [
                f"{name} (chosen)" if name == best else name,
                f"{m['r']:.2f}",
                f"{m['within_budget']:.0%}",
                f"{m['accuracy']:.0%}",
                f"{m['mean_tokens']:.0f}",
                f"{score(m):.2f}",
            ]
            for name, m in measurements.items()
        ),
    )
    return profile, table
