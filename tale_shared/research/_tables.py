"""Markdown tables for the reports the CLI and the benchmarks print."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub Markdown table; cells are written with ``str``, so format numbers first.

    Example:
        >>> print(markdown_table(["style", "r"], [["words", "0.69"]]))
        | style | r |
        |---|---|
        | words | 0.69 |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
