"""Training throughput of `tale train` on this machine (tokens/s), for planning a real run.

    python benchmarks/train_throughput.py --base smollm2-135m --data sft.jsonl [--steps 6]

Runs a few LoRA SFT steps (the TALE-PT defaults, batch 1) from the embedded model's GGUF,
dequantised by transformers, and prints tokens per second and the time a full run would take.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from tale_shared.research.recipes import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="smollm2-135m")
    parser.add_argument("--data", required=True)
    parser.add_argument("--kind", default="sft")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--examples", type=int, default=300, help="for the estimate")
    parser.add_argument("--epochs", type=float, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(
            args.kind,
            args.data,
            base=args.base,
            out=out,
            max_steps=args.steps,
            grad_accum=1,
            save_steps=10_000,
        )
        started = time.perf_counter()
        adapter = train(cfg, progress=False)
        wall = time.perf_counter() - started
        import json

        card = json.loads((adapter / "tale-card.json").read_text())
    metrics = card["train_metrics"]
    runtime = float(metrics["train_runtime"])
    from tale_shared.research.recipes import examples_tokens, load_base

    _, tokenizer = load_base(args.base)
    lengths = list(examples_tokens(args.data, args.kind, tokenizer))
    mean_len = sum(lengths) / len(lengths)
    tokens = mean_len * args.steps  # batch 1: one example per step
    rate = tokens / runtime
    full = args.examples * args.epochs * mean_len / rate
    print(
        f"base {args.base}: {args.steps} steps in {runtime:.1f} s (wall {wall:.1f} s with loading)"
    )
    print(f"~{rate:.0f} training tokens/s (mean example {mean_len:.0f} tokens)")
    print(f"a run on {args.examples} examples x {args.epochs} epochs: ~{full / 60:.0f} min")


if __name__ == "__main__":
    main()
