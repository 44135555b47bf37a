"""Recoverability of compressed CoTs (issue: TokenSkip end to end), resumable.

    python benchmarks/compression.py [--limit 30] [--model qwen2.5-coder-1.5b]

Takes the default model's correct CoTs on GSM8K train items from the search results
(benchmarks/results/search-gsm8k-train.jsonl), compresses each to 0.9/0.7/0.5 with the rule
scorer and the SmolLM2 surprisal scorer, and against random deletion and truncation, and asks
the model for the final answer from the question and the compressed CoT. Writes rows to
benchmarks/results/recover-gsm8k-train.jsonl, the table (.md) and a plot (.png).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tale_shared.compression import SurprisalScorer, rule_scorer
from tale_shared.loading import load_model
from tale_shared.research.recoverability import (
    load_recover_rows,
    plot_recoverability,
    recoverability_table,
    run_recoverability,
    summarize_recoverability,
)
from tale_shared.research.search import SearchResult

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--search", default=str(RESULTS / "search-gsm8k-train.jsonl"))
    parser.add_argument("--out", default=str(RESULTS / "recover-gsm8k-train.jsonl"))
    args = parser.parse_args()
    results = [
        SearchResult.model_validate_json(line)
        for line in Path(args.search).read_text().splitlines()
        if line.strip()
    ]
    usable = [r for r in results if r.vanilla_correct and r.vanilla_text][: args.limit]
    scorers = {"rule": rule_scorer, "surprisal": SurprisalScorer("smollm2-135m")}
    run_recoverability(load_model(args.model), usable, [0.9, 0.7, 0.5], scorers, args.out)
    summaries = summarize_recoverability(load_recover_rows(args.out))
    table = recoverability_table(summaries)
    Path(args.out).with_suffix(".md").write_text(table + "\n")
    plot_recoverability(summaries, Path(args.out).with_suffix(".png"))
    print(table)


if __name__ == "__main__":
    main()
