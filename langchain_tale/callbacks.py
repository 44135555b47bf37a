"""Per-query cost tracing for any LangChain run: ``TaleTracer``."""

from __future__ import annotations

import threading
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

from langchain_tale._planned import BUDGET_EVENT, ESTIMATOR_TAG
from langchain_tale.model_adapter import completion_usage, usage_from_reply
from tale_shared.caps import cap_from_params
from tale_shared.pricing import PriceTable
from tale_shared.tracing import TraceAssembler
from tale_shared.usage import CallRole, QueryRecord, TokenUsage, UsageSummary


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


_HOOK_VARS: list[ContextVar[TaleTracer | None]] = []
"""The context variables registered as LangChain configure hooks, one per level of nested
``with TaleTracer():`` blocks ever open at once: a configure hook cannot be unregistered, so
they are reused rather than made per tracer."""
_HOOK_LOCK = threading.Lock()


def _hook_var_for(tracer: TaleTracer) -> ContextVar[TaleTracer | None]:
    """The hook variable ``tracer`` should be set in, in the current context: the one that
    already holds it (a block entered again), else the first that holds no tracer here, else
    a new one (a block nested in another tracer's block)."""
    with _HOOK_LOCK:
        for var in _HOOK_VARS:
            if var.get() is tracer:
                return var
        for var in _HOOK_VARS:
            if var.get() is None:
                return var
        var = ContextVar(f"tale_tracer_{len(_HOOK_VARS)}", default=None)
        register_configure_hook(var, inheritable=True)
        _HOOK_VARS.append(var)
        return var


def registered_hooks() -> int:
    """How many configure hooks tale has registered with LangChain in this process (the
    deepest nesting of ``with TaleTracer():`` blocks, not the number of tracers)."""
    with _HOOK_LOCK:
        return len(_HOOK_VARS)


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
        self._trace = TraceAssembler(price_table)
        self.prices = self._trace.prices
        self.ledger = self._trace.ledger
        self._lock = self._trace.lock
        self._tokens: list[tuple[ContextVar[TaleTracer | None], Token[TaleTracer | None]]] = []

    # -- as a context manager ---------------------------------------------------------------
    def __enter__(self) -> TaleTracer:
        """Trace every LangChain run started inside the block, without passing the tracer as
        a callback: in this thread and the asyncio tasks it starts, in the threads LangChain
        starts (``batch``, ``abatch``, tools run by an agent) and in any thread started with
        ``contextvars.copy_context().run`` or langchain-core's ``ContextThreadPoolExecutor``.
        A bare ``concurrent.futures.ThreadPoolExecutor`` does not carry the block's context
        into its threads (Python copies no context there): pass the tracer in those runs'
        ``config={"callbacks": [tracer]}``, or use ``ContextThreadPoolExecutor``.

        The tracer rides on one of a few context variables registered with LangChain once
        per process (one per level of nested blocks), so opening a tracer per request
        leaves no hook behind."""
        with self._lock:
            var = _hook_var_for(self)
            self._tokens.append((var, var.set(self)))
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            if self._tokens:
                var, token = self._tokens.pop()
                var.reset(token)

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
    def _start(self, run_id: UUID, parent_run_id: UUID | None, inputs: Any) -> None:
        self._trace.join(run_id, parent_run_id, question=_question_of(inputs))

    def _finish(self, run_id: UUID, answer: Any = None, error: BaseException | None = None) -> None:
        text = answer.text if isinstance(answer, BaseMessage) else answer
        # an inner run leaves the tree with its query: only a root is finished
        self._trace.finish(run_id, answer=text if isinstance(text, str) else None, error=error)

    # the assembler's state, as the tracer's own (what tests and debuggers look at)
    @property
    def _parent(self) -> dict[Any, Any]:
        return self._trace.parent

    @property
    def _queries(self) -> dict[Any, Any]:
        return self._trace.queries

    @property
    def _calls(self) -> dict[Any, Any]:
        return self._trace.calls

    @property
    def pending_runs(self) -> int:
        """Runs still being tracked (0 once every query has finished)."""
        return self._trace.pending_runs

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
        self._trace.set_budget(
            run_id,
            budget=data.get("budget"),
            estimator=data.get("estimator"),
            style=data.get("style"),
            method=data.get("method"),
            question=data.get("question"),
        )

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
        role: CallRole = "estimator" if ESTIMATOR_TAG in tags else "answer"
        question = None
        if prompt:
            question = prompt[-1].text if isinstance(prompt[-1], BaseMessage) else str(prompt[-1])
        with self._lock:
            self._trace.join(run_id, parent_run_id, question=question)
            self._trace.start_call(
                run_id,
                run_id,
                role=role,
                model=_model_of(serialized, kwargs),
                prompt=prompt if isinstance(prompt, list) else [],
                cap=_cap_of(kwargs),
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
        record = self._trace.end_call(run_id, usage, model, error=error)
        if record is not None and self._trace.root(run_id) == run_id:
            self._finish(run_id, error=error)  # a model called on its own is a query of its own

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        usage, model = TokenUsage(), None
        try:
            generation = response.generations[0][0]
        except IndexError:
            generation = None
        with self._lock:
            call = self._trace.calls.get(run_id)
            prompt = call.prompt if call is not None else []
        if isinstance(generation, ChatGeneration):
            message = generation.message
            usage = usage_from_reply(message, prompt)
            meta = message.response_metadata or {}
            model = meta.get("model_name") or meta.get("model")
        elif generation is not None:  # a text-completion LLM
            usage = completion_usage(response, prompt)
            llm_output = response.llm_output or {}
            name = llm_output.get("model_name") or llm_output.get("model")
            model = name if isinstance(name, str) else None
        self._record_call(run_id, usage, model)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._record_call(run_id, TokenUsage(), None, error)
