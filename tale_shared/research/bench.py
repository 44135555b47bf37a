"""The method benchmark: every method on the same items, same model, same decoding, one run.

``tale bench --data FILE --methods vanilla,direct,tale-ep,... --limit 150 --out runs.jsonl``
runs each (method, item) pair not yet in ``out`` and appends its row as it finishes (fsynced;
a rerun resumes, a line cut by a crash is run again). The summary holds, per method:
accuracy and its **paired** difference to the baseline (vanilla) with a 95% bootstrap
interval over the items both answered; mean output and input tokens over *all* calls
(estimator, forced answers, probes); the cost at a reference price (gpt-4o-mini's, so that
input-heavy methods are not hidden); calls; median wall time; and ratios to the baseline.

Example:
    .. code-block:: python

        from tale_shared.loading import load_model
        from tale_shared.research.bench import run_bench, summarize_bench, bench_table
        from tale_shared.research.datasets import load_items, sample_items

        items = sample_items(load_items("test.norm.jsonl"), 150, seed=0)
        run_bench(load_model("qwen2.5-coder-1.5b"), items, ["vanilla", "tale"], "runs.jsonl")
        print(bench_table(summarize_bench(load_rows("runs.jsonl"), ["vanilla", "tale"])))
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

from pydantic import BaseModel, Field, field_validator

from tale_shared._io import iter_json_lines
from tale_shared._redact import redact_optional
from tale_shared._validation import one_line_error
from tale_shared.answers import is_correct
from tale_shared.budget import TokenBudget
from tale_shared.estimators.base import BudgetEstimator
from tale_shared.models import ChatModel
from tale_shared.pipeline import TalePipeline
from tale_shared.pricing import default_price_table
from tale_shared.research._tables import markdown_table
from tale_shared.research.datasets import Item
from tale_shared.research.jobs import Output, refuse_other_models, run_jobs
from tale_shared.research.search import SearchResult
from tale_shared.usage import TokenUsage

REFERENCE_MODEL = "gpt-4o-mini"
"""Costs in the table are at this model's input and output prices (from genai-prices)."""


class BenchRow(BaseModel):
    """One method on one item."""

    method: str
    id: str
    correct: bool = False
    answer: str | None = None
    budget: int | None = None
    output_tokens: int = Field(default=0, ge=0)
    input_tokens: int = Field(default=0, ge=0)
    cached_input_tokens: int = Field(default=0, ge=0)
    """Input tokens the model took from its prompt cache instead of evaluating them."""
    estimator_tokens: int = Field(default=0, ge=0)
    calls: int = Field(default=0, ge=0)
    seconds: float = Field(default=0.0, ge=0)
    forced: bool = False
    stopped_early: bool = False
    cap: int | None = None
    """The output cap the answer call was sent with (the budget's hard cap, or max_tokens)."""
    cap_exceeded: bool = False
    """A call returned more output tokens than its cap (the provider ignored it)."""
    cut: bool = False
    """The answer call stopped at its cap (finish reason ``length``)."""
    usage_source: str = "provider"
    """``provider``, or ``counted`` when some call's tokens were counted by tale."""
    model: str | None = None
    text: str = ""
    error: str | None = None

    @field_validator("error", mode="after")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        return redact_optional(value)


class OracleEstimator(BudgetEstimator):
    """Each searched item's optimal budget: the lower bound for any estimator. Questions it has
    no budget for (not searched, or no feasible budget found) get ``fallback_tokens``."""

    name = "oracle"

    def __init__(self, budgets: dict[str, int], **bounds: int) -> None:
        super().__init__(**bounds)
        self.budgets = {q.strip(): b for q, b in budgets.items()}

    @classmethod
    def from_search(cls, results: Iterable[SearchResult]) -> OracleEstimator:
        return cls({r.question: r.optimal_budget for r in results if r.found and r.optimal_budget})

    def estimate(self, question: str) -> TokenBudget:
        tokens = self.budgets.get(question.strip())
        if tokens is None:
            return TokenBudget(
                tokens=self.fallback_tokens,
                estimator=self.name,
                fallback_reason="no searched optimal budget for this question",
            )
        return TokenBudget(tokens=self.clamp(tokens), estimator=self.name)


R = TypeVar("R", bound="BenchRow")


@overload
def load_rows(path: str | Path) -> list[BenchRow]: ...
@overload
def load_rows(path: str | Path, row_type: type[R]) -> list[R]: ...
def load_rows(path: str | Path, row_type: type[Any] = BenchRow) -> list[Any]:
    """The rows of a benchmark file (the last per method and item; cut lines skipped), read
    as ``row_type`` (an agent benchmark's rows are :class:`BenchRow` s with more fields)."""
    latest: dict[tuple[str, str], Any] = {}
    for n, row, problem in iter_json_lines(path):
        if problem is None and isinstance(row, dict):
            try:
                parsed = row_type.model_validate(row)
            except ValueError as exc:
                raise ValueError(
                    f"{path}:{n} is not a benchmark row: {one_line_error(exc)}"
                ) from None
            latest[(parsed.method, parsed.id)] = parsed
    return list(latest.values())


def bench_pipelines(
    model: ChatModel,
    methods: Sequence[str],
    *,
    max_tokens: int = 512,
    oracle: OracleEstimator | None = None,
) -> dict[str, TalePipeline]:
    """One pipeline per method, all on ``model``."""
    return {
        m: TalePipeline(
            model,
            estimator=oracle if m.startswith("oracle") else None,
            method=m,
            max_tokens=max_tokens,
        )
        for m in methods
    }


def bench_row(pipeline: TalePipeline, method: str, item: Item, model_name: str) -> BenchRow:
    """Run one method on one item; an error becomes a row with ``error`` set."""
    try:
        result = pipeline.solve(item.question)
    except Exception as exc:
        return BenchRow(method=method, id=item.id, error=repr(exc))
    rec = result.record
    answer_calls = [c for c in rec.calls if c.role == "answer"]
    return BenchRow(
        method=method,
        id=item.id,
        correct=is_correct(result.text, item.answer),
        answer=result.answer,
        budget=rec.budget,
        output_tokens=rec.usage.output_tokens,
        input_tokens=rec.usage.input_tokens,
        cached_input_tokens=rec.usage.cached_input_tokens,
        estimator_tokens=rec.estimator_usage.total_tokens,
        calls=rec.n_calls,
        seconds=rec.latency_s,
        forced=result.forced,
        stopped_early=result.stopped_early,
        cap=answer_calls[0].cap if answer_calls else None,
        cap_exceeded=any(c.cap_exceeded for c in rec.calls),
        cut=result.cut,
        usage_source=rec.usage.source,
        model=model_name,
        text=result.text,
    )


def done_pairs(path: Path, model_name: str | None = None) -> set[tuple[str, str]]:
    """The (method, item id) pairs already in a benchmark file without an error.

    With ``model_name`` (the model about to run), a file whose answers came from another
    model raises ``ValueError`` rather than resume: its rows and the new ones would be
    compared as one model's (a base model's rows beside a fine-tune's, or one LoRA
    adapter's beside another's; :attr:`LocalChatModel.model_name` carries the adapter's
    digest)."""
    if not path.exists():
        return set()
    rows = [r for r in load_rows(path) if r.error is None]
    if model_name is not None:
        refuse_other_models(path, (r.model for r in rows), model_name)
    return {(r.method, r.id) for r in rows}


def run_bench(
    model: ChatModel,
    items: Sequence[Item],
    methods: Sequence[str],
    out: str | Path,
    *,
    max_tokens: int = 512,
    oracle: OracleEstimator | None = None,
    concurrency: int = 1,
    progress: bool = True,
    by_method: bool = False,
) -> int:
    """Run every (method, item) pair not yet in ``out``; returns how many were run. Items go
    in the outer loop, so a run stopped early still compares the methods on the same items;
    with ``by_method`` each method runs over all items before the next, as a user runs one
    method (what seconds per query should be measured on: llama.cpp's prefix cache then
    holds the previous question's prompt, not another method's). A failed call is recorded
    with ``error`` (and run again on the next run). With ``concurrency`` N > 1 (a served
    model), N pairs are in flight at once; rows are written as they finish."""
    path = Path(out)
    done = done_pairs(path, model.model_name)
    pipelines = bench_pipelines(model, methods, max_tokens=max_tokens, oracle=oracle)
    if by_method:
        todo = [(m, item) for m in methods for item in items if (m, item.id) not in done]
    else:
        todo = [(m, item) for item in items for m in methods if (m, item.id) not in done]

    def run_one(job: tuple[str, Item]) -> BenchRow:
        method, item = job
        return bench_row(pipelines[method], method, item, model.model_name)

    # a served model: ``concurrency`` requests in flight; rows are written as they finish
    rows = Output[BenchRow](path, BenchRow.model_dump_json, "bench", "call")
    run_jobs(todo, run_one, rows, concurrency=concurrency, progress=progress)
    return len(todo)


class MethodSummary(BaseModel):
    """One method's figures over the items every summarised method answered."""

    method: str
    n: int
    accuracy: float
    diff: float
    diff_low: float
    diff_high: float
    output_tokens: float
    input_tokens: float
    evaluated_input_tokens: float = 0.0
    """Mean input tokens the model evaluated (input tokens less those from its prompt cache)."""
    cost_per_1k: float | None
    calls: float
    cut_rate: float = 0.0
    """Share of answers that stopped at their output cap (before any forced answer)."""
    median_seconds: float
    output_ratio: float | None
    cost_ratio: float | None
    time_ratio: float | None
    baseline: str = "vanilla"
    """The method the differences and ratios are against."""


def paired_interval(
    a: Sequence[bool], b: Sequence[bool], *, rounds: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``a - b`` (accuracy difference on the same items) and its 95% paired
    bootstrap interval.

    >>> paired_interval([True, True, False, True], [True, False, False, True])[0]
    0.25
    """
    if len(a) != len(b) or not a:
        raise ValueError("paired samples must be non-empty and of equal length")
    diffs = [int(x) - int(y) for x, y in zip(a, b, strict=True)]
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    return sum(diffs) / n, means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def summarize_bench(
    rows: Iterable[BenchRow], methods: Sequence[str], *, baseline: str | Sequence[str] = "vanilla"
) -> list[MethodSummary]:
    """Figures per method on the items that every method in ``methods`` answered.

    ``baseline`` may name several methods (a sequence, or one comma-separated string, e.g.
    ``"vanilla,vanilla-paper"``): differences and ratios are then against whichever of them
    is the most accurate on these items (the first on a tie) — the stronger baseline."""
    ok = [r for r in rows if r.error is None and r.method in methods]
    by_method: dict[str, dict[str, BenchRow]] = {m: {} for m in methods}
    for r in ok:
        by_method[r.method][r.id] = r
    ids = sorted(set.intersection(*(set(v) for v in by_method.values()))) if methods else []
    if not ids:
        raise ValueError("no item has a result for every method yet")
    candidates = baseline_candidates(baseline)
    missing = [b for b in candidates if b not in by_method]
    if missing:
        raise ValueError(f"the baseline {missing[0]!r} is not among the methods")
    baseline = max(
        candidates, key=lambda b: sum(by_method[b][i].correct for i in ids)
    )  # max keeps the first on a tie
    prices = default_price_table()

    def cost(r: BenchRow) -> float | None:
        return prices.cost(
            REFERENCE_MODEL, TokenUsage(input_tokens=r.input_tokens, output_tokens=r.output_tokens)
        )

    per_method = {m: [by_method[m][i] for i in ids] for m in methods}
    base = _Means.of(per_method[baseline], cost)
    out = []
    for m in methods:
        mine = per_method[m]
        means = _Means.of(mine, cost)
        diff, low, high = paired_interval(
            [r.correct for r in mine], [r.correct for r in per_method[baseline]]
        )
        out.append(
            MethodSummary(
                method=m,
                n=len(ids),
                accuracy=statistics.mean(r.correct for r in mine),
                diff=diff,
                diff_low=low,
                diff_high=high,
                output_tokens=means.output,
                input_tokens=means.input,
                evaluated_input_tokens=means.evaluated_input,
                cost_per_1k=means.cost_per_1k,
                calls=statistics.mean(r.calls for r in mine),
                cut_rate=statistics.mean(r.cut for r in mine),
                median_seconds=means.seconds,
                output_ratio=_ratio(means.output, base.output),
                cost_ratio=(
                    means.cost_per_1k / base.cost_per_1k
                    if means.cost_per_1k and base.cost_per_1k
                    else None
                ),
                time_ratio=_ratio(means.seconds, base.seconds),
                baseline=baseline,
            )
        )
    return out


def baseline_candidates(baseline: str | Sequence[str]) -> list[str]:
    """The baseline method names: a sequence, or a comma-separated string.

    >>> baseline_candidates("vanilla, vanilla-paper")
    ['vanilla', 'vanilla-paper']
    """
    names = baseline.split(",") if isinstance(baseline, str) else list(baseline)
    cleaned = [n.strip() for n in names if n.strip()]
    if not cleaned:
        raise ValueError("no baseline method given")
    return cleaned


def _ratio(value: float, reference: float) -> float | None:
    """``value / reference``; unknown (``None``, shown as ``?``) when the reference is 0 —
    a baseline whose calls reported no tokens."""
    return value / reference if reference else None


@dataclass(frozen=True)
class _Means:
    output: float
    input: float
    evaluated_input: float
    cost_per_1k: float | None
    seconds: float

    @classmethod
    def of(cls, rows: list[BenchRow], cost: Callable[[BenchRow], float | None]) -> _Means:
        costs = [cost(r) for r in rows]
        known = [c for c in costs if c is not None]
        return cls(
            output=statistics.mean(r.output_tokens for r in rows),
            input=statistics.mean(r.input_tokens for r in rows),
            evaluated_input=statistics.mean(r.input_tokens - r.cached_input_tokens for r in rows),
            cost_per_1k=1000 * statistics.mean(known) if len(known) == len(costs) else None,
            seconds=statistics.median(r.seconds for r in rows),
        )


def bench_table(summaries: Sequence[MethodSummary]) -> str:
    """The summary as a Markdown table."""
    base = summaries[0].baseline if summaries else "vanilla"
    return markdown_table(
        [
            "method",
            "n",
            "accuracy",
            f"vs {base} (95% CI)",
            "output tokens",
            "input tokens",
            "input evaluated",
            f"USD / 1k q ({REFERENCE_MODEL} prices)",
            "calls",
            "cut",
            "median s",
            f"output vs {base}",
            f"cost vs {base}",
            f"time vs {base}",
        ],
        (
            [
                s.method,
                s.n,
                f"{s.accuracy:.1%}",
                f"{100 * s.diff:+.1f} [{100 * s.diff_low:+.1f}, {100 * s.diff_high:+.1f}]",
                f"{s.output_tokens:.1f}",
                f"{s.input_tokens:.1f}",
                f"{s.evaluated_input_tokens:.1f}",
                "?" if s.cost_per_1k is None else f"{s.cost_per_1k:.4f}",
                f"{s.calls:.2f}",
                f"{s.cut_rate:.0%}",
                f"{s.median_seconds:.1f}",
                "?" if s.output_ratio is None else f"{s.output_ratio:.2f}",
                "?" if s.cost_ratio is None else f"{s.cost_ratio:.2f}",
                "?" if s.time_ratio is None else f"{s.time_ratio:.2f}",
            ]
            for s in summaries
        ),
    )


def plot_pareto(summaries: Sequence[MethodSummary], png: str | Path, *, title: str = "") -> Path:
    """Accuracy against mean output tokens (all calls), with each method's paired 95% interval
    shifted onto its accuracy, the baseline as the reference lines, and the Pareto front
    joined."""
    from tale_shared.research.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    name = summaries[0].baseline if summaries else "vanilla"
    base = next((s for s in summaries if s.method == name), None)
    if base is not None:
        ax.axhline(base.accuracy, color="grey", lw=0.8, ls="--", label=f"{name} accuracy")
        ax.axvline(base.output_tokens, color="grey", lw=0.8, ls=":", label=f"{name} tokens")
        ax.axvline(0.5 * base.output_tokens, color="tab:red", lw=0.8, ls=":", label=f"0.5x {name}")
    x_span = max((s.output_tokens for s in summaries), default=1.0) or 1.0
    placed: list[tuple[float, float, int]] = []
    for s in sorted(summaries, key=lambda m: m.output_tokens):
        err = [[s.diff - s.diff_low], [s.diff_high - s.diff]]
        ax.errorbar(s.output_tokens, s.accuracy, yerr=err, fmt="o", capsize=3, ms=5)
        offset = _label_offset(s.output_tokens / x_span, s.accuracy, placed)
        ax.annotate(
            s.method,
            (s.output_tokens, s.accuracy),
            xytext=(5, offset),
            textcoords="offset points",
            fontsize=7,
        )
    front = pareto_front(summaries)
    ax.plot(
        [s.output_tokens for s in front],
        [s.accuracy for s in front],
        color="tab:green",
        lw=1,
        label="Pareto front",
    )
    ax.set_xlabel("mean output tokens per question (all calls)")
    ax.set_ylabel(f"accuracy (bars: paired 95% CI of the difference to {name})")
    ax.set_ylim(0, 1)
    ax.set_xlim(left=0)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _label_offset(x: float, y: float, placed: list[tuple[float, float, int]]) -> int:
    """A vertical label offset (points) that keeps this label off the ones already placed
    near it (x as a fraction of the widest point, y as accuracy); records the choice."""
    offset = 4
    while any(
        abs(px - x) < 0.35 and abs(py - y) < 0.06 and poff == offset for px, py, poff in placed
    ):
        offset -= 11
    placed.append((x, y, offset))
    return offset


def pareto_front(summaries: Sequence[MethodSummary]) -> list[MethodSummary]:
    """The methods no other method beats on both accuracy and tokens, by tokens."""
    ordered = sorted(summaries, key=lambda s: (s.output_tokens, -s.accuracy))
    front: list[MethodSummary] = []
    for s in ordered:
        if not front or s.accuracy > front[-1].accuracy:
            front.append(s)
    return front
