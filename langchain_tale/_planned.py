"""A runnable that stands in for a chat model: it plans one call (the prompt, its config, the
cap kwargs, the ``tale`` metadata), sends it to the wrapped model, and tags the reply.

``TaleRunnable`` plans a budgeted call (and forces a cut answer); ``TokenSkipRunnable`` plans
a call in TokenSkip's layout. This class runs a plan the same way for both: ``invoke``,
``ainvoke``, ``stream`` and ``astream`` with langchain-core's run lifecycle, the answer call a
child run of this one, the cap checked against the provider's usage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event
from langchain_core.callbacks.manager import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.messages.ai import add_usage
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import patch_config
from pydantic import ConfigDict

from langchain_tale.model_adapter import model_name_of
from tale_shared.caps import cap_held

BUDGET_EVENT = "tale_budget"
"""The custom event a planned call announces its ``tale`` metadata and question with."""
ESTIMATOR_TAG = "tale:estimator"
"""The tag of an estimator's model call (tracers count it as the estimator's)."""
ANSWER_TAG = "tale:answer"
"""The tag of the answer call."""


@dataclass(frozen=True)
class PreparedCall:
    """What the answer call sends: the prompt, its config and cap kwargs, the metadata."""

    prompt: list[BaseMessage]
    config: RunnableConfig
    kwargs: dict[str, Any]
    tale: dict[str, Any]
    llm: BaseChatModel | None = None
    """The model the answer call goes to when not the runnable's own (a copy whose thinking
    setting a per-call kwarg cannot replace)."""


class PlannedModelCall(RunnableSerializable[Any, BaseMessage]):
    """Runs the one call a subclass plans (:meth:`_prepare`) on ``llm``; see the module."""

    llm: BaseChatModel

    model_config = ConfigDict(arbitrary_types_allowed=True)

    # -- what a subclass decides --------------------------------------------------------------
    def _prepare(
        self, value: Any, child: RunnableConfig, call_kwargs: dict[str, Any]
    ) -> PreparedCall:
        raise NotImplementedError

    async def _aprepare(
        self, value: Any, child: RunnableConfig, call_kwargs: dict[str, Any]
    ) -> PreparedCall:
        return self._prepare(value, child, call_kwargs)

    def _forcing_call(
        self, plan: PreparedCall, reply: BaseMessage
    ) -> tuple[list[BaseMessage], RunnableConfig, dict[str, Any]] | None:
        """A follow-up call to make after ``reply`` (budget forcing), or ``None``."""
        return None

    @staticmethod
    def _tag(message: BaseMessage, tale: dict[str, Any]) -> Any:
        return message.model_copy(
            update={"response_metadata": {**message.response_metadata, "tale": tale}}
        )

    # -- the parts every plan shares ------------------------------------------------------------
    @staticmethod
    def _announce(plan: PreparedCall, question: str, child: RunnableConfig) -> None:
        dispatch_custom_event(BUDGET_EVENT, {**plan.tale, "question": question}, config=child)

    @staticmethod
    async def _aannounce(plan: PreparedCall, question: str, child: RunnableConfig) -> None:
        await adispatch_custom_event(
            BUDGET_EVENT, {**plan.tale, "question": question}, config=child
        )

    def _note_cap(self, plan: PreparedCall, reply: BaseMessage) -> None:
        """Compare the provider's output tokens with the cap; mark and warn when over."""
        cap = plan.tale.get("cap")
        usage = getattr(reply, "usage_metadata", None) or {}
        output = usage.get("output_tokens")
        if not isinstance(cap, int) or not isinstance(output, int):
            return
        plan.tale["cap_exceeded"] = not cap_held(model_name_of(self.llm), cap, output)

    def _with_forced(
        self, reply: BaseMessage, forced: BaseMessage, plan: PreparedCall
    ) -> BaseMessage:
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
            response_metadata={"tale": {"forced": True}},
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
        reply: BaseMessage = (plan.llm or self.llm).invoke(plan.prompt, plan.config, **plan.kwargs)
        self._note_cap(plan, reply)
        follow = self._forcing_call(plan, reply)
        if follow is not None:
            prompt, cfg, kw = follow
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
        llm = plan.llm or self.llm
        reply: BaseMessage = await llm.ainvoke(plan.prompt, plan.config, **plan.kwargs)
        self._note_cap(plan, reply)
        follow = self._forcing_call(plan, reply)
        if follow is not None:
            prompt, cfg, kw = follow
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
        for i, chunk in enumerate(
            (plan.llm or self.llm).stream(plan.prompt, plan.config, **plan.kwargs)
        ):
            if i == 0:
                chunk = self._tag(chunk, plan.tale)
            final = chunk if final is None else final + chunk
            yield chunk
        if final is not None:
            self._note_cap(plan, final)
        follow = self._forcing_call(plan, final) if final is not None else None
        if follow is not None:
            prompt, cfg, kw = follow
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
        llm = plan.llm or self.llm
        async for chunk in llm.astream(plan.prompt, plan.config, **plan.kwargs):
            if first:
                chunk, first = self._tag(chunk, plan.tale), False
            final = chunk if final is None else final + chunk
            yield chunk
        if final is not None:
            self._note_cap(plan, final)
        follow = self._forcing_call(plan, final) if final is not None else None
        if follow is not None:
            prompt, cfg, kw = follow
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
