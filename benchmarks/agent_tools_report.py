"""The held-out report of issue 40, round 2: the plain agent and the default's budgets, per
framework, against the issue's targets.

    python benchmarks/agent_tools_report.py   # prints it; writes results/agents-tools-r2-heldout.md

It reads the rows ``benchmarks/agent_tool_runs.sh heldout langchain|llama-index`` wrote
(``agents-tools-r2-heldout-<framework>.jsonl``). The *plain agent* is each configuration with
no ``tale`` part (the levers chosen on dev templates, no budget); a configuration ``<plain>&tale``
is the default's step budgets on top of it, paired with its plain run on the same tasks. The
three templates written after round 1's held-out results were read (``FRESH_HELDOUT``) are
reported apart from the original six as well as together. Nothing here chooses anything.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tale_shared.research.agent_bench import AgentRow, common_ids, load_agent_rows
from tale_shared.research.agent_tasks import FRESH_HELDOUT
from tale_shared.research.bench import MethodSummary, summarize_bench

RESULTS = Path(__file__).parent / "results"
FRAMEWORKS = ("langchain", "llama-index")
TALE_PART = "&tale"
PLAIN_TOOL_RATE, PLAIN_SUCCESS = 0.90, 0.60
"""Item 2: the plain agent calls a tool in >= 90% of the tasks and succeeds in >= 60%."""
TALE_MIN_DIFF, TALE_MIN_LOW, TALE_MAX_OUTPUT = -0.02, -0.10, 0.60
"""Item 3: success >= plain - 2 points, the interval's lower end above -10, output <= 0.60x
(and a tool-call rate at least the plain agent's)."""
EPS = 1e-9


def groups(rows: Sequence[AgentRow]) -> dict[str, list[AgentRow]]:
    """All tasks, the original six templates and the three fresh ones."""
    fresh = [r for r in rows if r.template in FRESH_HELDOUT]
    original = [r for r in rows if r.template not in FRESH_HELDOUT]
    return {"all": list(rows), "original 6": original, "fresh 3": fresh}


def tool_rate(rows: Sequence[AgentRow], config: str, ids: set[str]) -> float:
    """Share of ``config``'s runs on ``ids`` with at least one tool call (the answer tool is
    the final answer, not counted)."""
    mine = [r for r in rows if r.method == config and r.id in ids and r.error is None]
    return sum(r.tool_calls > 0 for r in mine) / len(mine) if mine else 0.0


def mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def pair_lines(rows: list[AgentRow], plain: str, tale: str | None) -> list[str]:
    configs = [plain] if tale is None else [plain, tale]
    out = [
        "| tasks | configuration | n | success | vs plain (95% CI) | runs with a tool call "
        "| tool calls | output tokens | output vs plain | input tokens | cost vs plain |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    checks: list[str] = []
    for group, members in groups(rows).items():
        try:
            summaries = summarize_bench(members, configs, baseline=plain)
        except ValueError:  # a group with no task run by every configuration yet
            continue
        ids = common_ids(members, configs)
        for s in summaries:
            mine = [r for r in members if r.method == s.method and r.id in ids]
            calls = sum(r.tool_calls for r in mine) / len(mine)
            out.append(
                f"| {group} | {s.method} | {s.n} | {s.accuracy:.1%} | {100 * s.diff:+.1f} "
                f"[{100 * s.diff_low:+.1f}, {100 * s.diff_high:+.1f}] | "
                f"{tool_rate(members, s.method, ids):.0%} | {calls:.2f} | {s.output_tokens:.1f} "
                f"| {s.output_ratio or 0:.2f} | {s.input_tokens:.0f} | {s.cost_ratio or 0:.2f} |"
            )
        if group == "all":
            checks = target_lines(members, summaries, ids)
    return [*out, "", *checks]


def target_lines(rows: list[AgentRow], summaries: list[MethodSummary], ids: set[str]) -> list[str]:
    plain, *rest = summaries
    rate = tool_rate(rows, plain.method, ids)
    out = [
        f"- plain `{plain.method}`: runs with a tool call {rate:.0%} (target >= "
        f"{PLAIN_TOOL_RATE:.0%}): {mark(rate >= PLAIN_TOOL_RATE - EPS)}; success "
        f"{plain.accuracy:.1%} (target >= {PLAIN_SUCCESS:.0%}): "
        f"{mark(plain.accuracy >= PLAIN_SUCCESS - EPS)}"
    ]
    for s in rest:
        mine = tool_rate(rows, s.method, ids)
        ratio = s.output_ratio or 9
        out.append(
            f"- `{s.method}`: runs with a tool call {mine:.0%} (target >= plain's {rate:.0%}): "
            f"{mark(mine >= rate - EPS)}; success {100 * s.diff:+.1f} (target >= "
            f"{100 * TALE_MIN_DIFF:+.0f}): {mark(s.diff >= TALE_MIN_DIFF - EPS)}; CI low "
            f"{100 * s.diff_low:+.1f} (target > {100 * TALE_MIN_LOW:+.0f}): "
            f"{mark(s.diff_low > TALE_MIN_LOW)}; output {ratio:.2f}x (target <= "
            f"{TALE_MAX_OUTPUT:.2f}x): {mark(ratio <= TALE_MAX_OUTPUT + EPS)}"
        )
    return out


def report_framework(framework: str) -> list[str]:
    path = RESULTS / f"agents-tools-r2-heldout-{framework}.jsonl"
    if not path.exists():
        return [f"## {framework}", "", "not run yet", ""]
    rows = load_agent_rows(path)
    configs = sorted({r.method for r in rows})
    out = [f"## {framework}", "", f"Rows: `{path.name}`, model `{rows[0].model}`.", ""]
    for plain in (c for c in configs if TALE_PART not in c):
        tale = plain + TALE_PART
        out += [*pair_lines(rows, plain, tale if tale in configs else None), ""]
    return out


def main(argv: list[str]) -> int:
    text = "\n".join(line for framework in FRAMEWORKS for line in report_framework(framework))
    print(text)
    (RESULTS / "agents-tools-r2-heldout.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
