from __future__ import annotations

import re
from dataclasses import dataclass

from tale_shared._validation import require_question
from tale_shared.budget import TokenBudget
from tale_shared.estimators.base import BudgetEstimator

_QUANTITY = re.compile(
    r"\$?\d[\d,]*(?:\.\d+)?%?|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
    r"twelve|twenty|thirty|forty|fifty|hundred|thousand|half|twice|double|triple|dozen|"
    r"quarter|third)\b",
    re.I,
)
_OPERATION = re.compile(
    r"\b(?:each|every|per|times|total|sum|difference|more than|less than|fewer|left|remain\w*|"
    r"average|percent|ratio|split|share|divid\w*|multipl\w*|twice|half|double|triple|"
    r"increase\w*|decrease\w*|discount|profit|cost\w*|rate|after|before|longer|shorter|"
    r"older|younger|combined|altogether|how many|how much)\b|[%+\-*/×÷=]",
    re.I,
)


_FORMULA = re.compile(r"\$([^$]+)\$|\\\(|\\\[|\\(?:frac|sqrt|cdot|times|pi|le|ge|sum|int)\b")
_MARKUP = re.compile(r"[\\^_{}=<>]|\b[a-z]\(|^\s*[a-z]\s*$")


@dataclass(frozen=True)
class QuestionFeatures:
    """Cheap features of a question's text."""

    words: int
    quantities: int
    operations: int
    sentences: int
    formulas: int = 0
    """Spans of mathematical notation (``$x^2$``, ``\\frac``): what separates a competition
    problem from a word problem. Money (``$5 and $10``) is not counted."""


def question_features(question: str) -> QuestionFeatures:
    text = require_question(question)
    return QuestionFeatures(
        words=len(text.split()),
        quantities=len(_QUANTITY.findall(text)),
        operations=len(_OPERATION.findall(text)),
        sentences=max(1, len(re.findall(r"[.?!](?:\s|$)", text))),
        formulas=sum(
            1 for m in _FORMULA.finditer(text) if m.group(1) is None or _MARKUP.search(m.group(1))
        ),
    )


class HeuristicEstimator(BudgetEstimator):
    """A budget from the question's features, with no model call (microseconds).

    ``budget = base + per_quantity * quantities + per_operation * operations
    + per_word * words + per_sentence * sentences``, times ``notation_factor`` (2) when the
    question is written in mathematical notation (a competition problem, which needs longer
    reasoning than a word problem of the same length; no GSM8K or SVAMP question has any),
    clamped. The default weights give budgets
    in the range of the paper's optimal GSM8K budgets (roughly 40-200 tokens).

    Example:
        >>> HeuristicEstimator().estimate("Tom has 3 apples and buys 5 more. How many?").tokens
        55
    """

    name = "heuristic"

    def __init__(
        self,
        *,
        base: float = 20.0,
        per_quantity: float = 8.0,
        per_operation: float = 6.0,
        per_word: float = 0.5,
        per_sentence: float = 4.0,
        notation_factor: float = 2.0,
        **bounds: int,
    ) -> None:
        super().__init__(**bounds)
        self.weights = (base, per_quantity, per_operation, per_word, per_sentence)
        self.notation_factor = notation_factor

    @property
    def spec(self) -> str | None:
        default = type(self) is HeuristicEstimator and (
            self.weights,
            self.notation_factor,
        ) == (HeuristicEstimator().weights, HeuristicEstimator().notation_factor)
        return "heuristic" if default else None

    def estimate(self, question: str) -> TokenBudget:
        f = question_features(question)
        base, per_q, per_op, per_w, per_s = self.weights
        raw = (
            base
            + per_q * f.quantities
            + per_op * f.operations
            + per_w * f.words
            + per_s * f.sentences
        )
        if f.formulas:  # mathematical notation: a competition problem, not a word problem
            raw *= self.notation_factor
        return TokenBudget(tokens=self.clamp(raw), estimator=self.name)
