"""The held-out report against issue 22's targets: one table per set, each target checked.

    python benchmarks/heldout_report.py            # prints it, writes results/heldout-targets.md

It reads the rows ``benchmarks/default_selection.sh heldout`` wrote (GSM8K test, SVAMP,
MATH-500 test) and, for each method beside the two vanillas, checks the targets against the
stronger vanilla on the same items. A set whose runs are not all in is reported on the items
every method has answered so far, and says so. Nothing here chooses anything: the default
was fixed on dev data (results/default-selection-confirm.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tale_shared.research.bench import MethodSummary, load_rows, summarize_bench
from tale_shared.research.targets import TargetCheck, Targets, check_targets

RESULTS = Path(__file__).parent / "results"
BASE = ["vanilla", "vanilla-paper"]
PLANNED = {"gsm8k-test": 300, "svamp": 300, "math500-test": 150}


TARGETS = {  # issue 22's, against the stronger vanilla
    "gsm8k-test": Targets(0.35, -0.01, min_low=-0.05, max_cost_ratio=0.60, max_time_ratio=0.40),
    "svamp": Targets(0.35, -0.01, min_low=-0.05, max_cost_ratio=0.60),
    "math500-test": Targets(0.60, -0.02, max_cost_ratio=0.60),
}


def checks(s: MethodSummary, t: Targets) -> list[TargetCheck]:
    """Each target of the set (seconds: both in the same run, issue 22's protocol)."""
    return check_targets(s, t, time_ratio=s.time_ratio)


def _table(name: str, summaries: list[MethodSummary], head: str) -> list[str]:
    base = summaries[0].baseline
    out = [head, "", f"Against the stronger vanilla on these items: `{base}`.", ""]
    target = TARGETS[name]
    for s in summaries:
        if s.method in BASE:
            out.append(
                f"- `{s.method}`: {s.accuracy:.1%}, {s.output_tokens:.0f} output tokens, "
                f"median {s.median_seconds:.1f} s, cut {s.cut_rate:.0%}"
            )
    out.append("")
    cells = [c.target for c in checks(summaries[-1], target)]
    out += [
        "| method | accuracy | vs " + base + " (95% CI) | " + " | ".join(cells) + " |",
        "|---" * (3 + len(cells)) + "|",
    ]
    for s in summaries:
        if s.method in BASE:
            continue
        values = [c.cell() for c in checks(s, target)]
        out.append(
            f"| {s.method} | {s.accuracy:.1%} | {100 * s.diff:+.1f} "
            f"[{100 * s.diff_low:+.1f}, {100 * s.diff_high:+.1f}] | " + " | ".join(values) + " |"
        )
    return [*out, ""]


def report_set(name: str) -> list[str]:
    """The set's table on the methods that answered every planned item; a method still
    running gets a table of its own on the items it has answered so far."""
    path = RESULTS / f"heldout-{name}.jsonl"
    if not path.exists():
        return [f"## {name}", "", "not run yet", ""]
    rows = load_rows(path)
    answered: dict[str, set[str]] = {}
    for r in rows:
        if r.error is None:
            answered.setdefault(r.method, set()).add(r.id)
    methods = [*BASE, *sorted(set(answered) - set(BASE))]
    if not all(b in answered for b in BASE) or len(answered) == len(BASE):
        return [f"## {name}", "", f"in progress: {len(rows)} rows, no method to compare yet", ""]
    planned = PLANNED[name]
    complete = [m for m in methods if len(answered.get(m, ())) >= planned]
    out: list[str] = []
    if all(b in complete for b in BASE) and len(complete) > len(BASE):
        summaries = summarize_bench(rows, complete, baseline=BASE)
        out += _table(name, summaries, f"## {name}: n={summaries[0].n}")
        running = [m for m in methods if m not in complete]
    else:
        running = [m for m in methods if m not in BASE]
    for m in running:
        summaries = summarize_bench(rows, [*BASE, m], baseline=BASE)
        head = (
            f"## {name}, `{m}`: n={summaries[0].n} "
            f"(in progress: {summaries[0].n} of {planned} items answered so far)"
        )
        out += _table(name, summaries, head)
    return out


def main(argv: list[str]) -> int:
    text = "\n".join(line for name in PLANNED for line in report_set(name))
    print(text)
    (RESULTS / "heldout-targets.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
