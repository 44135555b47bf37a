"""Apply the written selection rule (results/default-selection-rule.md) to the dev runs.

    python benchmarks/select_default.py screen    # stage 1: which candidates go on
    python benchmarks/select_default.py confirm   # stage 2: which one becomes the default

It only reads rows that ``benchmarks/default_selection.sh`` wrote and prints the decision with
the figures it rests on (and writes them to results/default-selection-<stage>.md), so the
choice is the rule's, not a reading of a table.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tale_shared.research.bench import MethodSummary, load_rows, summarize_bench

RESULTS = Path(__file__).parent / "results"
BASE = ["vanilla", "vanilla-paper"]
CANDIDATES = [
    "tale-heuristic@system+ex3+force1.5",
    "tale-heuristic@concise+ex3+force1.5",
    "tale-heuristic@concise+ex3+escalate",
    "tale-heuristic@system+ex3+escalate",
    "vanilla+ex3",
]


EPS = 1e-9
"""Differences are counts over n items: compare them without floating-point dust."""


def summaries(name: str, methods: list[str]) -> dict[str, MethodSummary]:
    rows = load_rows(RESULTS / f"{name}.jsonl")
    return {s.method: s for s in summarize_bench(rows, [*BASE, *methods], baseline=BASE)}


def pooled_accuracy(method: str, *sets: dict[str, MethodSummary]) -> float:
    right = sum(s[method].accuracy * s[method].n for s in sets)
    return right / sum(s[method].n for s in sets)


def line(s: MethodSummary) -> str:
    ratio = "?" if s.output_ratio is None else f"{s.output_ratio:.2f}x"
    return (
        f"{s.method}: {s.accuracy:.1%} ({100 * s.diff:+.1f} [{100 * s.diff_low:+.1f}, "
        f"{100 * s.diff_high:+.1f}] vs {s.baseline}), {s.output_tokens:.0f} output tokens ({ratio})"
    )


def screen() -> list[str]:
    gsm, math = (
        summaries("screen-gsm8k-train", CANDIDATES),
        summaries("screen-math500-dev", CANDIDATES),
    )
    out = [
        f"GSM8K dev: n={gsm[CANDIDATES[0]].n}, baseline {gsm[CANDIDATES[0]].baseline}",
        f"MATH dev: n={math[CANDIDATES[0]].n}, baseline {math[CANDIDATES[0]].baseline}",
        "",
    ]
    passed = []
    for c in CANDIDATES:
        g, m = gsm[c], math[c]
        ok = (g.output_ratio or 9) <= 0.50 + EPS and g.diff >= -0.10 - EPS and m.diff >= -0.10 - EPS
        out += [f"- GSM8K {line(g)}", f"  MATH  {line(m)}", f"  -> {'passes' if ok else 'fails'}"]
        if ok:
            passed.append(c)
    if not passed:  # the rule's fallback: the most accurate with at most 0.60x on GSM8K
        passed = [c for c in CANDIDATES if (gsm[c].output_ratio or 9) <= 0.60 + EPS]
        out.append("none passes: the fallback takes the most accurate at <= 0.60x on GSM8K")
    finalists = sorted(passed, key=lambda c: -pooled_accuracy(c, gsm, math))[:3]
    out += ["", "finalists (most accurate on both sets pooled): " + ",".join(finalists)]
    return out


def confirm(finalists: list[str]) -> list[str]:
    gsm = summaries("confirm-gsm8k-train", finalists)
    try:
        math: dict[str, MethodSummary] | None = summaries("confirm-math500-dev", finalists)
    except (OSError, ValueError):  # MATH dev rows not (all) there yet
        math = None
    out = []
    eligible = []
    for c in finalists:
        g = gsm[c]
        gsm_ok = (
            g.diff_low > -0.05 and g.diff >= -0.02 - EPS and (g.output_ratio or 9) <= 0.50 + EPS
        )
        out.append(f"- GSM8K {line(g)}")
        if math is None:
            if gsm_ok:  # only MATH can decide now: the rule cannot be applied without it
                raise SystemExit(f"{c} passes on GSM8K dev: the MATH dev rows are needed")
            out += ["  MATH  (rows not complete: not needed, GSM8K alone rules it out)", "  -> not"]
            continue
        ok = gsm_ok and math[c].diff >= -0.05 - EPS
        out += [f"  MATH  {line(math[c])}", f"  -> {'eligible' if ok else 'not'}"]
        if ok:
            eligible.append(c)
    pool = eligible or finalists
    best = max(pool, key=lambda c: gsm[c].diff_low)
    close = [
        c
        for c in pool
        if gsm[best].diff_low - gsm[c].diff_low <= 0.01 + EPS
        and gsm[c].output_tokens <= 0.9 * gsm[best].output_tokens
    ]
    chosen = min(close, key=lambda c: gsm[c].output_tokens) if close else best
    why = "eligible" if eligible else "NONE eligible: the highest GSM8K lower bound"
    return [*out, "", f"default: {chosen} ({why})"]


def main(argv: list[str]) -> int:
    stage = argv[0] if argv else ""
    if stage == "screen":
        report = screen()
    elif stage == "confirm" and len(argv) == 2:
        report = confirm(argv[1].split(","))
    else:
        print("usage: select_default.py screen | confirm FINALIST,FINALIST,...", file=sys.stderr)
        return 2
    text = "\n".join(report)
    print(text)
    (RESULTS / f"default-selection-{stage}.md").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
