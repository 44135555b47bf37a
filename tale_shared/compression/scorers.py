"""Importance scorers for :func:`~tale_shared.compression.compress`: how much each word-level
token of a CoT matters (higher: keep; ``inf``: always keep).

============================ ====================================== ======================
scorer                       how                                    needs
============================ ====================================== ======================
:func:`rule_scorer`          numbers, operators, step markers stay;  nothing (the default)
                             connectives ("so", "the") go first
:class:`SurprisalScorer`     -log p of each token under a small      ``tale-reasoning[local]``
                             causal LM (Selective Context,
                             LLMLingua-1), summed over a word
:class:`LLMLingua2Scorer`    a token classifier's keep probability   ``llmlingua`` or
                             (LLMLingua-2, as TokenSkip used)        ``transformers`` + a
                                                                     local model path
============================ ====================================== ======================

The model scorers score model tokens and sum them over each word, so a number or an
equation part is kept or dropped whole; with ``protect_numbers`` (the default) numbers and
operators are always kept, as the rule scorer does.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from tale_shared.compression.spans import Span


class ImportanceScorer(Protocol):
    """Scores each word-level token (higher: keep; ``inf``: always keep). A scorer that needs
    the original text (spacing, context) may also define ``score_spans(text, spans)``."""

    def __call__(self, tokens: Sequence[str]) -> list[float]: ...


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


def _protected(tokens: Sequence[str], scores: list[float]) -> list[float]:
    return [math.inf if _always_keep(tokens, i) else s for i, s in enumerate(scores)]


def _spans_of(tokens: Sequence[str]) -> tuple[str, list[Span]]:
    """Tokens given without their text: joined by spaces, with their offsets there."""
    out, pos = [], 0
    for tok in tokens:
        out.append(Span(tok, pos, pos + len(tok)))
        pos += len(tok) + 1
    return " ".join(tokens), out


class SurprisalScorer:
    """Each word's information content under a small causal LM on the CPU: the sum of
    ``-log p(token | text before it)`` over the model tokens the word covers (Selective
    Context; LLMLingua-1's criterion), from the embedded llama.cpp models.

    The model is loaded once (its own context, with every position's logits) and scores are
    cached per text (``cache_size`` texts).

    Example:
        .. code-block:: python

            scorer = SurprisalScorer("smollm2-135m")
            compress(cot, 0.7, scorer)
    """

    def __init__(
        self,
        model: str = "smollm2-135m",
        *,
        n_ctx: int = 1024,
        protect_numbers: bool = True,
        cache_size: int = 256,
    ) -> None:
        self.model = model
        self.n_ctx = n_ctx
        self.protect_numbers = protect_numbers
        self.cache_size = cache_size
        self._llama: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, list[float]] = OrderedDict()

    def _load(self) -> Any:
        if self._llama is None:
            from tale_shared.local.llama import _import_llama
            from tale_shared.local.native_probe import check_native_runtime
            from tale_shared.local.registry import resolve_model_path

            llama_cpp = _import_llama()
            _, path = resolve_model_path(self.model)
            check_native_runtime(path)
            self._llama = llama_cpp.Llama(
                model_path=str(path), n_ctx=self.n_ctx, logits_all=True, verbose=False
            )
        return self._llama

    def token_surprisals(self, text: str) -> list[tuple[int, int, float]]:
        """``(byte_start, byte_end, -log p)`` of each model token of ``text``."""
        import numpy as np

        with self._lock:
            llama = self._load()
            ids = llama.tokenize(text.encode("utf-8"), add_bos=True, special=False)
            ids = ids[: self.n_ctx]
            llama.reset()
            llama.eval(ids)
            logits = np.asarray(llama.scores[: len(ids)], dtype=np.float64)
            pieces = [llama.detokenize([t]) for t in ids]
        shifted = logits - logits.max(axis=1, keepdims=True)
        logprobs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        out, pos = [], 0
        bos = 1 if ids and not pieces[0] else 0  # BOS detokenizes to nothing
        for i in range(bos, len(ids)):
            size = len(pieces[i])
            surprisal = -float(logprobs[i - 1, ids[i]]) if i > 0 else 0.0
            out.append((pos, pos + size, surprisal))
            pos += size
        return out

    def score_spans(self, text: str, spans: Sequence[Span]) -> list[float]:
        key = text
        if key in self._cache:
            self._cache.move_to_end(key)
            scores = self._cache[key]
        else:
            scores = _aggregate(text, spans, self.token_surprisals(text))
            self._cache[key] = scores
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        tokens = [s.text for s in spans]
        return _protected(tokens, scores) if self.protect_numbers else list(scores)

    def __call__(self, tokens: Sequence[str]) -> list[float]:
        text, spans = _spans_of(tokens)
        return self.score_spans(text, spans)


def _aggregate(
    text: str, spans: Sequence[Span], pieces: Sequence[tuple[int, int, float]]
) -> list[float]:
    """Sum model-token scores over the words they overlap (byte offsets of ``text``)."""
    encoded_before = [len(text[: s.start].encode("utf-8")) for s in spans]
    encoded_end = [
        b + len(s.text.encode("utf-8")) for b, s in zip(encoded_before, spans, strict=True)
    ]
    scores = [0.0] * len(spans)
    j = 0
    for start, end, value in pieces:
        while j < len(spans) and encoded_end[j] <= start:
            j += 1
        k = j
        while k < len(spans) and encoded_before[k] < end:
            scores[k] += value
            k += 1
    return scores


class LLMLingua2Scorer:
    """LLMLingua-2's keep probability per word (Pan et al., 2024; the compressor TokenSkip
    used), from a token classifier.

    Pass ``classifier``: a callable from a list of words to one keep probability per word.
    :meth:`from_pretrained` builds it from a local LLMLingua-2 model folder with
    ``transformers`` (``pip install transformers torch``; the weights, e.g.
    ``microsoft/llmlingua-2-xlm-roberta-large-meetingbank``, must already be on disk: tale
    never downloads them).

    Example:
        .. code-block:: python

            scorer = LLMLingua2Scorer.from_pretrained("/models/llmlingua-2-xlm-roberta-large")
            compress(cot, 0.5, scorer)
    """

    def __init__(
        self,
        classifier: Callable[[list[str]], Sequence[float]],
        *,
        protect_numbers: bool = True,
    ) -> None:
        self.classifier = classifier
        self.protect_numbers = protect_numbers

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs: Any) -> LLMLingua2Scorer:
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"no LLMLingua-2 model folder at {folder}: download it where a hub is "
                "reachable (e.g. microsoft/llmlingua-2-xlm-roberta-large-meetingbank) and "
                "pass its path"
            )
        try:
            import torch
            from transformers import AutoModelForTokenClassification, AutoTokenizer
        except ImportError as exc:
            raise ImportError(
                "LLMLingua2Scorer.from_pretrained needs transformers and torch: "
                "pip install transformers torch"
            ) from exc
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForTokenClassification.from_pretrained(folder).eval()

        def classify(words: list[str]) -> list[float]:
            enc = tokenizer(words, is_split_into_words=True, return_tensors="pt", truncation=True)
            with torch.no_grad():
                probs = model(**enc).logits.softmax(-1)[0, :, 1].tolist()
            keep = [0.0] * len(words)
            for position, word in enumerate(enc.word_ids()):
                if word is not None:
                    keep[word] = max(keep[word], probs[position])
            return keep

        return cls(classify, **kwargs)

    def __call__(self, tokens: Sequence[str]) -> list[float]:
        scores = [float(p) for p in self.classifier(list(tokens))]
        if len(scores) != len(tokens):
            raise ValueError(f"the classifier gave {len(scores)} scores for {len(tokens)} words")
        return _protected(tokens, scores) if self.protect_numbers else scores
