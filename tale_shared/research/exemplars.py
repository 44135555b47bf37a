"""Concise exemplars from search results: the model's own short, correct answers.

``tale exemplars RUNS --k 4 --out FILE`` picks, from the items of a search file (training
items only), the shortest answers produced under an optimal budget that are correct and show
at least two calculations, and writes them in the format :func:`tale_shared.methods.
load_exemplars` reads. The final answer is rewritten into the ``[[answer]]`` form the prompts
ask for. The packaged ``tale_shared/data/exemplars-gsm8k-train.json`` was made this way from
``benchmarks/results/search-gsm8k-train.jsonl`` (GSM8K train items 0-99).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from tale_shared._io import atomic_writer
from tale_shared.answers import is_correct
from tale_shared.methods import Exemplar
from tale_shared.research.search import SearchResult

_SINGLE_BRACKETS = re.compile(r"(?<!\[)\[([^\[\]\n]+)\](?!\])")


def with_bracketed_answer(text: str, gold: str) -> str:
    """``text`` whose last line states the answer as ``[[gold]]``.

    >>> with_bracketed_answer("2 + 2 = 4\\nFinal answer: [4 apples]", "4")
    '2 + 2 = 4\\nFinal answer: [[4]]'
    >>> with_bracketed_answer("So she pays $5.", "5")
    'So she pays $5. [[5]]'
    """
    lines = text.strip().splitlines()
    last = lines[-1]
    if "[[" in last:
        return text.strip()
    if _SINGLE_BRACKETS.search(last):
        lines[-1] = _SINGLE_BRACKETS.sub(f"[[{gold}]]", last, count=1)
    else:
        lines[-1] = f"{last.rstrip()} [[{gold}]]"
    return "\n".join(lines)


def select_exemplars(results: Iterable[SearchResult], k: int = 4) -> list[Exemplar]:
    """The ``k`` shortest correct optimal-budget answers with at least two calculations."""
    usable = [
        r
        for r in results
        if r.found
        and r.optimal_text
        and r.optimal_text.count("=") >= 2
        and len(r.optimal_text.strip().splitlines()) >= 2
        and is_correct(r.optimal_text, r.gold)
    ]
    usable.sort(key=lambda r: (r.optimal_tokens or 0, r.id))
    return [
        Exemplar(r.question, with_bracketed_answer(r.optimal_text or "", r.gold), r.optimal_budget)
        for r in usable[:k]
    ]


def save_exemplars(exemplars: list[Exemplar], out: str | Path) -> Path:
    path = Path(out)
    rows = [
        {"question": e.question, "reasoning": e.reasoning, "budget": e.budget} for e in exemplars
    ]
    with atomic_writer(path) as fh:
        fh.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    return path
