"""Per-query cost tracing for any LangChain run: ``TaleTracer`` and ``tale_usage()``."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

from langchain_tale.model_adapter import usage_from_message
from langchain_tale.runnable import BUDGET_EVENT, ESTIMATOR_TAG
from tale_shared.caps import cap_from_params, warn_cap_exceeded
from tale_shared.pricing import PriceTable, default_price_table
from tale_shared.usage import CallRecord, QueryRecord, TokenUsage, UsageLedger, UsageSummary


@dataclass
class _PendingCall:
    model: str | None
    role: str
    started: float
    prompt: list[BaseMessage] = field(default_factory=list)
    cap: int | None = None


@dataclass
class _PendingQuery:
    question: str | None
    started: float
    calls: list[CallRecord] = field(default_factory=list)
    budget: int | None = None
    estimator: str | None = None
    style: str | None = None
    method: str | None = None
    members: list[UUID] = field(default_factory=list)


def _question_of(inputs: Any) -> str | None:
    if isinstance(inputs, str):
        return inputs
    if isinstance(inputs, dict):
        for key in ("question", "input", "query"):
            if isinstance(inputs.get(key), str):
                return str(inputs[key])
    return None


def _model_of(serialized: dict[str, Any] | None, kwargs: dict[str, Any]) -> str | None:
    metadata = kwargs.get("metadata") or {}
    params = kwargs.get("invocation_params") or {}
    for value in (metadata.get("ls_model_name"), params.get("model_name"), params.get("model")):
        if isinstance(value, str) and value:
            return value
    return None


def _cap_of(kwargs: dict[str, Any]) -> int | None:
    """The output cap a model call was sent with: its invocation parameters (the model's own
    settings and the call's kwargs) and LangChain's ``ls_max_tokens`` metadata."""
    metadata = kwargs.get("metadata") or {}
    return cap_from_params(
        kwargs.get("invocation_params"), {"max_tokens": metadata.get("ls_max_tokens")}
    )


class TaleTracer(BaseCallbackHandler):
    """Records what every query (root run) cost: one :class:`QueryRecord` per query — the
    same name, records, ``summary()`` and exports as LlamaIndex's ``TaleTracer``.

    Per query: the question, the budget and its estimator (when a ``TaleRunnable`` ran), the
    estimator calls' and answer calls' tokens (input, output, reasoning — from the provider's
    ``usage_metadata``, counted with tiktoken only when a model reports none), number of
    calls, latency, model, cost in USD (unknown stays unknown) and budget adherence. Works
    for any chain or chat model, streamed or not; thread- and async-safe.

    Use it as a callback, or as a context manager that traces every LangChain run inside the
    block (as ``get_usage_metadata_callback`` does; nested blocks keep listening until the
    outermost exits).

    Example:
        .. code-block:: python

            tracer = TaleTracer()
            chain.batch(questions, config={"callbacks": [tracer], "max_concurrency": 8})
            with tracer:  # or: everything in the block
                chain.invoke({"question": "..."})
            print(tracer.summary())
            tracer.to_csv("costs.csv")
    """

    raise_error = False
    run_inline = True

    def __init__(self, price_table: PriceTable | None = None) -> None:
        super().__init__()
        self.prices = price_table or default_price_table()
        self.ledger = UsageLedger()
        self._lock = threading.Lock()
        self._parent: dict[UUID, UUID | None] = {}
        self._queries: dict[UUID, _PendingQuery] = {}
        self._calls: dict[UUID, _PendingCall] = {}
        self._context: ContextVar[TaleTracer | None] | None = None
        self._tokens: list[Token[TaleTracer | None]] = []

    # -- as a context manager ---------------------------------------------------------------
    def __enter__(self) -> TaleTracer:
        """Trace every LangChain run started inside the block (and the threads and tasks it
        starts), without passing the tracer as a callback."""
        with self._lock:
            if self._context is None:
                self._context = ContextVar(f"tale_tracer_{id(self)}", default=None)
                register_configure_hook(self._context, inheritable=True)
            self._tokens.append(self._context.set(self))
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            if self._context is not None and self._tokens:
                self._context.reset(self._tokens.pop())

    # -- results -----------------------------------------------------------------------------
    @property
    def records(self) -> list[QueryRecord]:
        return self.ledger.records

    def summary(self) -> UsageSummary:
        return self.ledger.summary()

    def to_jsonl(self, path: str | Path) -> Path:
        return self.ledger.to_jsonl(path)

    def to_csv(self, path: str | Path) -> Path:
        return self.ledger.to_csv(path)

    # -- run tree ----------------------------------------------------------------------------
    # Every run this handler sees (chain, model, tool, retriever) joins the tree, so a model
    # call under a tool still finds its query. A run whose parent this handler never saw is a
    # query of its own: the root of the whole run, or the first run the handler was attached
    # to (``.with_config(callbacks=[handler])`` on a runnable inside a chain).
    def _root(self, run_id: UUID) -> UUID:
        seen = 0
        while (parent := self._parent.get(run_id)) is not None and seen < 10_000:
            run_id, seen = parent, seen + 1
        return run_id

    def _join(self, run_id: UUID, parent_run_id: UUID | None, question: str | None) -> None:
        """Add a run to the tree (under the lock)."""
        if parent_run_id is not None and parent_run_id in self._parent:
            self._parent[run_id] = parent_run_id
            query = self._queries.get(self._root(parent_run_id))
            if query is not None:
                query.members.append(run_id)
        else:
            self._parent[run_id] = None
            self._queries[run_id] = _PendingQuery(question, time.perf_counter())

    def _start(self, run_id: UUID, parent_run_id: UUID | None, inputs: Any) -> None:
        with self._lock:
            self._join(run_id, parent_run_id, _question_of(inputs))

    def _finish(self, run_id: UUID, answer: Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            pending = self._queries.pop(run_id, None)
            if pending is None:
                return  # an inner run: it leaves the tree with its query
            self._parent.pop(run_id, None)
            for member in pending.members:  # nothing of a finished query stays behind
                self._parent.pop(member, None)
                unfinished = self._calls.pop(member, None)
                if unfinished is not None:  # e.g. cancelled: it ran, it may have cost
                    pending.calls.append(
                        CallRecord(
                            role=unfinished.role,  # type: ignore[arg-type]
                            model=unfinished.model,
                            latency_s=time.perf_counter() - unfinished.started,
                            cost_usd=None,
                            error="unfinished: its query ended before the call reported usage",
                        )
                    )
        text = answer.text if isinstance(answer, BaseMessage) else answer
        self.ledger.add(
            QueryRecord(
                query_id=str(run_id),
                question=pending.question,
                budget=pending.budget,
                estimator=pending.estimator,
                style=pending.style,
                method=pending.method,
                answer=text if isinstance(text, str) else None,
                calls=pending.calls,
                latency_s=time.perf_counter() - pending.started,
                error=repr(error) if error else None,
            )
        )

    @property
    def pending_runs(self) -> int:
        """Runs still being tracked (0 once every query has finished)."""
        with self._lock:
            return len(self._parent) + len(self._calls)

    # -- chains ------------------------------------------------------------------------------
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id, inputs)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, outputs)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, error=error)

    # -- tools and retrievers: part of the tree, so model calls under them are found ------
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id, inputs if inputs is not None else input_str)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, output)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, error=error)

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id, query)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, error=error)

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if name != BUDGET_EVENT or not isinstance(data, dict):
            return
        with self._lock:
            pending = self._queries.get(self._root(run_id))
            if pending is not None:
                pending.budget = data.get("budget")
                pending.estimator = data.get("estimator")
                pending.style = data.get("style")
                pending.method = data.get("method")
                pending.question = data.get("question") or pending.question

    # -- model calls -------------------------------------------------------------------------
    def _llm_start(
        self,
        serialized: dict[str, Any] | None,
        run_id: UUID,
        parent_run_id: UUID | None,
        prompt: Any,
        kwargs: dict[str, Any],
    ) -> None:
        tags = kwargs.get("tags") or []
        role = "estimator" if ESTIMATOR_TAG in tags else "answer"
        question = None
        if prompt:
            question = prompt[-1].text if isinstance(prompt[-1], BaseMessage) else str(prompt[-1])
        with self._lock:
            self._join(run_id, parent_run_id, question)
            self._calls[run_id] = _PendingCall(
                _model_of(serialized, kwargs),
                role,
                time.perf_counter(),
                prompt if isinstance(prompt, list) else [],
                _cap_of(kwargs),
            )

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._llm_start(serialized, run_id, parent_run_id, messages[0] if messages else [], kwargs)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._llm_start(serialized, run_id, parent_run_id, prompts, kwargs)

    def _record_call(
        self, run_id: UUID, usage: TokenUsage, model: str | None, error: BaseException | None = None
    ) -> None:
        with self._lock:
            pending = self._calls.pop(run_id, None)
            root = self._root(run_id)
            query = self._queries.get(root)
        if pending is None:
            return
        model = model or pending.model
        call = CallRecord(
            role=pending.role,  # type: ignore[arg-type]
            model=model,
            usage=usage,
            latency_s=time.perf_counter() - pending.started,
            cost_usd=self.prices.cost(model, usage),
            error=repr(error) if error else None,
            cap=pending.cap,
        )
        if call.cap_exceeded and pending.cap is not None:
            warn_cap_exceeded(model, pending.cap, usage.output_tokens)
        if query is not None:
            with self._lock:
                query.calls.append(call)
        if root == run_id:  # a model called on its own is a query of its own
            self._finish(run_id, error=error)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        usage, model = TokenUsage(), None
        try:
            generation = response.generations[0][0]
        except IndexError:
            generation = None
        with self._lock:
            prompt = self._calls[run_id].prompt if run_id in self._calls else []
        if isinstance(generation, ChatGeneration):
            message = generation.message
            usage = usage_from_message(message, prompt)
            meta = message.response_metadata or {}
            model = meta.get("model_name") or meta.get("model")
        elif response.llm_output and isinstance(response.llm_output.get("token_usage"), dict):
            tu = response.llm_output["token_usage"]
            usage = TokenUsage(
                input_tokens=int(tu.get("prompt_tokens", 0)),
                output_tokens=int(tu.get("completion_tokens", 0)),
                source="provider",
            )
            model = response.llm_output.get("model_name")
        self._record_call(run_id, usage, model)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._record_call(run_id, TokenUsage(), None, error)


@contextmanager
def tale_usage(price_table: PriceTable | None = None) -> Generator[TaleTracer, None, None]:
    """Trace every LangChain run inside the block with a new :class:`TaleTracer`, like
    ``get_usage_metadata_callback`` (the same as ``with TaleTracer() as tracer:``).

    Each block has its own tracer and context variable, so nested blocks both see the
    queries of the inner one.

    Example:
        .. code-block:: python

            with tale_usage() as tracer:
                chain.invoke({"question": "..."})
            print(tracer.summary())
    """
    with TaleTracer(price_table) as tracer:
        yield tracer


TaleCallbackHandler = TaleTracer
"""The 0.1 name of :class:`TaleTracer`, kept for one release."""
