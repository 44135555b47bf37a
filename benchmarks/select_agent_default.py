"""Apply the written agent rule (results/agent-selection-rule.md) to the agent dev runs.

    python benchmarks/select_agent_default.py

It reads the rows ``benchmarks/agent_runs.sh dev langchain|llama-index`` wrote, prints the
decision with the figures it rests on and writes them to results/agent-selection.md, so the
agent-step default is the rule's choice, not a reading of a table.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from tale_shared.research.agent_bench import load_agent_rows
from tale_shared.research.bench import MethodSummary, summarize_bench

RESULTS = Path(__file__).parent / "results"
FRAMEWORKS = {
    "langchain": "agents-langchain-gsm8k-train",
    "llama-index": "agents-llamaindex-gsm8k-train",
}
REFERENCE = "none"
EPS = 1e-9
"""Differences are counts over n items: compare them without floating-point dust."""


def is_candidate(config: str) -> bool:
    """A per-step method configuration: ``tale`` or ``tale=METHOD`` alone."""
    return config == "tale" or (config.startswith("tale=") and "&" not in config)


def framework_summaries(name: str) -> dict[str, MethodSummary]:
    rows = load_agent_rows(RESULTS / f"{name}.jsonl")
    configs = sorted({r.method for r in rows if r.error is None})
    candidates = [c for c in configs if is_candidate(c)]
    summaries = summarize_bench(rows, [REFERENCE, *candidates], baseline=REFERENCE)
    return {s.method: s for s in summaries}


def line(framework: str, s: MethodSummary) -> str:
    ratio = "?" if s.output_ratio is None else f"{s.output_ratio:.2f}x"
    return (
        f"{framework}: solved {s.accuracy:.1%} ({100 * s.diff:+.1f} [{100 * s.diff_low:+.1f}, "
        f"{100 * s.diff_high:+.1f}] vs none, n={s.n}), output tokens {ratio} of none's"
    )


def decide(by_framework: dict[str, dict[str, MethodSummary]]) -> list[str]:
    common = set.intersection(*(set(s) for s in by_framework.values())) - {REFERENCE}
    out: list[str] = []
    eligible: list[str] = []
    mean_r: dict[str, float] = {}
    mean_d: dict[str, float] = {}
    for config in sorted(common):
        cells = [by_framework[f][config] for f in by_framework]
        ok = all(s.diff >= -0.05 - EPS and (s.output_ratio or 9) <= 0.80 + EPS for s in cells)
        mean_r[config] = statistics.mean(s.output_ratio or 9 for s in cells)
        mean_d[config] = statistics.mean(s.diff for s in cells)
        out.append(f"- {config}")
        out += [f"  {line(f, by_framework[f][config])}" for f in by_framework]
        out.append(f"  -> {'eligible' if ok else 'not eligible'}")
        if ok:
            eligible.append(config)
    if not eligible:
        return [*out, "", "agent default: the profile method stays (NONE eligible)"]
    best = min(eligible, key=lambda c: mean_r[c])
    close = [c for c in eligible if mean_r[c] - mean_r[best] <= 0.05 + EPS]
    chosen = max(close, key=lambda c: (mean_d[c], -mean_r[c]))
    method = "the profile method (agent_method unset)" if chosen == "tale" else chosen[5:]
    return [*out, "", f"agent default: {chosen} -> {method}"]


def main() -> int:
    missing = [n for n in FRAMEWORKS.values() if not (RESULTS / f"{n}.jsonl").exists()]
    if missing:
        print(f"no dev rows yet: {', '.join(missing)}", file=sys.stderr)
        return 2
    report = decide({f: framework_summaries(n) for f, n in FRAMEWORKS.items()})
    text = "\n".join(report)
    print(text)
    (RESULTS / "agent-selection.md").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
