"""TokenSkip-style chain-of-thought compression (Xia et al., 2025).

:mod:`~tale_shared.compression.core` compresses text to a ratio and formats TokenSkip prompts;
:mod:`~tale_shared.compression.scorers` says which tokens matter (rules, a small LM's
surprisal, LLMLingua-2).
"""

from tale_shared.compression.context import ContextCompressor
from tale_shared.compression.core import (
    RATIOS,
    SEPARATOR,
    ScorerError,
    check_ratio,
    check_trained_ratio,
    compress,
    kept_ratio,
    tokenskip_cap,
    tokenskip_prompt,
    training_example,
)
from tale_shared.compression.scorers import (
    ImportanceScorer,
    LLMLingua2Scorer,
    SurprisalScorer,
    rule_scorer,
)
from tale_shared.compression.spans import Span, spans, tokenize

__all__ = [
    "RATIOS",
    "SEPARATOR",
    "ContextCompressor",
    "ImportanceScorer",
    "LLMLingua2Scorer",
    "ScorerError",
    "Span",
    "SurprisalScorer",
    "check_ratio",
    "check_trained_ratio",
    "compress",
    "kept_ratio",
    "rule_scorer",
    "spans",
    "tokenize",
    "tokenskip_cap",
    "tokenskip_prompt",
    "training_example",
]
