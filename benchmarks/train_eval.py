"""Before/after table for a trained adapter: the base model's rows against the tuned model's
(``tale bench --lora ADAPTER.gguf``) on the same items.

    tale train sft runs/sft.jsonl --base qwen2.5-coder-1.5b --out runs/tale-pt-sft
    tale train gguf runs/tale-pt-sft/adapter --out runs/tale-pt-sft.gguf
    tale bench --lora runs/tale-pt-sft.gguf --data ../shared/data/gsm8k/test.norm.jsonl \\
        --limit 60 --seed 0 --methods vanilla --out benchmarks/results/tale-pt-sft-gsm8k-test.jsonl
    python benchmarks/train_eval.py benchmarks/results/bench-gsm8k-test.jsonl \\
        benchmarks/results/tale-pt-sft-gsm8k-test.jsonl --methods vanilla --reference tale

TokenSkip (``benchmarks/tokenskip_runs.sh report``): the tuned model's ``tokenskip@<gamma>``
rows beside the base model's vanilla and TALE default, with the output ratio each gamma
actually gave (against the tuned model's gamma 1.0, as the paper reports it, and against the
base model's vanilla)::

    python benchmarks/train_eval.py benchmarks/results/heldout-gsm8k-test.jsonl \\
        benchmarks/results/tokenskip-gsm8k-test.jsonl \\
        --methods tokenskip@1.0,tokenskip@0.7,tokenskip@0.5 --before-methods vanilla,tale

Rows are paired by item: only items every compared method answered are used, and each
difference to the base model's vanilla is reported with its 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from tale_shared.research._tables import markdown_table
from tale_shared.research.bench import (
    MethodSummary,
    bench_table,
    load_rows,
    plot_pareto,
    summarize_bench,
)
from tale_shared.research.recipes import record_evaluation

TUNED = " (tuned)"
_GAMMA = re.compile(r"^tokenskip@(?P<gamma>[0-9.]+)$")


def ratio_table(summaries: list[MethodSummary], baseline: str) -> str | None:
    """Requested gamma against the output ratio each ``tokenskip@<gamma>`` gave: against the
    tuned model's own gamma 1.0 and against the base model's ``baseline``."""
    by_name = {s.method: s for s in summaries}
    full = by_name.get(f"tokenskip@1.0{TUNED}")
    rows = []
    for s in summaries:
        match = _GAMMA.match(s.method.removesuffix(TUNED))
        if match is None:
            continue
        vs_full = s.output_tokens / full.output_tokens if full and full.output_tokens else None
        rows.append(
            [
                s.method,
                match["gamma"],
                f"{vs_full:.2f}" if vs_full is not None else "-",
                f"{s.output_ratio:.2f}" if s.output_ratio is not None else "-",
                f"{s.output_tokens:.1f}",
            ]
        )
    if not rows:
        return None
    header = ["method", "asked ratio", "actual vs gamma 1.0", f"actual vs {baseline}", "tokens"]
    return markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", help="bench JSONL of the base model")
    parser.add_argument("after", help="bench JSONL of the tuned model")
    parser.add_argument("--methods", default="vanilla", help="methods of the tuned run")
    parser.add_argument(
        "--before-methods",
        default=None,
        help="methods of the base run (default: --methods, plus --reference)",
    )
    parser.add_argument("--reference", default="", help="more methods of the base run only")
    parser.add_argument(
        "--baseline", default="vanilla", help="base-run method(s): the more accurate one wins"
    )
    parser.add_argument("--table", default=None, help="write the Markdown table here")
    parser.add_argument("--plot", default=None, help="write the accuracy/tokens plot here")
    parser.add_argument("--card", default=None, help="adapter folder: add the table to its card")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    before = [m for m in (args.before_methods or args.methods).split(",") if m]
    before += [m for m in args.reference.split(",") if m and m not in before]
    for name in reversed(args.baseline.split(",")):
        if name not in before:
            before.insert(0, name)
    after = [r for r in load_rows(args.after) if r.method in methods]
    ids = {r.id for r in after}
    rows = [r for r in load_rows(args.before) if r.id in ids and r.method in before]
    rows += [r.model_copy(update={"method": f"{r.method}{TUNED}"}) for r in after]
    names = before + [f"{m}{TUNED}" for m in methods]
    summaries = summarize_bench(rows, names, baseline=args.baseline)
    table = bench_table(summaries)
    ratios = ratio_table(summaries, summaries[0].baseline)
    if ratios:
        table += "\n\n" + ratios
    print(table)
    if args.table:
        Path(args.table).write_text(table + "\n", encoding="utf-8")
    if args.card:
        evaluation = {
            "data": args.after,
            "methods": {s.method: s.model_dump() for s in summaries},
        }
        record_evaluation(args.card, evaluation, table)
    if args.plot:
        print(f"plot: {plot_pareto(summaries, args.plot, title='before/after training')}")


if __name__ == "__main__":
    main()
