"""One query end to end, framework-free: estimate, prompt, call, extract, record.

:class:`TalePipeline` runs any :mod:`method <tale_shared.methods>` — a budget wording with an
estimator (TALE), concise exemplars, budget forcing, early exit, or the references (vanilla
CoT, direct) — on any :class:`~tale_shared.models.ChatModel`, and records every call.

Example:
    .. code-block:: python

        from tale_shared.local import load_local_model

        pipeline = TalePipeline(load_local_model(), method="tale")  # the model's default
        result = pipeline.solve("Tom has 3 apples and buys 5. How many?")
        result.answer, result.record.usage.output_tokens  # ('8', 41)
"""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict

from tale_shared._validation import require_question
from tale_shared.answers import extract_answer
from tale_shared.budget import TokenBudget
from tale_shared.caps import cap_held, hard_cap
from tale_shared.estimators.base import BudgetEstimator
from tale_shared.methods import (
    AnswerPlan,
    ContinuesReplies,
    Exemplar,
    Method,
    Outcome,
    ThinksWithBudget,
    answer_plan,
    arun_plan,
    render,
    run_plan,
)
from tale_shared.models import ChatModel
from tale_shared.pricing import PriceTable, default_price_table
from tale_shared.prompts import Message, PromptStyle
from tale_shared.resolve import resolve_method
from tale_shared.usage import CallRecord, QueryRecord

__all__ = ["TalePipeline", "TaleResult", "hard_cap"]


class TaleResult(BaseModel):
    """What one query produced and cost."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    question: str
    method: str
    style: str
    budget: TokenBudget | None
    messages: list[Message]
    text: str
    answer: str | None
    forced: bool = False
    stopped_early: bool = False
    cut: bool = False
    """The answer stopped at its output cap (a forced answer may follow)."""
    record: QueryRecord


class TalePipeline:
    """Runs a reasoning method on any :class:`~tale_shared.models.ChatModel`.

    ``method`` is a spec string or :class:`~tale_shared.methods.Method` (``"tale"``, the
    default, is the model's profile method); ``estimator`` (an object, e.g. an oracle's
    budgets, or a spec), ``style`` and ``cap_headroom`` replace the method's own parts, as in
    every entry point (:func:`tale_shared.resolve.resolve_method`). ``cap_headroom`` sets a
    hard cap of ``ceil(budget * cap_headroom)`` without forcing the answer.
    ``TalePipeline.vanilla(model)`` is the chain-of-thought baseline.
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        method: str | Method | None = None,
        estimator: BudgetEstimator | str | None = None,
        style: str | PromptStyle | None = None,
        exemplars: list[Exemplar] | None = None,
        max_tokens: int | None = 512,
        cap_headroom: float | None = None,
        price_table: PriceTable | None = None,
    ) -> None:
        self.model = model
        parts = resolve_method(
            model.model_name, method, estimator=estimator, style=style, cap_headroom=cap_headroom
        )
        self.method = parts.method
        self.style = parts.style
        self.estimator = parts.slot.bind(lambda: model)
        self.exemplars = list(exemplars) if exemplars is not None else list(parts.exemplars)
        self.max_tokens = max_tokens
        self.cap_headroom = parts.cap_headroom
        self.prices = price_table or default_price_table()
        if self.method.think and not (
            isinstance(model, ThinksWithBudget) or getattr(model, "think_close", None)
        ):
            raise ValueError(
                f"+think sends the budget to a reasoning model's thinking knob; "
                f"{model.model_name} has none (a LangChain or LlamaIndex reasoning model, or a "
                "llama.cpp model that thinks in <think> tags)"
            )
        if self.method.early_exit is not None and not isinstance(model, ContinuesReplies):
            raise ValueError(
                f"early exit needs a model that continues a reply from a cached prefix "
                f"(the embedded llama.cpp models), not {model.model_name}"
            )

    @classmethod
    def vanilla(cls, model: ChatModel, **kwargs: object) -> TalePipeline:
        """The chain-of-thought baseline: no estimator, no budget."""
        return cls(model, method="vanilla", **kwargs)  # type: ignore[arg-type]

    # -- the parts ---------------------------------------------------------------------------
    def _cap(self, budget: TokenBudget | None) -> int | None:
        if self.method.is_tokenskip:
            return self.method.answer_cap(self.max_tokens)
        if budget is not None and self.cap_headroom is not None:
            cap = hard_cap(budget.tokens, self.cap_headroom)
            return cap if self.max_tokens is None else min(cap, self.max_tokens)
        return None

    def messages(self, question: str, budget: TokenBudget | None) -> list[Message]:
        """The prompt for ``question`` under ``budget`` (exemplars included)."""
        asked = self.method.question_text(question)
        return render(self.style, asked, budget.tokens if budget else None, self.exemplars)

    def _plan(
        self, messages: list[Message], budget: TokenBudget | None
    ) -> tuple[ChatModel, AnswerPlan]:
        """The model this answer goes to and its plan. With ``+think``: a model with a
        thinking knob gets the budget through it (its cap above the budget); a llama.cpp
        reasoning model (``think_close``) has its thinking cut at the budget, closed and
        the answer forced (s1), with early exit when asked."""
        model, cap, force = self.model, self._cap(budget), self.method.forces_answer
        think_close = getattr(self.model, "think_close", None) if self.method.think else None
        if self.method.think and budget is not None:
            if isinstance(self.model, ThinksWithBudget):
                model, cap = self.model.with_thinking_budget(budget.tokens, self.max_tokens)
            elif think_close:
                cap, force = budget.tokens, True
        plan = answer_plan(
            messages,
            max_tokens=self.max_tokens,
            cap=cap,
            force=force,
            early_exit=self.method.early_exit,
            can_continue=isinstance(model, ContinuesReplies),
            think_close=think_close,
        )
        return model, plan

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
                cap=budget.cap,
            )
        ]

    def _result(
        self,
        question: str,
        budget: TokenBudget | None,
        messages: list[Message],
        outcome: Outcome,
        started: float,
    ) -> TaleResult:
        calls = [
            *self._budget_calls(budget),
            *(
                c.to_call_record(kind, cost_usd=self.prices.cost(c.model, c.usage))
                for kind, c in outcome.calls
            ),
        ]
        for call in calls:
            if call.cap_exceeded:
                cap_held(call.model, call.cap, call.usage.output_tokens)
        record = QueryRecord(
            question=question,
            budget=budget.tokens if budget else None,
            estimator=budget.estimator if budget else None,
            style=self.style.name,
            method=self.method.name,
            answer=outcome.text,
            calls=calls,
            latency_s=time.perf_counter() - started,
        )
        return TaleResult(
            question=question,
            method=self.method.name,
            style=self.style.name,
            budget=budget,
            messages=messages,
            text=outcome.text,
            answer=extract_answer(outcome.text),
            forced=outcome.forced,
            stopped_early=outcome.stopped_early,
            cut=outcome.cut,
            record=record,
        )

    # -- running -----------------------------------------------------------------------------
    def solve(self, question: str) -> TaleResult:
        question = require_question(question)
        started = time.perf_counter()
        budget = self.estimator.estimate(question) if self.estimator else None
        messages = self.messages(question, budget)
        outcome = run_plan(*self._plan(messages, budget))
        return self._result(question, budget, messages, outcome, started)

    async def asolve(self, question: str) -> TaleResult:
        question = require_question(question)
        started = time.perf_counter()
        budget = await self.estimator.aestimate(question) if self.estimator else None
        messages = self.messages(question, budget)
        outcome = await arun_plan(*self._plan(messages, budget))
        return self._result(question, budget, messages, outcome, started)
