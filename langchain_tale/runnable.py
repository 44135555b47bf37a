"""``TaleRunnable``: a drop-in for a chat model in LCEL chains that budgets each question."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event
from langchain_core.callbacks.manager import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    BaseMessageChunk,
)
from langchain_core.messages.ai import add_usage
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import (
    Runnable,
    RunnableBinding,
    RunnableConfig,
    RunnableParallel,
    RunnableSequence,
    RunnableSerializable,
)
from langchain_core.runnables.config import (
    patch_config,
)
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from langchain_tale._caps import cap_kwargs, with_cap
from langchain_tale._messages import coerce_input, inject_budget, to_langchain, with_exemplars
from langchain_tale.model_adapter import LangChainModel, model_name_of
from tale_shared.budget import TokenBudget
from tale_shared.caps import cap_from_params, hard_cap, warn_cap_exceeded
from tale_shared.estimators import (
    BudgetEstimator,
    EstimatorSlot,
    ZeroShotEstimator,
    resolve_estimator,
)
from tale_shared.methods import (
    ANSWER_TOKENS,
    Exemplar,
    Method,
    exemplar_turns,
    follow_up,
    load_exemplars,
    should_force,
)
from tale_shared.models import finish_reason_of
from tale_shared.profiles import method_for, style_for
from tale_shared.prompts import PromptStyle, get_style

BUDGET_EVENT = "tale_budget"
ESTIMATOR_TAG = "tale:estimator"
ANSWER_TAG = "tale:answer"


@dataclass(frozen=True)
class _Plan:
    """What the answer call sends: the budgeted prompt, its config and cap kwargs, the metadata."""

    prompt: list[BaseMessage]
    config: RunnableConfig
    kwargs: dict[str, Any]
    tale: dict[str, Any]


class TaleRunnable(RunnableSerializable[Any, BaseMessage]):
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

    llm: BaseChatModel
    method: str | None = None
    estimator: BudgetEstimator | str | None = Field(default=None)
    style: str | None = None
    prompt: BasePromptTemplate | None = None  # type: ignore[type-arg]
    question_key: str = "question"
    cap_headroom: float | None = Field(default=None, ge=1.0)

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _slot: EstimatorSlot = PrivateAttr(default_factory=EstimatorSlot)
    _method: Method = PrivateAttr()

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
        return self._budgeted(binding)

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Runnable[Any, Any]:
        """The wrapped model's ``with_structured_output`` (any ``method``, ``include_raw``),
        with this runnable in the model's place: the budget goes into the prompt, the
        model's parser reads the reply."""
        structured = self.llm.with_structured_output(schema, **kwargs)
        return self._budgeted(structured)

    def _budgeted(self, runnable: Runnable[Any, Any]) -> Runnable[Any, Any]:
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
        return style_for(model_name_of(self.llm), self.style or self._method.style)

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        method = method_for(model_name_of(self.llm), self.method or "tale")
        if method.early_exit is not None:
            raise ValueError(
                "early exit probes a reply from a cached prefix: run it with "
                "tale_shared.pipeline.TalePipeline on the embedded model, not in TaleRunnable"
            )
        self._method = method
        # resolved once, here: "regression" reads and checks its file, not per-call work
        self._slot = resolve_estimator(
            self.estimator if self.estimator is not None else method.estimator
        )

    @property
    def resolved_method(self) -> Method:
        """The method this runnable runs (``method``, else the model's profile method), with
        ``estimator`` and ``style`` when given in place of the method's own."""
        style = self.prompt_style.name
        name = self.estimator if isinstance(self.estimator, str) else self._slot.spec
        if name is None:
            name = self._method.estimator
        if style == self._method.style and name == self._method.estimator:
            return self._method
        return replace(self._method, style=style, estimator=name, label=None)

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
        return {
            "method": self.resolved_method.name,
            "budget": budget.tokens if budget else None,
            "estimator": budget.estimator if budget else None,
            "style": style.name,
            "estimator_usage": budget.usage.model_dump() if budget else None,
            "fallback_reason": budget.fallback_reason if budget else None,
        }

    def _answer_config(self, config: RunnableConfig, tale: dict[str, Any]) -> RunnableConfig:
        answer = patch_config(config)
        answer["tags"] = [*answer.get("tags", []), ANSWER_TAG]
        answer["metadata"] = {
            **answer.get("metadata", {}),
            "tale_budget": tale["budget"],
            "tale_estimator": tale["estimator"],
            "tale_style": tale["style"],
        }
        return answer

    def _plan(
        self,
        budget: TokenBudget | None,
        messages: list[BaseMessage],
        config: RunnableConfig,
        call_kwargs: dict[str, Any],
    ) -> _Plan:
        style = self.prompt_style
        tale = self._metadata(budget, style)
        # stop, temperature, ...: as the caller said, with the cap when there is one
        headroom = self.cap_headroom if self.cap_headroom is not None else self._method.force
        cap = None
        if headroom is not None and budget is not None:
            cap = hard_cap(budget.tokens, headroom)
        kwargs = with_cap(call_kwargs, self.llm, cap)
        tale["cap"] = cap_from_params(kwargs)
        tokens = budget.tokens if budget is not None and style.uses_budget else None
        prompt = with_exemplars(
            inject_budget(messages, style, tokens),
            to_langchain(exemplar_turns(style, self._exemplars, budget=tokens)),
        )
        return _Plan(prompt, self._answer_config(config, tale), kwargs, tale)

    @property
    def _exemplars(self) -> list[Exemplar]:
        return list(load_exemplars()[: self._method.exemplars])

    def _prepare(self, value: Any, child: RunnableConfig, call_kwargs: dict[str, Any]) -> _Plan:
        """Split the input, estimate the budget, announce it, plan the answer call."""
        question, messages = self._split(value, child)
        estimator = self._estimator_for(child)
        budget = estimator.estimate(question) if estimator is not None else None
        plan = self._plan(budget, messages, child, call_kwargs)
        dispatch_custom_event(BUDGET_EVENT, {**plan.tale, "question": question}, config=child)
        return plan

    async def _aprepare(
        self, value: Any, child: RunnableConfig, call_kwargs: dict[str, Any]
    ) -> _Plan:
        question, messages = self._split(value, child)
        estimator = self._estimator_for(child)
        budget = await estimator.aestimate(question) if estimator is not None else None
        plan = self._plan(budget, messages, child, call_kwargs)
        await adispatch_custom_event(
            BUDGET_EVENT, {**plan.tale, "question": question}, config=child
        )
        return plan

    def _note_cap(self, plan: _Plan, reply: BaseMessage) -> None:
        """Compare the provider's output tokens with the cap; mark and warn when over."""
        cap = plan.tale.get("cap")
        usage = getattr(reply, "usage_metadata", None) or {}
        output = usage.get("output_tokens")
        if not isinstance(cap, int) or not isinstance(output, int):
            return
        plan.tale["cap_exceeded"] = output > cap
        if output > cap:
            warn_cap_exceeded(model_name_of(self.llm), cap, output)

    # -- budget forcing (+force): a reply the cap cut gets its final answer -----------------
    def _needs_forcing(self, plan: _Plan, reply: BaseMessage) -> bool:
        """The core's rule (:func:`~tale_shared.methods.should_force`), on this reply."""
        reason = finish_reason_of(reply.response_metadata, reply.additional_kwargs)
        force = self._method.force is not None and bool(plan.kwargs)
        return should_force(reply.text, cut=reason == "length", force=force)

    def _forcing_call(
        self, plan: _Plan, reply: BaseMessage
    ) -> tuple[list[BaseMessage], RunnableConfig, dict[str, Any]]:
        """The follow-up call that asks for the final answer (a child run of this one): the
        core's follow-up turns after the prompt as it was sent."""
        turns = follow_up([], reply.text)
        messages = [*plan.prompt, *to_langchain(turns)]
        return messages, plan.config, cap_kwargs(self.llm, ANSWER_TOKENS)

    def _with_forced(self, reply: BaseMessage, forced: BaseMessage, plan: _Plan) -> BaseMessage:
        usage = add_usage(
            getattr(reply, "usage_metadata", None), getattr(forced, "usage_metadata", None)
        )
        plan.tale["forced"] = True
        return AIMessage(
            content=f"{reply.text}\n\n{forced.text}",
            response_metadata=reply.response_metadata,
            usage_metadata=usage,
            id=reply.id,
        )

    @staticmethod
    def _forced_chunk(forced: BaseMessage) -> AIMessageChunk:
        return AIMessageChunk(
            content=f"\n\n{forced.text}",
            usage_metadata=getattr(forced, "usage_metadata", None),
            response_metadata={"tale_forced": True},
        )

    @staticmethod
    def _tag(message: BaseMessage, tale: dict[str, Any]) -> Any:
        return message.model_copy(
            update={"response_metadata": {**message.response_metadata, "tale": tale}}
        )

    # -- invoke / ainvoke --------------------------------------------------------------------
    def _invoke(
        self,
        value: Any,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> BaseMessage:
        child = patch_config(config, callbacks=run_manager.get_child())
        plan = self._prepare(value, child, kwargs)
        reply: BaseMessage = self.llm.invoke(plan.prompt, plan.config, **plan.kwargs)
        self._note_cap(plan, reply)
        if self._needs_forcing(plan, reply):
            prompt, cfg, kw = self._forcing_call(plan, reply)
            forced = self.llm.invoke(prompt, cfg, **kw)
            reply = self._with_forced(reply, forced, plan)
        return self._tag(reply, plan.tale)  # type: ignore[no-any-return]

    async def _ainvoke(
        self,
        value: Any,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> BaseMessage:
        child = patch_config(config, callbacks=run_manager.get_child())
        plan = await self._aprepare(value, child, kwargs)
        reply: BaseMessage = await self.llm.ainvoke(plan.prompt, plan.config, **plan.kwargs)
        self._note_cap(plan, reply)
        if self._needs_forcing(plan, reply):
            prompt, cfg, kw = self._forcing_call(plan, reply)
            forced = await self.llm.ainvoke(prompt, cfg, **kw)
            reply = self._with_forced(reply, forced, plan)
        return self._tag(reply, plan.tale)  # type: ignore[no-any-return]

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        return self._call_with_config(self._invoke, input, config, **kwargs)

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        return await self._acall_with_config(self._ainvoke, input, config, **kwargs)

    # -- stream / astream: the model's chunks pass through as they come ----------------------
    # The run's lifecycle (start, end, error, astream_events) is langchain-core's own, through
    # _transform_stream_with_config; the input is one value, not a stream of chunks.
    @staticmethod
    def _one(values: list[Any]) -> Any:
        if len(values) != 1:
            raise ValueError(f"TaleRunnable takes one input, got {len(values)} chunks")
        return values[0]

    def _transform(
        self,
        inputs: Iterator[Any],
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Iterator[BaseMessageChunk]:
        child = patch_config(config, callbacks=run_manager.get_child())
        plan = self._prepare(self._one(list(inputs)), child, kwargs)
        final: Any = None
        for i, chunk in enumerate(self.llm.stream(plan.prompt, plan.config, **plan.kwargs)):
            if i == 0:
                chunk = self._tag(chunk, plan.tale)
            final = chunk if final is None else final + chunk
            yield chunk
        if final is not None:
            self._note_cap(plan, final)
        if final is not None and self._needs_forcing(plan, final):
            prompt, cfg, kw = self._forcing_call(plan, final)
            yield self._forced_chunk(self.llm.invoke(prompt, cfg, **kw))

    async def _atransform(
        self,
        inputs: AsyncIterator[Any],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> AsyncIterator[BaseMessageChunk]:
        child = patch_config(config, callbacks=run_manager.get_child())
        plan = await self._aprepare(self._one([v async for v in inputs]), child, kwargs)
        final: Any = None
        first = True
        async for chunk in self.llm.astream(plan.prompt, plan.config, **plan.kwargs):
            if first:
                chunk, first = self._tag(chunk, plan.tale), False
            final = chunk if final is None else final + chunk
            yield chunk
        if final is not None:
            self._note_cap(plan, final)
        if final is not None and self._needs_forcing(plan, final):
            prompt, cfg, kw = self._forcing_call(plan, final)
            yield self._forced_chunk(await self.llm.ainvoke(prompt, cfg, **kw))

    def transform(
        self, input: Iterator[Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[BaseMessage]:
        yield from self._transform_stream_with_config(input, self._transform, config, **kwargs)

    async def atransform(
        self, input: AsyncIterator[Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[BaseMessage]:
        async for chunk in self._atransform_stream_with_config(
            input, self._atransform, config, **kwargs
        ):
            yield chunk

    def stream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[BaseMessageChunk]:
        for chunk in self.transform(iter([input]), config, **kwargs):
            yield cast(BaseMessageChunk, chunk)

    async def astream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[BaseMessageChunk]:
        async def one() -> AsyncIterator[Any]:
            yield input

        async for chunk in self.atransform(one(), config, **kwargs):
            yield cast(BaseMessageChunk, chunk)
