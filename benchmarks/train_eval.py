"""Before/after table for a trained adapter: the same items, methods and decoding, base model
rows against the tuned model's (``tale bench --lora ADAPTER.gguf`` on a subset of the items).

    tale train sft runs/sft.jsonl --base qwen2.5-coder-1.5b --out runs/tale-pt-sft
    tale train gguf runs/tale-pt-sft/adapter --out runs/tale-pt-sft.gguf
    tale bench --lora runs/tale-pt-sft.gguf --data ../shared/data/gsm8k/test.norm.jsonl \\
        --limit 60 --seed 0 --methods vanilla --out benchmarks/results/tale-pt-sft-gsm8k-test.jsonl
    python benchmarks/train_eval.py benchmarks/results/bench-gsm8k-test.jsonl \\
        benchmarks/results/tale-pt-sft-gsm8k-test.jsonl --methods vanilla --reference tale

Rows are paired by item: only items both files answered are compared, and the paired
difference to the base model's vanilla is reported with its 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tale_shared.research.bench import bench_table, load_rows, plot_pareto, summarize_bench
from tale_shared.research.recipes import record_evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", help="bench JSONL of the base model")
    parser.add_argument("after", help="bench JSONL of the tuned model")
    parser.add_argument("--methods", default="vanilla", help="methods of both runs")
    parser.add_argument("--reference", default="", help="methods of the base run only")
    parser.add_argument("--table", default=None, help="write the Markdown table here")
    parser.add_argument("--plot", default=None, help="write the accuracy/tokens plot here")
    parser.add_argument("--card", default=None, help="adapter folder: add the table to its card")
    args = parser.parse_args()
    methods = args.methods.split(",")
    after = load_rows(args.after)
    ids = {r.id for r in after}
    rows = [r for r in load_rows(args.before) if r.id in ids]
    for r in after:
        rows.append(r.model_copy(update={"method": f"{r.method} (tuned)"}))
    reference = [m for m in args.reference.split(",") if m]
    names = methods + reference + [f"{m} (tuned)" for m in methods]
    summaries = summarize_bench(rows, names, baseline="vanilla")
    table = bench_table(summaries)
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
