"""``TaleQueryEngine``: a ``TransformQueryEngine`` whose async path awaits the estimator."""

from __future__ import annotations

import copy
import types
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import TypeVar

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.response.schema import (
    RESPONSE_TYPE,
    AsyncStreamingResponse,
    StreamingResponse,
)
from llama_index.core.llms import LLM
from llama_index.core.query_engine import TransformQueryEngine
from llama_index.core.schema import QueryBundle

from llama_index_tale._thinking import settings_for, with_thinking
from llama_index_tale.llm_adapter import call_cap, with_max_tokens
from llama_index_tale.query_transform import TaleQueryTransform
from tale_shared.caps import check_cap_headroom, hard_cap

T = TypeVar("T")


class TaleQueryEngine(TransformQueryEngine):
    """Wraps any query engine with a :class:`TaleQueryTransform`.

    The stock ``TransformQueryEngine.aquery`` calls the transform synchronously, which blocks
    the event loop for as long as the zero-shot estimator's model call takes; this engine
    awaits ``TaleQueryTransform.arun`` instead. Sync queries behave the same.
    ``cap_headroom`` also caps the answer at ``ceil(budget * headroom)`` tokens (the
    synthesizer's LLM, copied per query with that ``max_tokens``); the response's metadata
    then holds ``tale_cap``, and :class:`~llama_index_tale.TaleTracer` marks a call whose
    provider returned more.

    Example:
        .. code-block:: python

            engine = TaleQueryEngine(index.as_query_engine(llm=llm), TaleQueryTransform(llm=llm))
            response = await engine.aquery("...")
            response.metadata["tale"]["budget"]  # as LangChain's response_metadata["tale"]
    """

    def __init__(
        self,
        query_engine: BaseQueryEngine,
        query_transform: TaleQueryTransform | None = None,
        cap_headroom: float | None = None,
    ) -> None:
        super().__init__(query_engine, query_transform or TaleQueryTransform())
        self._tale = self._query_transform
        cap_headroom = check_cap_headroom(cap_headroom)
        if cap_headroom is not None and _synthesizer_llm(query_engine) is None:
            raise TypeError(
                f"cap_headroom caps the LLM of a query engine's response synthesizer "
                f"(RetrieverQueryEngine, index.as_query_engine()); "
                f"{type(query_engine).__name__} has none"
            )
        self._cap_headroom = cap_headroom

    @classmethod
    def class_name(cls) -> str:
        return "TaleQueryEngine"

    def _with_budget(self, response: RESPONSE_TYPE, metadata: dict[str, object]) -> RESPONSE_TYPE:
        response.metadata = {**(response.metadata or {}), **metadata}
        cap = metadata.get("tale_cap")
        if isinstance(cap, int):
            # a streamed answer calls the model when the stream is read: announce its cap then
            if isinstance(response, StreamingResponse):
                response.response_gen = _under_cap(response.response_gen, cap)
            elif isinstance(response, AsyncStreamingResponse):
                response.response_gen = _aunder_cap(response.response_gen, cap)
        return response

    def _cap(self, metadata: dict[str, object]) -> int | None:
        """The answer call's cap, once :meth:`_engine_for` has set it."""
        cap = metadata.get("tale_cap")
        return cap if isinstance(cap, int) else None

    def _engine_for(self, metadata: dict[str, object]) -> BaseQueryEngine:
        """The engine this query runs on: a shallow copy whose synthesizer calls a copy of
        the LLM capped at ``ceil(budget * headroom)`` (with ``cap_headroom``), or with the
        budget sent through its thinking knob (a ``+think`` method: a reasoning model) —
        nothing shared is changed, so concurrent queries keep their own settings."""
        tale = metadata.get("tale")
        budget = tale.get("budget") if isinstance(tale, dict) else None
        if not isinstance(budget, int):
            return self._query_engine
        cap = hard_cap(budget, self._cap_headroom) if self._cap_headroom is not None else None
        llm = _synthesizer_llm(self._query_engine)
        think = isinstance(self._tale, TaleQueryTransform) and self._tale.resolved_method.think
        if think and llm is not None:
            settings = settings_for(llm, budget, cap)
            capped = with_thinking(llm, settings)
            cap = settings.max_output_tokens
            if isinstance(tale, dict):
                tale["thinking"] = settings.as_dict()
        elif cap is not None and llm is not None:
            capped = with_max_tokens(llm, cap)
        else:
            return self._query_engine
        metadata["tale_cap"] = cap
        if isinstance(tale, dict):
            tale["cap"] = cap
        engine = copy.copy(self._query_engine)
        synthesizer = _copy_with_own_methods(engine._response_synthesizer)  # type: ignore[attr-defined]
        synthesizer._llm = capped
        engine._response_synthesizer = synthesizer  # type: ignore[attr-defined]
        return engine

    def _query(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        metadata: dict[str, object] = {}
        budgeted = self._query_transform.run(query_bundle, metadata=metadata)
        engine = self._engine_for(metadata)
        with call_cap(self._cap(metadata)):
            return self._with_budget(engine.query(budgeted), metadata)

    async def _aquery(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        metadata: dict[str, object] = {}
        assert isinstance(self._query_transform, TaleQueryTransform)
        budgeted = await self._query_transform.arun(query_bundle, metadata=metadata)
        engine = self._engine_for(metadata)
        with call_cap(self._cap(metadata)):
            return self._with_budget(await engine.aquery(budgeted), metadata)


def _under_cap(tokens: Iterator[str], cap: int) -> Generator[str, None, None]:
    """The stream with the cap announced around each step only (the model call runs inside a
    step), so that nothing leaks into the reader's context between steps."""
    iterator = iter(tokens)
    while True:
        with call_cap(cap):
            try:
                token = next(iterator)
            except StopIteration:
                return
        yield token


async def _aunder_cap(tokens: AsyncIterator[str], cap: int) -> AsyncGenerator[str, None]:
    """:func:`_under_cap` for an async stream: the cap is set around each step only, so that
    nothing leaks into the reader's context between steps."""
    iterator = aiter(tokens)
    while True:
        with call_cap(cap):
            try:
                token = await anext(iterator)
            except StopAsyncIteration:
                return
        yield token


def _copy_with_own_methods(obj: T) -> T:
    """A shallow copy whose stored bound methods of ``obj`` (a synthesizer keeps e.g. its
    program factory as ``self._default_program_factory``) are bound to the copy, so that
    they read the copy's attributes."""
    clone = copy.copy(obj)
    for name, value in vars(clone).items():
        if isinstance(value, types.MethodType) and value.__self__ is obj:
            setattr(clone, name, types.MethodType(value.__func__, clone))
    return clone


def _synthesizer_llm(engine: BaseQueryEngine) -> LLM | None:
    llm = getattr(getattr(engine, "_response_synthesizer", None), "_llm", None)
    return llm if isinstance(llm, LLM) else None
