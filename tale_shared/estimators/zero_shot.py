from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import copy
import re
from dataclasses import dataclass

from tale_shared._validation import require_question
from tale_shared.budget import TokenBudget
from tale_shared.estimators.base import BudgetEstimator
from tale_shared.models import ChatModel, Completion
from tale_shared.prompts import Message

ESTIMATOR_PROMPT = (
    "Task: Analyze the given question and estimate the minimum number of tokens required to "
    "generate a complete and accurate response. Please Give the response by strictly following "
    "this format: [[budget]],for example: Budget: [[12]]."
)
"""The TALE paper's zero-shot estimator prompt, verbatim."""

QUESTION_TEMPLATE = '{context}\n\nBelow is the question:\n\nQuestion: "{question}"\n'
"""How the reference code joins the estimator prompt and the question."""

ABSURD_TOKENS = 100_000
"""A reply above this is treated as no estimate at all (fallback), not clamped."""

# A number standing on its own: not part of a word ("GPT-4", "4o", "2-step", "v1.5"), a minus
# sign only where it cannot be a hyphen, and commas only as thousands separators.
_NUM = (
    r"(?<![\w.,])(?<![A-Za-z]-)"
    r"(?P<num>(?:(?<![\w-])-\s?)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"(?![\w,]|\.\d|-[A-Za-z])"
)
_BRACKETED = re.compile(r"\[\[\s*" + _NUM + r"\s*(?:tokens?)?\s*\]\]", re.I)
_NEAR_KEYWORD = re.compile(
    r"(?:budget|tokens?)[^\w-]{0,3}(?:\w+[^\w-]{1,3}){0,3}?"
    + _NUM
    + r"|"
    + _NUM.replace("num", "num2")
    + r"\s*(?:tokens?|budget)\b",
    re.I,
)
_ANY = re.compile(_NUM)


def _number(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g is not None)


@dataclass(frozen=True)
class ParsedEstimate:
    """The number in an estimator reply, or why there is none usable."""

    value: float | None
    problem: str | None


def parse_budget_reply(reply: str | None) -> ParsedEstimate:
    """Find the budget in an estimator reply: a number alone in ``[[N]]`` first, then a
    number next to "budget"/"tokens", then the first number standing on its own. A hyphen
    inside a word ("GPT-4", "2-step") is never a minus sign, and ``[[1,2,3]]`` is not a
    number. Negative, zero, absurd or missing numbers come back with a ``problem``.

    >>> parse_budget_reply("Budget: [[120]]").value
    120.0
    >>> parse_budget_reply("GPT-4 estimate: 150").value
    150.0
    >>> parse_budget_reply("[[1,2,3]]").problem
    "the estimator's reply holds no number"
    """
    if not reply or not reply.strip():
        return ParsedEstimate(None, "the estimator replied with nothing")
    for pattern in (_BRACKETED, _NEAR_KEYWORD, _ANY):
        match = pattern.search(reply)
        if match:
            raw = _number(match).replace(",", "").replace(" ", "")
            value = float(raw)
            if value < 0:
                return ParsedEstimate(None, f"the estimator replied with a negative budget ({raw})")
            if value == 0:
                return ParsedEstimate(None, "the estimator replied with a zero budget")
            if value > ABSURD_TOKENS:
                return ParsedEstimate(None, f"the estimator replied with an absurd budget ({raw})")
            return ParsedEstimate(value, None)
    return ParsedEstimate(None, "the estimator's reply holds no number")


class ZeroShotEstimator(BudgetEstimator):
    """The TALE paper's zero-shot estimator: ask a model for the budget, then parse it.

    Fixes the reference code's flaws: a reply with no number, or a negative, zero or absurd
    one, gives the documented ``fallback_tokens`` (256 by default) with the reason recorded,
    never "use less than -1 tokens"; the budget is clamped to ``[min_tokens, max_tokens]``; a
    model error or a timeout also falls back (``on_error="raise"`` re-raises instead; with
    ``timeout_s`` a synchronous call runs in a worker thread in the caller's context, and one
    that times out cannot be stopped: it finishes in the background, unrecorded, while
    ``aestimate`` cancels the awaited call); and the
    estimator call's own tokens are recorded on the budget, since they are part of TALE's cost.

    Example:
        .. code-block:: python

            from tale_shared.local import load_local_model

            est = ZeroShotEstimator(load_local_model("smollm2-135m"))
            budget = est.estimate("What is 17 * 3?")
            budget.tokens, budget.usage.output_tokens, budget.fallback_reason
    """

    name = "zero-shot"

    def __init__(
        self,
        model: ChatModel,
        *,
        prompt: str = ESTIMATOR_PROMPT,
        reply_max_tokens: int = 48,
        timeout_s: float | None = None,
        on_error: str = "fallback",
        **bounds: int,
    ) -> None:
        super().__init__(**bounds)
        if on_error not in ("fallback", "raise"):
            raise ValueError("on_error must be 'fallback' or 'raise'")
        self.model = model
        self.prompt = prompt
        self.reply_max_tokens = reply_max_tokens
        self.timeout_s = timeout_s
        self.on_error = on_error

    @property
    def spec(self) -> str | None:
        """``"zero-shot"`` when it uses the paper's prompt (it asks the model it is given)."""
        return "zero-shot" if self.prompt == ESTIMATOR_PROMPT else None

    def with_model(self, model: ChatModel) -> ZeroShotEstimator:
        """A copy of this estimator that asks ``model`` instead."""
        clone = copy.copy(self)
        clone.model = model
        return clone

    def messages(self, question: str) -> list[Message]:
        """The estimator prompt for ``question``."""
        text = QUESTION_TEMPLATE.format(context=self.prompt, question=require_question(question))
        return [Message("user", text)]

    def _to_budget(self, completion: Completion) -> TokenBudget:
        parsed = parse_budget_reply(completion.text)
        tokens = self.fallback_tokens if parsed.value is None else self.clamp(parsed.value)
        return TokenBudget(
            tokens=tokens,
            estimator=self.name,
            usage=completion.usage,
            fallback_reason=parsed.problem,
            raw_reply=completion.text,
            latency_s=completion.latency_s,
            model=completion.model,
            cap=self.reply_max_tokens if (self.reply_max_tokens or 0) > 0 else None,
        )

    def _on_failure(self, exc: BaseException) -> TokenBudget:
        if self.on_error == "raise":
            raise exc
        kind = "timed out" if isinstance(exc, TimeoutError) else f"failed ({exc!r})"
        return TokenBudget(
            tokens=self.fallback_tokens,
            estimator=self.name,
            fallback_reason=f"the estimator model call {kind}",
        )

    def estimate(self, question: str) -> TokenBudget:
        messages = self.messages(question)
        try:
            if self.timeout_s is None:
                completion = self.model.complete(messages, max_tokens=self.reply_max_tokens)
            else:
                # the worker runs in the caller's context (tracing spans, call roles); a
                # timed-out synchronous call cannot be stopped: it runs on in the background
                # and is not recorded (aestimate cancels the awaited call instead)
                pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
                context = contextvars.copy_context()
                future = pool.submit(
                    context.run, self.model.complete, messages, max_tokens=self.reply_max_tokens
                )
                try:
                    completion = future.result(timeout=self.timeout_s)
                except concurrent.futures.TimeoutError as exc:
                    raise TimeoutError(f"no reply within {self.timeout_s}s") from exc
                finally:
                    pool.shutdown(wait=False)
        except Exception as exc:
            return self._on_failure(exc)
        return self._to_budget(completion)

    async def aestimate(self, question: str) -> TokenBudget:
        messages = self.messages(question)
        try:
            completion = await asyncio.wait_for(
                self.model.acomplete(messages, max_tokens=self.reply_max_tokens),
                timeout=self.timeout_s,
            )
        except Exception as exc:
            return self._on_failure(exc)
        return self._to_budget(completion)
