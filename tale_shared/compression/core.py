"""TokenSkip-style chain-of-thought compression (Xia et al., 2025): the text side.

Split a CoT into word-level tokens (a number with its commas and decimals is one token, never
broken), score each with an :class:`~tale_shared.compression.scorers.ImportanceScorer`, keep
the most important in their original order until the kept text holds ``ratio`` of the
original's tokens *in the target model's tokenizer*, and put the text back together with its
line breaks and step layout.

TokenSkip's data and its inference share one prompt layout, :func:`tokenskip_prompt`: the
question, then the ratio between two separators.

Bad input: a ratio outside (0, 1] is a ``ValueError``; an empty CoT comes back empty and a
one-token CoT whole (nothing to skip); a scorer that raises, returns the wrong number of
scores or NaN raises :class:`ScorerError`.

Example:
    >>> compress("First, we know that Tom has 3 apples, so 3 + 5 = 8 apples.", 0.6)
    'First 3 apples 3 + 5 = 8 apples'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from tale_shared.compression.scorers import ImportanceScorer, rule_scorer
from tale_shared.compression.spans import Span, spans

RATIOS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
"""The ratios TokenSkip trains on (the reference implementation's)."""
SEPARATOR = "<|eot_id|>"
"""The reference implementation's separator around the ratio."""

_NO_SPACE_BEFORE = set(",.;:!?%)]")


class ScorerError(ValueError):
    """An importance scorer failed or gave unusable scores."""


def tokenskip_prompt(question: str, ratio: float) -> str:
    """The prompt TokenSkip trains and infers with: the bare question at ratio 1.0, else the
    question, the separator, the ratio, the separator. Training data and inference both call
    this, so they cannot drift apart.

    >>> tokenskip_prompt("Q?", 0.7)
    'Q?<|eot_id|>0.7<|eot_id|>'
    """
    check_ratio(ratio)
    return question if ratio == 1.0 else f"{question}{SEPARATOR}{ratio}{SEPARATOR}"


def tokenskip_cap(max_tokens: int | None, ratio: float) -> int | None:
    """TokenSkip's output cap: ``max_tokens`` scaled by the ratio (``None`` stays ``None``).

    >>> tokenskip_cap(512, 0.7)
    359
    """
    check_ratio(ratio)
    return math.ceil(max_tokens * ratio) if max_tokens else None


def check_ratio(ratio: float) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise ValueError(f"ratio (gamma) must be in (0, 1], got {ratio!r}")
    return float(ratio)


def check_trained_ratio(ratio: float, trained: Sequence[float] = RATIOS) -> float:
    """``ratio`` if a TokenSkip model was trained on it; a clear error otherwise (a tuned model
    only knows the ratios its data had)."""
    ratio = check_ratio(ratio)
    if not any(math.isclose(ratio, t) for t in trained):
        known = ", ".join(str(t) for t in sorted(trained, reverse=True))
        raise ValueError(f"gamma {ratio} was not trained: the model knows {known}")
    return ratio


def _scores(scorer: ImportanceScorer, text: str, tokens: list[Span]) -> list[float]:
    try:
        score_spans = getattr(scorer, "score_spans", None)
        if callable(score_spans):
            scores = list(score_spans(text, tokens))
        else:
            scores = list(scorer([t.text for t in tokens]))
    except ScorerError:
        raise
    except Exception as exc:
        raise ScorerError(f"the importance scorer failed: {exc!r}") from exc
    if len(scores) != len(tokens):
        raise ScorerError(f"the scorer returned {len(scores)} scores for {len(tokens)} tokens")
    if any(isinstance(s, float) and math.isnan(s) for s in scores):
        raise ScorerError("the scorer returned NaN scores")
    return scores


def _join(text: str, kept: Sequence[Span]) -> str:
    """The kept tokens as text: a line break wherever the original had one between two kept
    tokens (so steps stay on their lines), tokens that touched in the original still touch
    ("3+5", "apples."), closing punctuation needs no space, else one space."""
    out: list[str] = []
    prev: Span | None = None
    for span in kept:
        if prev is not None:
            gap = text[prev.end : span.start]
            if "\n" in gap:
                out.append("\n" * min(gap.count("\n"), 2))
            elif gap and span.text[0] not in _NO_SPACE_BEFORE:
                out.append(" ")
        out.append(span.text)
        prev = span
    return "".join(out).strip().lstrip(",.;: ")


def compress(
    cot: str,
    ratio: float,
    scorer: ImportanceScorer = rule_scorer,
    *,
    count: Callable[[str], int] | None = None,
) -> str:
    """Keep about ``ratio`` of the CoT's tokens: the most important, in their original order.

    ``count`` counts tokens in the target model's tokenizer (by default tale's offline
    tiktoken counter); the ratio is met in those tokens. Tokens the scorer marks ``inf``
    (numbers, operators, step markers for the rule scorer) are always kept, even past the
    ratio.
    """
    ratio = check_ratio(ratio)
    tokens = spans(cot)
    if ratio == 1 or len(tokens) <= 1:
        return cot.strip()
    scores = _scores(scorer, cot, tokens)
    if count is None:
        from tale_shared.tokens import count_tokens

        count = count_tokens
    total = max(1, count(cot))
    must = {i for i, score in enumerate(scores) if score == math.inf}
    order = sorted((i for i in range(len(tokens)) if i not in must), key=lambda i: (-scores[i], i))
    # the rest fill what the ratio leaves, most important first: a first pass by each token's
    # own count, then a correction on the joined text's real count (tokens merge or split
    # differently once their neighbours are gone)
    weights = _token_weights(tokens, count)
    kept_weight = sum(weights[i] for i in must)
    n = 0
    while n < len(order) and kept_weight + weights[order[n]] / 2 <= ratio * total:
        kept_weight += weights[order[n]]
        n += 1

    def actual(k: int) -> float:
        chosen = sorted(must | set(order[:k]))
        return count(_join(cot, [tokens[i] for i in chosen])) / total

    # the correction: the kept share grows with k, so a bisection finds the k the ratio asks
    # for in O(log n) counts of the joined text (a step-by-step walk re-counted the whole
    # text per token: quadratic, minutes for a large tool result)
    high, low = ratio + RATIO_TOLERANCE, ratio - RATIO_TOLERANCE
    now = actual(n)
    if now > high:  # too much kept: the largest k <= n still within the upper bound
        n = max(0, _last(0, n - 1, lambda k: actual(k) <= high))
    elif now < low and n < len(order):  # too little: the first k >= n reaching the lower bound
        first = _last(n + 1, len(order), lambda k: actual(k) < low) + 1
        n = first if first <= len(order) and actual(first) <= high else first - 1
    keep = must | set(order[:n])
    if not keep:
        keep = {order[0]}
    return _join(cot, [tokens[i] for i in sorted(keep)])


RATIO_TOLERANCE = 0.02
"""How far the kept share may be from the asked ratio before the choice is corrected."""


def _last(lo: int, hi: int, ok: Callable[[int], bool]) -> int:
    """The largest k in ``[lo, hi]`` with ``ok(k)``, for a predicate true up to some k and
    false after it; ``lo - 1`` when it holds for none."""
    found = lo - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if ok(mid):
            found, lo = mid, mid + 1
        else:
            hi = mid - 1
    return found


def _token_weights(tokens: Sequence[Span], count: Callable[[str], int]) -> list[int]:
    """Each token's own count in the target tokenizer, each distinct text counted once."""
    seen: dict[str, int] = {}
    weights = []
    for t in tokens:
        weight = seen.get(t.text)
        if weight is None:
            weight = seen[t.text] = max(1, count(" " + t.text))
        weights.append(weight)
    return weights


def kept_ratio(original: str, compressed: str, count: Callable[[str], int] | None = None) -> float:
    """The share of ``original``'s tokens (in ``count``'s tokenizer) that ``compressed`` has."""
    if count is None:
        from tale_shared.tokens import count_tokens

        count = count_tokens
    total = count(original)
    return count(compressed) / total if total else 1.0


def training_example(
    question: str,
    cot: str,
    answer: str,
    ratio: float,
    scorer: ImportanceScorer = rule_scorer,
    *,
    count: Callable[[str], int] | None = None,
) -> dict[str, Any]:
    """One TokenSkip example: the prompt from :func:`tokenskip_prompt`, the compressed CoT and
    the uncompressed final answer as the target."""
    body = compress(cot, ratio, scorer, count=count)
    return {
        "prompt": tokenskip_prompt(question, ratio),
        "completion": f"{body}\nThe final answer is: [[{answer}]]",
        "ratio": ratio,
    }
