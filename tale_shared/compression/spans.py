"""Word-level tokens of a chain of thought, with their offsets: what compression scores and
keeps. A number with its commas, decimals and units is one token, never split.

Example:
    >>> tokenize("Tom has $1,200.50, so 3+5=8.")
    ['Tom', 'has', '$1,200.50', ',', 'so', '3', '+', '5', '=', '8', '.']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# words, numbers (with their commas, decimals and units glued on), or single symbols
_TOKEN = re.compile(r"\$?\d[\d,]*(?:\.\d+)?%?|[A-Za-z]+(?:'[a-z]+)?|\[\[|\]\]|\S")


@dataclass(frozen=True)
class Span:
    """One word-level token of a text and where it lies (``text[start:end]``)."""

    text: str
    start: int
    end: int


def spans(text: str) -> list[Span]:
    """The word-level tokens of ``text`` with their offsets."""
    return [Span(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def tokenize(text: str) -> list[str]:
    """Word-level tokens; a number with its commas and decimals is one token."""
    return [s.text for s in spans(text)]
