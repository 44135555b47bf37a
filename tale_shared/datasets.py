"""Reading question/answer files: ``{"id", "question", "answer"}`` JSONL (GSM8K raw works too)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel


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
    """Items of a JSONL file; ``id`` defaults to ``<file stem>-<line number>``."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n + 1} is not valid JSON: {exc}") from exc
            if "question" not in row or "answer" not in row:
                raise ValueError(f"{path}:{n + 1} needs 'question' and 'answer' fields")
            yield Item(
                id=str(row.get("id", f"{path.stem}-{n}")),
                question=row["question"],
                answer=_gold(row["answer"]),
            )


def load_items(path: str | Path, limit: int | None = None) -> list[Item]:
    items: list[Item] = []
    for item in iter_items(path):
        if limit is not None and len(items) >= limit:
            break
        items.append(item)
    return items
