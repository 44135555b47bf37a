"""The held-out report of issue 38: the shipped default against its targets, per set.

    python benchmarks/tale_pt_report.py        # prints it, writes results/tale-pt-heldout.md

It reads the rows ``benchmarks/tale_pt_runs.sh heldout`` wrote — the chosen default on the
tuned model (``tale-pt-heldout-<set>.jsonl``), and the default and the stronger vanilla re-timed
on 60 of the same items in one sitting (``tale-pt-retime-default-<set>.jsonl``,
``tale-pt-retime-<set>.jsonl``) — beside the base model's rows
for the same seeded items (``heldout-<set>.jsonl``: vanilla, vanilla-paper and the previous
default ``vanilla+ex3``). Accuracy, tokens and cost are paired on every item; the seconds ratio
comes only from the re-timed slice (machines here differ ~2x, so seconds from another session
are not compared). Nothing here chooses anything: the default was fixed on dev data
(results/tale-pt-selection.md).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from tale_shared.research.bench import load_rows, summarize_bench
from tale_shared.research.targets import Targets, check_targets

RESULTS = Path(__file__).parent / "results"
BASE = ["vanilla", "vanilla-paper"]
PREVIOUS = "vanilla+ex3"
TUNED = " (tuned)"
PLANNED = {"gsm8k-test": 300, "svamp": 300, "math500-test": 150}


TARGETS = {  # issue 38's, against the stronger vanilla
    "gsm8k-test": Targets(0.45, -0.01, min_low=-0.05, max_cost_ratio=0.50, max_time_ratio=0.50),
    "svamp": Targets(0.45, -0.01, min_low=-0.05, max_cost_ratio=0.50, max_time_ratio=0.50),
    "math500-test": Targets(0.85, -0.02, min_low=-0.08),
}


def retimed_ratio(name: str, default: str) -> tuple[float, int] | None:
    """Median seconds of ``default`` over those of the stronger vanilla, both re-timed on the
    same 60 items one after the other in one sitting; ``None`` before the re-timing has run."""
    paths = [
        RESULTS / f"tale-pt-retime-default-{name}.jsonl",
        RESULTS / f"tale-pt-retime-{name}.jsonl",
    ]
    if not all(p.exists() for p in paths):
        return None
    mine = {r.id: r.seconds for r in load_rows(paths[0]) if r.method == default and r.error is None}
    vanilla = {r.id: r.seconds for r in load_rows(paths[1]) if r.error is None}
    ids = sorted(set(vanilla) & set(mine))
    if not ids:
        return None
    return statistics.median(mine[i] for i in ids) / statistics.median(
        vanilla[i] for i in ids
    ), len(ids)


def report_set(name: str) -> list[str]:
    tuned_path = RESULTS / f"tale-pt-heldout-{name}.jsonl"
    if not tuned_path.exists():
        return [f"## {name}", "", "not run yet", ""]
    raw = load_rows(tuned_path)
    tuned = [r.model_copy(update={"method": r.method + TUNED}) for r in raw if r.error is None]
    (default, *others) = sorted({r.method for r in tuned})
    if others:
        raise ValueError(f"{tuned_path} holds several methods: {[default, *others]}")
    base = [
        r for r in load_rows(RESULTS / f"heldout-{name}.jsonl") if r.method in [*BASE, PREVIOUS]
    ]
    methods = [*BASE, PREVIOUS, default]
    summaries = summarize_bench(base + tuned, methods, baseline=BASE)
    n, planned = summaries[0].n, PLANNED[name]
    head = f"## {name}: n={n}" + ("" if n >= planned else f" (in progress: {n} of {planned})")
    out = [head, "", f"Against the stronger vanilla on these items: `{summaries[0].baseline}`.", ""]
    out += [
        "| method | accuracy | vs stronger vanilla (95% CI) | output tokens | input tokens "
        "| USD / 1k q (gpt-4o-mini) | median s (own sitting) | output vs | cost vs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        cost = "?" if s.cost_per_1k is None else f"{s.cost_per_1k:.4f}"
        out.append(
            f"| {s.method} | {s.accuracy:.1%} | {100 * s.diff:+.1f} [{100 * s.diff_low:+.1f}, "
            f"{100 * s.diff_high:+.1f}] | {s.output_tokens:.1f} | {s.input_tokens:.1f} | {cost} | "
            f"{s.median_seconds:.1f} | {s.output_ratio or 0:.2f} | {s.cost_ratio or 0:.2f} |"
        )
    time = retimed_ratio(name, default.removesuffix(TUNED))
    found = check_targets(
        summaries[-1],
        TARGETS[name],
        time_ratio=time[0] if time else None,
        time_note=f"n={time[1]}, same sitting" if time else "",
    )
    out += ["", f"Targets for `{default}`:", ""]
    out += [f"- {c.line()}" for c in found]
    return [*out, ""]


def main(argv: list[str]) -> int:
    text = "\n".join(line for name in PLANNED for line in report_set(name))
    print(text)
    (RESULTS / "tale-pt-heldout.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
