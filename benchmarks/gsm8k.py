"""Accuracy and tokens of vanilla CoT against TALE, same model, same questions, one run.

    python benchmarks/gsm8k.py --data ../shared/data/gsm8k/test.norm.jsonl --limit 30 \
        --out runs/bench-gsm8k.jsonl [--model qwen2.5-coder-1.5b] [--methods vanilla,tale-heuristic]

Methods: ``vanilla`` (the paper's CoT prompt), ``tale-<estimator>`` (estimator: heuristic,
regression, zero-shot or fixed:N; the model profile's style), ``tale-<estimator>@<style>``.
Every call a method makes is counted, the estimator's included. Results are appended per
item and method, so a rerun resumes. The summary gives ratios against vanilla from the
same run; --plot draws accuracy against mean tokens.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tale_shared._io import JsonlAppender, iter_json_lines
from tale_shared.answers import is_correct
from tale_shared.estimators import make_estimator
from tale_shared.pipeline import TalePipeline
from tale_shared.research._tables import markdown_table
from tale_shared.research.cli import load_model
from tale_shared.research.datasets import load_items, sample_items


def pipeline_for(method: str, model, max_tokens: int) -> TalePipeline:  # type: ignore[no-untyped-def]
    if method == "vanilla":
        return TalePipeline.vanilla(model, max_tokens=max_tokens)
    if method in ("direct", "chain-of-draft"):
        return TalePipeline(model, None, style=method, max_tokens=max_tokens)
    spec = method.removeprefix("tale-")
    spec, _, style = spec.partition("@")
    return TalePipeline(
        model, make_estimator(spec, model), style=style or None, max_tokens=max_tokens
    )


def done_keys(out: Path) -> set[tuple[str, str]]:
    if not out.exists():
        return set()
    return {
        (row["method"], row["id"])
        for _, row, _ in iter_json_lines(out)  # a line cut by a crash is run again
        if isinstance(row, dict) and "method" in row and "id" in row
    }


def summarize(out: Path, methods: list[str]) -> str:
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    ids = set.intersection(*({r["id"] for r in rows if r["method"] == m} for m in methods))
    table = {}
    for m in methods:
        mine = [r for r in rows if r["method"] == m and r["id"] in ids]
        table[m] = {
            "n": len(mine),
            "accuracy": statistics.mean(r["correct"] for r in mine),
            "output": statistics.mean(r["output_tokens"] for r in mine),
            "all": statistics.mean(r["total_tokens"] for r in mine),
            "seconds": statistics.mean(r["seconds"] for r in mine),
        }
    base = table[methods[0]]
    return markdown_table(
        [
            "method",
            "n",
            "accuracy",
            "mean output tokens (all calls)",
            "mean total tokens",
            "output vs first",
            "time vs first",
        ],
        (
            [
                m,
                t["n"],
                f"{t['accuracy']:.1%}",
                f"{t['output']:.1f}",
                f"{t['all']:.1f}",
                f"{t['output'] / base['output']:.2f}",
                f"{t['seconds'] / base['seconds']:.2f}",
            ]
            for m, t in table.items()
        ),
    )


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    items = sample_items(load_items(args.data), args.limit, seed=args.seed, offset=args.offset)
    methods = args.methods.split(",")
    model = load_model(args.model)
    done = done_keys(out)
    from tqdm import tqdm

    todo = [(m, it) for it in items for m in methods if (m, it.id) not in done]
    with JsonlAppender(out) as appender:
        for method, item in tqdm(todo, desc="bench", unit="call"):
            result = pipeline_for(method, model, args.max_tokens).solve(item.question)
            rec = result.record
            appender.write(
                {
                    "method": method,
                    "id": item.id,
                    "correct": is_correct(result.text, item.answer),
                    "budget": rec.budget,
                    "output_tokens": rec.usage.output_tokens,
                    "estimator_tokens": rec.estimator_usage.total_tokens,
                    "total_tokens": rec.usage.total_tokens,
                    "seconds": rec.latency_s,
                    "model": model.model_name,
                    "answer": result.answer,
                    "input_tokens": rec.usage.input_tokens,
                    "calls": rec.n_calls,
                    "text": result.text,
                }
            )
    print(summarize(out, methods))
    if args.plot:
        plot(out, methods, args.plot)


def plot(out: Path, methods: list[str], png: str) -> None:
    from tale_shared.research.plots import _pyplot

    plt = _pyplot()
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        x = statistics.mean(r["output_tokens"] for r in mine)
        y = statistics.mean(r["correct"] for r in mine)
        ax.scatter(x, y, s=60, label=f"{m} (n={len(mine)})")
        ax.annotate(
            f"{x:.0f} tok, {y:.0%}", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8
        )
    ax.set_ylim(0, 1)
    ax.set_xlim(left=0)
    ax.set_xlabel("mean output tokens per question (all calls)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    print(f"plot: {png}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="../shared/data/gsm8k/test.norm.jsonl")
    parser.add_argument("--limit", type=int, default=30, help="a seeded sample of N items")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--offset", type=int, default=0, help="sample from the items after the first K"
    )
    parser.add_argument("--out", default="runs/bench-gsm8k.jsonl")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--methods", default="vanilla,tale-heuristic")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--plot", default=None, help="write accuracy vs tokens to this PNG")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
