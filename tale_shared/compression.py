"""TokenSkip-style chain-of-thought compression (Xia et al., 2025).

Score how important each token of a CoT is, keep the tokens above the gamma-quantile in their
original order, and build training data: question, then the ratio between two separators, and
as target the compressed CoT followed by the uncompressed final answer.

The default scorer runs on the CPU with no model: digits, operators, equations and step markers
are always kept, numbers are never broken apart, and connectives ("so", "since", "the") go
first. Pass any :class:`ImportanceScorer` (for example an LLMLingua-2 token classifier) instead.

Example:
    >>> compress("First, we know that Tom has 3 apples, so 3 + 5 = 8 apples.", 0.6)
    'First, Tom 3 apples 3 + 5 = 8 apples'
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Protocol

RATIOS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
SEPARATOR = "<|eot_id|>"
"""The reference implementation's separator around the ratio."""

# words, numbers (with their commas, decimals and units glued on), or single symbols
_TOKEN = re.compile(r"\$?\d[\d,]*(?:\.\d+)?%?|[A-Za-z]+(?:'[a-z]+)?|\[\[|\]\]|\S")
_STEP = re.compile(r"^(?:step|first|second|third|finally|\d+\.)$", re.I)
_OPERATOR = set("+-*/=×÷<>%()^")
_FILLER = {
    "so",
    "since",
    "the",
    "a",
    "an",
    "that",
    "this",
    "we",
    "know",
    "need",
    "to",
    "of",
    "is",
    "are",
    "be",
    "will",
    "can",
    "then",
    "now",
    "let's",
    "lets",
    "let",
    "us",
    "which",
    "thus",
    "therefore",
    "it",
    "in",
    "for",
    "and",
    "as",
    "by",
    "with",
    "on",
    "at",
    "there",
    "first",
    "next",
    "also",
    "just",
    "calculate",
    "find",
    "determine",
    "have",
    "has",
    "was",
    "were",
}


class ImportanceScorer(Protocol):
    """Scores the importance of each token (higher: keep); ``inf`` means always keep."""

    def __call__(self, tokens: Sequence[str]) -> list[float]: ...


def tokenize(text: str) -> list[str]:
    """Word-level tokens; a number with its commas and decimals is one token."""
    return _TOKEN.findall(text)


def _always_keep(tokens: Sequence[str], i: int) -> bool:
    tok = tokens[i]
    if any(ch.isdigit() for ch in tok) or tok in _OPERATOR or tok in ("[[", "]]"):
        return True
    # a step marker opening a sentence ("Step", "First", "2.")
    return bool(_STEP.match(tok)) and (i == 0 or tokens[i - 1] in (".", ":"))


def rule_scorer(tokens: Sequence[str]) -> list[float]:
    """The CPU default: numbers, operators, equation parts and step markers always stay."""
    scores = []
    for i, tok in enumerate(tokens):
        low = tok.lower()
        neighbours = tokens[max(0, i - 1) : i + 2]
        if _always_keep(tokens, i):
            scores.append(math.inf)
        elif any(n in _OPERATOR for n in neighbours if n != tok):
            scores.append(3.0)  # a word inside an equation ("apples = 8")
        elif low in _FILLER:
            scores.append(0.0)
        elif tok in ",.;:":
            scores.append(1.0)
        else:
            scores.append(2.0 + min(len(tok), 8) / 8)  # content words, longer ones first
    return scores


def _detokenize(tokens: Sequence[str]) -> str:
    text = " ".join(tokens)
    text = re.sub(r"\s+([,.;:!?%)\]])", r"\1", text)
    text = re.sub(r"([(\[$])\s+", r"\1", text)
    return text.strip().lstrip(",.;: ")


def compress(cot: str, ratio: float, scorer: ImportanceScorer = rule_scorer) -> str:
    """Keep about ``ratio`` of the CoT's tokens: the most important, in their original order."""
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    tokens = tokenize(cot)
    if ratio == 1 or not tokens:
        return cot.strip()
    scores = scorer(tokens)
    if len(scores) != len(tokens):
        raise ValueError("the scorer returned a score count different from the token count")
    keep_n = max(1, math.ceil(ratio * len(tokens)))
    must = {i for i, score in enumerate(scores) if score == math.inf}
    # "always keep" tokens win over the ratio; the rest fill what the ratio leaves, by score
    rest = sorted((i for i in range(len(tokens)) if i not in must), key=lambda i: (-scores[i], i))
    keep = must | set(rest[: max(keep_n - len(must), 0)])
    return _detokenize([tokens[i] for i in sorted(keep)])


def training_example(
    question: str, cot: str, answer: str, ratio: float, scorer: ImportanceScorer = rule_scorer
) -> dict[str, Any]:
    """One TokenSkip example: ratio 1.0 means the bare question as input."""
    prompt = question if ratio == 1.0 else f"{question}{SEPARATOR}{ratio}{SEPARATOR}"
    body = compress(cot, ratio, scorer)
    return {
        "prompt": prompt,
        "completion": f"{body}\nThe final answer is: [[{answer}]]",
        "ratio": ratio,
    }
