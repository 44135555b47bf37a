"""Apply the written rule (results/tale-pt-selection-rule.md) to the dev runs of issue 38.

    python benchmarks/select_tale_pt.py            # prints the decision, writes it to
                                                   # results/tale-pt-selection.md

It reads only rows that ``benchmarks/tale_pt_runs.sh following|dev`` and the earlier
``default_selection.sh`` stages wrote (the base model's rows for the same dev items) and prints
the decision with the figures it rests on, so that the choice is the rule's, not a reading of
a table. Candidates:

- A, today's default: the base model, ``vanilla+ex3``;
- B, C, D: the tuned model with ``vanilla``, ``tale-heuristic@system``, ``vanilla+ex3``;
- E, routed by problem type: the better of B and C (by the GSM8K cost ratio; B when the tuned
  model does not follow a stated budget, which rules C out) on questions without mathematical
  notation, A on questions with it (rows combined from the others).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tale_shared.estimators.heuristic import question_features
from tale_shared.research.bench import BenchRow, MethodSummary, load_rows, summarize_bench
from tale_shared.research.datasets import load_items
from tale_shared.research.following import budget_following

RESULTS = Path(__file__).parent / "results"
DATA = Path(os.environ.get("DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))
BASE = ["vanilla", "vanilla-paper"]
TUNED = " (tuned)"
A, B, C, D, E = (
    "vanilla+ex3",
    "vanilla" + TUNED,
    "tale-heuristic@system" + TUNED,
    "vanilla+ex3" + TUNED,
    "routed",
)
EPS = 1e-9
"""Differences are counts over n items: compare them without floating-point dust."""


@dataclass(frozen=True)
class DevSet:
    name: str
    base_rows: str  # the base model's rows (vanilla, vanilla-paper, vanilla+ex3)
    tuned_rows: str  # the tuned model's rows (tale_pt_runs.sh dev)
    data: str  # the questions, for routing by problem type


GSM8K = DevSet(
    "GSM8K dev", "confirm-gsm8k-train", "tale-pt-dev-gsm8k-train", "gsm8k/train.norm.jsonl"
)
MATH = DevSet(
    "MATH dev", "screen-math500-dev", "tale-pt-dev-math500-dev", "math500-dev/dev.norm.jsonl"
)


def rows_of(dev: DevSet) -> list[BenchRow]:
    """The base rows as they are and the tuned rows renamed ``<method> (tuned)``."""
    base = [r for r in load_rows(RESULTS / f"{dev.base_rows}.jsonl") if r.method in [*BASE, A]]
    tuned = [
        r.model_copy(update={"method": r.method + TUNED})
        for r in load_rows(RESULTS / f"{dev.tuned_rows}.jsonl")
    ]
    return base + tuned


def has_notation(question: str) -> bool:
    """The heuristic estimator's formula detector: a competition problem, not a word problem."""
    return question_features(question).formulas > 0


def routed(rows: list[BenchRow], questions: dict[str, str], tuned: str) -> list[BenchRow]:
    """E's rows: A's answer on items with mathematical notation, ``tuned``'s on the rest."""
    pick = {
        r.id: r
        for r in rows
        if r.method == (A if has_notation(questions.get(r.id, "")) else tuned) and r.id in questions
    }
    return [r.model_copy(update={"method": E}) for r in pick.values()]


def summaries(rows: list[BenchRow], methods: list[str]) -> dict[str, MethodSummary]:
    return {s.method: s for s in summarize_bench(rows, [*BASE, *methods], baseline=BASE)}


def line(s: MethodSummary) -> str:
    def x(v: float | None) -> str:
        return "?" if v is None else f"{v:.2f}x"

    return (
        f"{s.method}: n={s.n}, {s.accuracy:.1%} ({100 * s.diff:+.1f} [{100 * s.diff_low:+.1f}, "
        f"{100 * s.diff_high:+.1f}] vs {s.baseline}), output {s.output_tokens:.0f} "
        f"({x(s.output_ratio)}), cost {x(s.cost_ratio)}, cut {s.cut_rate:.0%}"
    )


def follows_budgets() -> tuple[bool, str]:
    """The rule's test: Spearman r >= 0.5 over budgets 25-200 and the median output/budget at
    50, 100 and 200 within [0.5, 1.5]."""
    found = budget_following(load_rows(RESULTS / "tale-pt-following-tuned.jsonl"))
    (f,) = found.values()
    ratios = {b: f.median_ratio.get(b) for b in (50, 100, 200)}
    ok = f.spearman >= 0.5 - EPS and all(
        r is not None and 0.5 - EPS <= r <= 1.5 + EPS for r in ratios.values()
    )
    shown = ", ".join(f"{b}: {r:.2f}" if r is not None else f"{b}: ?" for b, r in ratios.items())
    return ok, f"tuned model: Spearman r {f.spearman:.2f}, median output/budget {shown}"


def decide() -> list[str]:
    follows, following_line = follows_budgets()
    out = [following_line, f"-> {'follows' if follows else 'does NOT follow'} a stated budget", ""]
    sets = {}
    for dev in (GSM8K, MATH):
        rows = rows_of(dev)
        questions = {i.id: i.question for i in load_items(DATA / dev.data)}
        sets[dev.name] = (rows, questions)
    gsm_rows, _ = sets[GSM8K.name]
    ran_c = all(any(r.method == C for r in rows) for rows, _ in sets.values())
    if not follows:  # "C and E with C are then not eligible": E routes to B
        tuned_for_e, why_e = B, "C states a budget the tuned model does not follow"
    else:
        if not ran_c:
            raise ValueError(f"the tuned model follows budgets: run {C!r} on dev before choosing")
        first = summaries(gsm_rows, [A, B, C, D])
        if (first[B].cost_ratio or 9) <= (first[C].cost_ratio or 9) + EPS:
            tuned_for_e, why_e = B, "the lower GSM8K cost ratio"
        else:
            tuned_for_e, why_e = C, "the lower GSM8K cost ratio"
    out.append(f"E routes word problems to {tuned_for_e} ({why_e})")
    # C's dev rows are needed only when it can be chosen; when it cannot, it may be left unrun
    candidates = [A, B, C, D, E] if ran_c else [A, B, D, E]
    figures: dict[str, dict[str, MethodSummary]] = {}
    for name, (rows, questions) in sets.items():
        with_e = rows + routed(rows, questions, tuned_for_e)
        figures[name] = summaries(with_e, candidates)
    gsm, math = figures[GSM8K.name], figures[MATH.name]
    eligible = []
    if not ran_c:
        out.append(f"- {C}: not run (states a budget the tuned model does not follow)")
    for c in candidates:
        g, m = gsm[c], math[c]
        ok = (
            g.diff >= -0.02 - EPS
            and g.diff_low > -0.08
            and (g.output_ratio or 9) <= 0.50 + EPS
            and m.diff >= -0.05 - EPS
            and (m.output_ratio or 9) <= 1.00 + EPS
        )
        if c == C and not follows:
            ok, why = False, " (states a budget the tuned model does not follow)"
        else:
            why = ""
        out += [f"- GSM8K {line(g)}", f"  MATH  {line(m)}", f"  -> {'eligible' if ok else 'not'}"]
        out[-1] += why
        if ok:
            eligible.append(c)
    out.append("")
    if not eligible:
        return [*out, f"default: {A} (NONE eligible: A stays the default)"]

    def mean_cost(c: str) -> float:
        return ((gsm[c].cost_ratio or 9) + (math[c].cost_ratio or 9)) / 2

    cheapest = min(eligible, key=mean_cost)
    close = [c for c in eligible if mean_cost(c) - mean_cost(cheapest) <= 0.05 + EPS]
    chosen = max(close, key=lambda c: (gsm[c].diff + math[c].diff, c == cheapest))
    costs = ", ".join(f"{c} {mean_cost(c):.3f}" for c in eligible)
    return [
        *out,
        f"mean cost ratio (GSM8K, MATH): {costs}",
        f"default: {chosen} (eligible; lowest mean cost {cheapest}, within 0.05 the higher summed "
        "accuracy difference)",
    ]


def main(argv: list[str]) -> int:
    if argv:
        print("usage: select_tale_pt.py", file=sys.stderr)
        return 2
    text = "\n".join(decide())
    print(text)
    (RESULTS / "tale-pt-selection.md").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
