"""Reading question/answer files: ``{"id", "question", "answer"}`` JSONL (GSM8K raw works too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from tale_shared._io import iter_json_lines


class Item(BaseModel):
    """One question with its gold answer."""

    id: str
    question: str
    answer: str


def _gold(answer: object) -> str:
    text = str(answer)
    # raw GSM8K: the worked solution, then "#### 72"
    return text.rsplit("####", 1)[1].strip().replace(",", "") if "####" in text else text.strip()


def iter_items(path: str | Path) -> Iterator[Item]:
    """Items of a JSONL file; ``id`` defaults to ``<file stem>-<line index>``. A line that is
    not a JSON object with ``question`` and ``answer`` raises ``ValueError`` naming it."""
    path = Path(path)
    for n, row, problem in iter_json_lines(path):
        where = f"{path}:{n}"
        if problem is not None:
            raise ValueError(f"{where} is {problem}")
        if not isinstance(row, dict):
            raise ValueError(f"{where} is a JSON {type(row).__name__}, not an object")
        if "question" not in row or "answer" not in row:
            raise ValueError(f"{where} needs 'question' and 'answer' fields")
        if not isinstance(row["question"], str) or not row["question"].strip():
            raise ValueError(f"{where}: 'question' must be non-empty text")
        yield Item(
            id=str(row.get("id", f"{path.stem}-{n - 1}")),
            question=row["question"],
            answer=_gold(row["answer"]),
        )


def load_items(path: str | Path, limit: int | None = None) -> list[Item]:
    """The items of a JSONL file (the first ``limit``); a file with none raises
    ``ValueError`` (a job over no items would only write an empty output)."""
    items: list[Item] = []
    for item in iter_items(path):
        if limit is not None and len(items) >= limit:
            break
        items.append(item)
    if not items and limit != 0:
        raise ValueError(f"{path} holds no items")
    return items


def sample_items(items: list[Item], n: int | None, *, seed: int = 0, offset: int = 0) -> list[Item]:
    """A fixed, seeded sample of ``n`` items from ``items[offset:]``, in file order (all of
    them when ``n`` is ``None``). The same arguments always give the same items.

    >>> pool = [Item(id=str(i), question="q", answer="1") for i in range(10)]
    >>> [i.id for i in sample_items(pool, 3, seed=1, offset=5)]
    ['5', '6', '9']
    """
    import random

    pool = items[offset:]
    if n is None or n >= len(pool):
        return pool
    keep = set(random.Random(seed).sample(range(len(pool)), n))
    return [item for i, item in enumerate(pool) if i in keep]
