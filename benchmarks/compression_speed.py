"""How long ``compress()`` takes as a tool result grows: English, CJK, JSON and code, 10 KB to
1 MB, at ratio 0.5 with the rule scorer and tale's default counter (tiktoken o200k).

    python benchmarks/compression_speed.py --out benchmarks/results/compression-speed.json \\
        --plot benchmarks/results/compression-speed.png
"""

from __future__ import annotations

import argparse
import json
import random
import time

from tale_shared._io import atomic_writer
from tale_shared.compression import compress, kept_ratio

SIZES_KB = (10, 30, 100, 300, 1000)


ENGLISH_WORDS = [
    "the",
    "store",
    "sold",
    "apples",
    "pears",
    "and",
    "12",
    "boxes",
    "of",
    "3.5",
    "kg",
    "each",
    "so",
    "that",
    "total",
    "was",
]
CJK_PIECES = [
    "汤姆买了",
    "三个苹果",
    "每个两美元",
    "所以他一共付了",
    "六美元",
    "然后",
    "又买了五个梨",
]


def _english(rng: random.Random) -> str:
    return " ".join(rng.choices(ENGLISH_WORDS, k=12)) + ". "


def _cjk(rng: random.Random) -> str:
    return "".join(rng.choices(CJK_PIECES, k=6)) + "。"


def _json(rng: random.Random) -> str:
    n = rng.randrange(10_000)
    return json.dumps({"id": n, "name": f"item {n}", "price": n * 1.5, "tags": ["a", "b"]}) + ","


def _code(rng: random.Random) -> str:
    n = rng.randrange(1000)
    return (
        f"def f_{n}(x):\n    if x > {n}:\n        return x * {n} + 1\n    return f_{n}(x + 1)\n\n"
    )


KINDS = {"english": _english, "cjk": _cjk, "json": _json, "code": _code}


def text_of(kind: str, kb: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < kb * 1000:
        piece = KINDS[kind](rng)
        parts.append(piece)
        size += len(piece.encode("utf-8"))
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES_KB)), help="KB, comma-separated")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--out", help="rows as JSON")
    parser.add_argument("--plot", help="seconds vs size, log-log (needs matplotlib)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    compress("warm the tokenizer up: 1 + 2 = 3", 0.5)
    rows = []
    print("| text | KB | seconds | MB/s | kept ratio |\n|---|---|---|---|---|")
    for kind in KINDS:
        for kb in sizes:
            text = text_of(kind, kb)
            start = time.perf_counter()
            short = compress(text, args.ratio)
            seconds = time.perf_counter() - start
            row = {
                "kind": kind,
                "kb": kb,
                "seconds": seconds,
                "kept_ratio": kept_ratio(text, short),
            }
            rows.append(row)
            print(
                f"| {kind} | {kb} | {seconds:.2f} | {kb / 1000 / seconds:.2f} "
                f"| {row['kept_ratio']:.3f} |",
                flush=True,
            )
    if args.out:
        with atomic_writer(args.out) as fh:
            json.dump(rows, fh, indent=1)
    if args.plot:
        from tale_shared.research.plots import _pyplot

        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        for kind in KINDS:
            mine = [r for r in rows if r["kind"] == kind]
            ax.plot([r["kb"] for r in mine], [r["seconds"] for r in mine], "o-", label=kind)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("tool result size (KB)")
        ax.set_ylabel(f"seconds to compress to {args.ratio}")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", lw=0.3)
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
