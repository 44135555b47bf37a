"""One TALE query end to end, framework-free: estimate, prompt, call, extract, record.

Example:
    .. code-block:: python

        from tale_shared.estimators import FixedBudgetEstimator
        from tale_shared.local import load_local_model

        pipeline = TalePipeline(load_local_model(), FixedBudgetEstimator(100))
        result = pipeline.solve("Tom has 3 apples and buys 5. How many?")
        result.answer, result.record.usage.output_tokens  # ('8', 41)
"""

from __future__ import annotations

import math
import time

from pydantic import BaseModel, ConfigDict

from tale_shared._validation import require_question
from tale_shared.answers import extract_answer
from tale_shared.budget import TokenBudget
from tale_shared.estimators.base import BudgetEstimator
from tale_shared.models import ChatModel, Completion
from tale_shared.pricing import PriceTable, default_price_table
from tale_shared.profiles import style_for
from tale_shared.prompts import Message, PromptStyle
from tale_shared.usage import CallRecord, QueryRecord


def hard_cap(budget: int, headroom: float) -> int:
    """``max_tokens = ceil(budget * headroom)``: a cap with room above the prompted budget."""
    if headroom < 1:
        raise ValueError(f"headroom must be at least 1.0, got {headroom}")
    return max(1, math.ceil(budget * headroom))


class TaleResult(BaseModel):
    """What one query produced and cost."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    question: str
    style: str
    budget: TokenBudget | None
    messages: list[Message]
    text: str
    answer: str | None
    record: QueryRecord


class TalePipeline:
    """Runs TALE-EP on any :class:`~tale_shared.models.ChatModel`.

    With ``estimator=None`` and ``style="vanilla"`` it is the plain chain-of-thought
    baseline, counted the same way. ``style=None`` takes the model's profile
    (:func:`tale_shared.profiles.style_for`). ``cap_headroom`` also sets a hard
    ``max_tokens`` cap of ``ceil(budget * cap_headroom)``.
    """

    def __init__(
        self,
        model: ChatModel,
        estimator: BudgetEstimator | None,
        *,
        style: str | PromptStyle | None = None,
        max_tokens: int | None = 512,
        cap_headroom: float | None = None,
        price_table: PriceTable | None = None,
    ) -> None:
        self.model = model
        self.estimator = estimator
        self.style = style_for(model.model_name, style)
        if self.style.uses_budget and estimator is None:
            raise ValueError(f"style {self.style.name!r} needs an estimator for its budget")
        self.max_tokens = max_tokens
        self.cap_headroom = cap_headroom
        self.prices = price_table or default_price_table()

    @classmethod
    def vanilla(cls, model: ChatModel, **kwargs: object) -> TalePipeline:
        """The chain-of-thought baseline: no estimator, no budget."""
        return cls(model, None, style="vanilla", **kwargs)  # type: ignore[arg-type]

    def _limit(self, budget: TokenBudget | None) -> int | None:
        if budget is not None and self.cap_headroom is not None:
            cap = hard_cap(budget.tokens, self.cap_headroom)
            return cap if self.max_tokens is None else min(cap, self.max_tokens)
        return self.max_tokens

    def _budget_calls(self, budget: TokenBudget | None) -> list[CallRecord]:
        if budget is None or budget.usage.source == "none":
            return []
        return [
            CallRecord(
                role="estimator",
                model=budget.model,
                usage=budget.usage,
                latency_s=budget.latency_s,
                cost_usd=self.prices.cost(budget.model, budget.usage),
            )
        ]

    def _result(
        self,
        question: str,
        budget: TokenBudget | None,
        messages: list[Message],
        completion: Completion,
        started: float,
    ) -> TaleResult:
        answer_call = completion.to_call_record(
            "answer", cost_usd=self.prices.cost(completion.model, completion.usage)
        )
        record = QueryRecord(
            question=question,
            budget=budget.tokens if budget else None,
            estimator=budget.estimator if budget else None,
            style=self.style.name,
            answer=completion.text,
            calls=[*self._budget_calls(budget), answer_call],
            latency_s=time.perf_counter() - started,
        )
        return TaleResult(
            question=question,
            style=self.style.name,
            budget=budget,
            messages=messages,
            text=completion.text,
            answer=extract_answer(completion.text),
            record=record,
        )

    def solve(self, question: str) -> TaleResult:
        question = require_question(question)
        started = time.perf_counter()
        budget = self.estimator.estimate(question) if self.estimator else None
        messages = self.style.render(question, budget.tokens if budget else None)
        completion = self.model.complete(messages, max_tokens=self._limit(budget))
        return self._result(question, budget, messages, completion, started)

    async def asolve(self, question: str) -> TaleResult:
        question = require_question(question)
        started = time.perf_counter()
        budget = await self.estimator.aestimate(question) if self.estimator else None
        messages = self.style.render(question, budget.tokens if budget else None)
        completion = await self.model.acomplete(messages, max_tokens=self._limit(budget))
        return self._result(question, budget, messages, completion, started)
