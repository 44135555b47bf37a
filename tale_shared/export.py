"""TALE-PT data sets from search results: SFT pairs and DPO triples.

Two layouts: ``messages`` (the chat-messages JSONL that fine-tuning services take) and
``trl`` (``prompt``/``completion`` for SFT, ``prompt``/``chosen``/``rejected`` for DPO).
The prompt is the plain question prompt (no budget): the model should learn to be concise
without being told.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from tale_shared.prompts import get_style
from tale_shared.search import SearchResult, load_results

Layout = Literal["messages", "trl"]


def _usable(runs: str | Path) -> Iterator[SearchResult]:
    for r in load_results(runs):
        if r.error is None and r.optimal_text and r.vanilla_text and r.below_vanilla:
            yield r


def _prompt(result: SearchResult) -> str:
    return get_style("vanilla").render(result.question, None)[0].content


def write_jsonl(rows: Iterable[dict[str, Any]], out: str | Path) -> int:
    """Write one JSON object per line to ``out`` (parent folders made); returns the count."""
    n = 0
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def export_sft(runs: str | Path, out: str | Path, *, layout: Layout = "messages") -> int:
    """Plain prompt -> the answer produced under the optimal budget. Returns the row count."""

    def rows() -> Iterator[dict[str, Any]]:
        for r in _usable(runs):
            prompt, answer = _prompt(r), r.optimal_text or ""
            if layout == "messages":
                yield {
                    "messages": [
                        {"role": "user", "content": prompt},
                        {"role": "assistant", "content": answer},
                    ]
                }
            else:
                yield {"prompt": prompt, "completion": answer}

    return write_jsonl(rows(), out)


def export_dpo(runs: str | Path, out: str | Path, *, layout: Layout = "messages") -> int:
    """chosen = the budgeted answer, rejected = the vanilla answer. Returns the row count."""

    def rows() -> Iterator[dict[str, Any]]:
        for r in _usable(runs):
            prompt = _prompt(r)
            if layout == "messages":
                yield {
                    "input": {"messages": [{"role": "user", "content": prompt}]},
                    "preferred_output": [{"role": "assistant", "content": r.optimal_text}],
                    "non_preferred_output": [{"role": "assistant", "content": r.vanilla_text}],
                }
            else:
                yield {"prompt": prompt, "chosen": r.optimal_text, "rejected": r.vanilla_text}

    return write_jsonl(rows(), out)
