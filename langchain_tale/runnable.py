"""``TaleRunnable``: a drop-in for a chat model in LCEL chains that budgets each question."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    BaseMessage,
)
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import (
    Runnable,
    RunnableBinding,
    RunnableConfig,
    RunnableParallel,
    RunnableSequence,
)
from langchain_core.runnables.config import (
    patch_config,
)
from pydantic import Field, PrivateAttr, field_validator

from langchain_tale._caps import cap_kwargs, with_cap
from langchain_tale._messages import coerce_input, method_messages, to_langchain
from langchain_tale._planned import ANSWER_TAG, ESTIMATOR_TAG, PlannedModelCall, PreparedCall
from langchain_tale._thinking import is_reasoning_model, settings_for, with_thinking
from langchain_tale.model_adapter import LangChainModel, model_name_of
from tale_shared.budget import TokenBudget, budget_metadata
from tale_shared.caps import cap_from_params, check_cap_headroom, hard_cap
from tale_shared.estimators import (
    BudgetEstimator,
    EstimatorSlot,
    ZeroShotEstimator,
)
from tale_shared.methods import (
    ANSWER_TOKENS,
    Exemplar,
    Method,
    exemplar_turns,
    follow_up,
    should_force,
)
from tale_shared.models import finish_reason_of
from tale_shared.prompts import PromptStyle, get_style
from tale_shared.resolve import ResolvedMethod, resolve_method


class TaleRunnable(PlannedModelCall):
    """Estimate a token budget for the question, put it in the prompt, call the model.

    Drop it in where the chat model was::

        chain = prompt | TaleRunnable(llm=model) | StrOutputParser()

    Input: a string, a list of messages, a ``PromptValue``, or a dict with a ``"question"``
    key. The estimator sees the question — the dict's value, the string, or the last human
    message. A plain dict sends the model only its ``"question"``: other keys (``context``,
    ...) are not part of the prompt, and a warning names them. To use them, pass
    ``prompt=`` (a template over the dict's keys): the input is then the prompt's variables,
    the model gets the filled-in template, and the estimator sees exactly
    ``input["question"]``.

    ``method`` is a :mod:`method spec <tale_shared.methods>` (``"tale-heuristic@system+ex3"``,
    ``"tale-ep"``, ``"chain-of-draft"``, ...); by default the model's profile method, the one
    the benchmark supports for it (see the README). ``estimator`` (any core estimator or a
    spec string: ``"fixed:200"``, ``"heuristic"``, ``"regression"``, ``"zero-shot"``) and
    ``style`` replace the method's own. ``cap_headroom`` (or a method's ``+force``) also
    caps output at ``ceil(budget * headroom)`` tokens through the provider's own parameter;
    with ``+force`` a reply the cap cut before its ``[[answer]]`` gets one short follow-up
    call asking for the final answer (streamed as a last chunk). Early exit needs a cached
    prefix and is not available here.

    The reply carries ``response_metadata["tale"]`` (budget, estimator, style, the
    estimator's usage) and a ``tale_budget`` custom event is dispatched once the budget is
    known. The estimator's and the answer's model calls are child runs of this one.

    Example:
        .. code-block:: python

            from langchain_core.prompts import ChatPromptTemplate
            from langchain_openai import ChatOpenAI
            from langchain_tale import TaleRunnable

            prompt = ChatPromptTemplate.from_template("Solve: {question}")
            chain = prompt | TaleRunnable(llm=ChatOpenAI(model="gpt-4o-mini"))
            chain.invoke({"question": "A robe takes 2 bolts of blue fiber ..."})
    """

    method: str | None = Field(
        default=None,
        description="a method spec (`tale methods`); the model's profile method when not given "
        "(with +think added for a reasoning model)",
    )
    estimator: BudgetEstimator | str | None = Field(
        default=None,
        description="a core estimator or a spec (fixed:200, heuristic, regression, zero-shot); "
        "replaces the method's",
    )
    style: str | None = Field(
        default=None, description="the budget sentence's wording (`tale styles`); the method's"
    )
    prompt: BasePromptTemplate | None = Field(  # type: ignore[type-arg]
        default=None,
        description="a template over the input dict's keys; the model gets it filled in",
    )
    question_key: str = Field(
        default="question", description="the input key the estimator reads the question from"
    )
    cap_headroom: float | None = Field(
        default=None,
        ge=1.0,
        description="also cap output at ceil(budget * headroom) tokens (finite, at least 1)",
    )

    @field_validator("cap_headroom", mode="before")
    @classmethod
    def _finite_headroom(cls, value: Any) -> Any:
        return check_cap_headroom(value) if isinstance(value, (int, float)) else value

    _parts: ResolvedMethod = PrivateAttr()

    @field_validator("style")
    @classmethod
    def _known_style(cls, value: str | None) -> str | None:
        if value is not None:
            get_style(value)
        return value

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["langchain_tale", "runnable"]

    def to_json(self) -> Any:
        """As langchain-core serialises runnables; an estimator object is written as its spec
        string (``"fixed:200"``, ``"regression:PATH"``...) when it has one."""
        data = super().to_json()
        est = self.estimator
        kwargs = data.get("kwargs")
        if isinstance(est, BudgetEstimator) and est.spec and isinstance(kwargs, dict):
            kwargs["estimator"] = est.spec
        return data

    # -- tools and structured output: the wrapped model's, with the budget kept -------------
    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, BaseMessage]:
        """The wrapped model's ``bind_tools``, budgeted: the tools (formatted by the model's
        own ``bind_tools``) go with every answer call; the estimator's call gets none.

        Example:
            .. code-block:: python

                model = TaleRunnable(llm=ChatOpenAI(model="gpt-4o-mini")).bind_tools([multiply])
                model.invoke("What is 12.3 * 4.56?").tool_calls
        """
        binding = self.llm.bind_tools(tools, **kwargs)
        return self._through_budget(binding)

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Runnable[Any, Any]:
        """The wrapped model's ``with_structured_output`` (any ``method``, ``include_raw``),
        with this runnable in the model's place: the budget goes into the prompt, the
        model's parser reads the reply."""
        structured = self.llm.with_structured_output(schema, **kwargs)
        return self._through_budget(structured)

    def _through_budget(self, runnable: Runnable[Any, Any]) -> Runnable[Any, Any]:
        """``runnable`` (built by the wrapped model) with each ``llm.bind(...)`` in it replaced
        by ``self.bind(...)``: the same call kwargs, sent through the budget."""
        found = False

        def swap(part: Runnable[Any, Any]) -> Runnable[Any, Any]:
            nonlocal found
            if isinstance(part, RunnableBinding) and part.bound is self.llm:
                found = True
                bound = self.bind(**part.kwargs)
                return bound.with_config(part.config) if part.config else bound
            if isinstance(part, RunnableSequence):
                return RunnableSequence(swap(part.first), *part.middle, part.last)
            if isinstance(part, RunnableParallel):
                return RunnableParallel({k: swap(v) for k, v in part.steps__.items()})
            return part

        swapped = swap(runnable)
        if not found:
            raise NotImplementedError(
                f"{type(self.llm).__name__} built its tools/structured output without a "
                "binding of the model; wrap the result instead: prompt | TaleRunnable(...) | parser"
            )
        return swapped

    # -- the parts of one call ---------------------------------------------------------------
    @property
    def prompt_style(self) -> PromptStyle:
        return self._parts.style

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        # resolved once, here: "regression" reads and checks its file, not per-call work
        parts = resolve_method(
            model_name_of(self.llm),
            self.method,
            estimator=self.estimator,
            style=self.style,
            cap_headroom=self.cap_headroom,
            reasoning=self.method is None and is_reasoning_model(self.llm),
        )
        method = parts.method
        if method.is_tokenskip:
            raise ValueError(f"{method.spec} runs through TokenSkipRunnable, not TaleRunnable")
        if method.early_exit is not None:
            raise ValueError(
                "early exit probes a reply from a cached prefix: run it with "
                "tale_shared.pipeline.TalePipeline on the embedded model, not in TaleRunnable"
            )
        if method.think:
            settings_for(self.llm, 1)  # a model with no knob fails here, not per call
        self._parts = parts

    @property
    def _method(self) -> Method:
        return self._parts.method

    @property
    def _slot(self) -> EstimatorSlot:
        return self._parts.slot

    @property
    def resolved_method(self) -> Method:
        """The method this runnable runs (``method``, else the model's profile method), with
        ``estimator`` and ``style`` when given in place of the method's own."""
        return self._parts.method

    def _estimator_for(self, config: RunnableConfig) -> BudgetEstimator | None:
        """This call's estimator (``None``: a method without a budget). A model-calling one
        runs as a child run of this call, tagged ``tale:estimator``."""

        def est_config() -> RunnableConfig:
            patched = patch_config(config, run_name="tale_estimator")
            patched["tags"] = [*patched.get("tags", []), ESTIMATOR_TAG]
            return patched

        est = self._slot.bind(lambda: LangChainModel(self.llm, est_config()))
        if (
            not self._slot.zero_shot
            and isinstance(est, ZeroShotEstimator)
            and isinstance(est.model, LangChainModel)
        ):
            return est.with_model(est.model.with_config(est_config()))
        return est

    def _split(self, value: Any, config: RunnableConfig) -> tuple[str, list[BaseMessage]]:
        if self.prompt is not None:
            if not isinstance(value, dict) or self.question_key not in value:
                raise ValueError(
                    f"with a prompt, the input must be a dict with {self.question_key!r}"
                )
            rendered = self.prompt.invoke(value, patch_config(config, run_name="tale_prompt"))
            _, messages = coerce_input(rendered, self.question_key)
            return value[self.question_key], messages
        return coerce_input(value, self.question_key)

    def _metadata(self, budget: TokenBudget | None, style: PromptStyle) -> dict[str, Any]:
        return budget_metadata(self.resolved_method.name, budget, style.name)

    def _answer_config(self, config: RunnableConfig, tale: dict[str, Any]) -> RunnableConfig:
        answer = patch_config(config)
        answer["tags"] = [*answer.get("tags", []), ANSWER_TAG]
        answer["metadata"] = {
            **answer.get("metadata", {}),
            "tale": {key: tale[key] for key in ("method", "budget", "estimator", "style")},
        }
        return answer

    def _plan(
        self,
        budget: TokenBudget | None,
        messages: list[BaseMessage],
        config: RunnableConfig,
        call_kwargs: dict[str, Any],
    ) -> PreparedCall:
        style = self.prompt_style
        tale = self._metadata(budget, style)
        # stop, temperature, ...: as the caller said, with the cap when there is one
        headroom = self._parts.cap_headroom
        cap = None
        if headroom is not None and budget is not None:
            cap = hard_cap(budget.tokens, headroom)
        model = None
        if self._method.think and budget is not None:
            # the budget through the thinking knob, the cap (or the default room) above it
            kwargs, thinking, model = with_thinking(call_kwargs, self.llm, budget.tokens, cap)
            tale["thinking"] = thinking.as_dict()
        else:
            kwargs = with_cap(call_kwargs, self.llm, cap)
        tale["cap"] = cap_from_params(kwargs)
        tokens = budget.tokens if budget is not None and style.uses_budget else None
        prompt = method_messages(
            messages, style, tokens, exemplar_turns(style, self._exemplars, budget=tokens)
        )
        llm = model if model is not None and model is not self.llm else None
        return PreparedCall(prompt, self._answer_config(config, tale), kwargs, tale, llm)

    @property
    def _exemplars(self) -> list[Exemplar]:
        return list(self._parts.exemplars)

    def _prepare(
        self, value: Any, child: RunnableConfig, call_kwargs: dict[str, Any]
    ) -> PreparedCall:
        """Split the input, estimate the budget, announce it, plan the answer call."""
        question, messages = self._split(value, child)
        estimator = self._estimator_for(child)
        budget = estimator.estimate(question) if estimator is not None else None
        plan = self._plan(budget, messages, child, call_kwargs)
        self._announce(plan, question, child)
        return plan

    async def _aprepare(
        self, value: Any, child: RunnableConfig, call_kwargs: dict[str, Any]
    ) -> PreparedCall:
        question, messages = self._split(value, child)
        estimator = self._estimator_for(child)
        budget = await estimator.aestimate(question) if estimator is not None else None
        plan = self._plan(budget, messages, child, call_kwargs)
        await self._aannounce(plan, question, child)
        return plan

    # -- budget forcing (+force): a reply the cap cut gets its final answer -----------------
    def _needs_forcing(self, plan: PreparedCall, reply: BaseMessage) -> bool:
        """The core's rule (:func:`~tale_shared.methods.should_force`), on this reply."""
        reason = finish_reason_of(reply.response_metadata, reply.additional_kwargs)
        # +force: the cap tale set cut it; +escalate: the provider's own cap did
        force = (self._method.force is not None and bool(plan.kwargs)) or self._method.escalate
        return should_force(reply.text, cut=reason == "length", force=force)

    def _forcing_call(
        self, plan: PreparedCall, reply: BaseMessage
    ) -> tuple[list[BaseMessage], RunnableConfig, dict[str, Any]] | None:
        """The follow-up call that asks for the final answer (a child run of this one): the
        core's follow-up turns after the prompt as it was sent; ``None`` when not forced."""
        if not self._needs_forcing(plan, reply):
            return None
        turns = follow_up([], reply.text)
        messages = [*plan.prompt, *to_langchain(turns)]
        return messages, plan.config, cap_kwargs(self.llm, ANSWER_TOKENS)
