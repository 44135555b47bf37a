"""Per-query cost tracing through LlamaIndex's instrumentation module."""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
)
from pathlib import Path
from types import TracebackType
from typing import Any

from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.dispatcher import Dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatInProgressEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionInProgressEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.instrumentation.events.query import QueryStartEvent
from llama_index.core.instrumentation.span.simple import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.schema import QueryBundle
from pydantic import ConfigDict, PrivateAttr

from llama_index_tale.llm_adapter import (
    current_call_cap,
    current_call_role,
    usage_from_reply,
)
from llama_index_tale.query_transform import TaleBudgetEvent
from tale_shared.caps import cap_from_params
from tale_shared.pricing import PriceTable
from tale_shared.tracing import PendingQuery, TraceAssembler
from tale_shared.usage import QueryRecord, UsageSummary

_STREAMING_FOR: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tale_streaming_for", default=None
)
"""The query whose streamed response is being consumed right now (set around each step of
the stream, in the consumer's context)."""


class _EventHandler(BaseEventHandler):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    _tracer: TaleTracer = PrivateAttr()

    @classmethod
    def class_name(cls) -> str:
        return "TaleEventHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self._tracer._on_event(event)


class _SpanHandler(BaseSpanHandler[SimpleSpan]):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    _tracer: TaleTracer = PrivateAttr()

    @classmethod
    def class_name(cls) -> str:
        return "TaleSpanHandler"

    def new_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SimpleSpan:
        self._tracer._span_started(id_, parent_span_id, instance, bound_args)
        return SimpleSpan(id_=id_, parent_id=parent_span_id)

    def prepare_to_exit_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any = None,
        result: Any = None,
        **kwargs: Any,
    ) -> SimpleSpan | None:
        self._tracer._span_ended(id_, result=result)
        return self.open_spans.get(id_)

    def prepare_to_drop_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> SimpleSpan | None:
        self._tracer._span_ended(id_, error=err)
        return self.open_spans.get(id_)


_DONE = object()


class _FollowedStream:
    """A streamed response being read: each step runs with ``_STREAMING_FOR`` naming its
    query (spans started by the step join it), and its text pieces make the answer."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.pieces: list[str] = []

    @contextlib.contextmanager
    def named(self) -> Iterator[None]:
        token = _STREAMING_FOR.set(self.root)
        try:
            yield
        finally:
            _STREAMING_FOR.reset(token)

    def step(self, advance: Callable[[Any, Any], Any], stream: Any) -> Any:
        """``advance(stream, _DONE)`` (``next`` or ``anext``) with the query named; an
        awaitable for ``anext`` is named while it is awaited, as it runs the stream then."""
        with self.named():
            step = advance(stream, _DONE)
        return self._awaited(step) if inspect.isawaitable(step) else step

    async def _awaited(self, step: Awaitable[Any]) -> Any:
        with self.named():
            return await step

    def took(self, item: Any) -> Any:
        if isinstance(item, str):
            self.pieces.append(item)
        return item


def _prompt_argument(bound_args: inspect.BoundArguments | None) -> Any:
    """The messages or prompt a model method was called with (also through LlamaIndex's
    callback wrappers, whose signature is ``(_self, *args, **kwargs)``)."""
    arguments = bound_args.arguments if bound_args is not None else {}
    for name in ("messages", "prompt"):
        if arguments.get(name) is not None:
            return arguments[name]
    positional = arguments.get("args") or ()
    return positional[0] if positional else None


def _same_prompt(a: Any, b: Any) -> bool:
    """Whether two calls were given the same prompt (messages or text)."""
    if a is None or b is None:
        return False
    try:
        return bool(a == b) or list(a) == list(b)
    except TypeError:
        return False


def _answer_text(result: Any) -> str | None:
    for attr in ("response", "text"):
        value = getattr(result, attr, None)
        if isinstance(value, str):
            return value
    message = getattr(result, "message", None)
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else None


class TaleTracer:
    """Records what every query cost, from LlamaIndex's instrumentation events and spans.

    One :class:`~tale_shared.usage.QueryRecord` per root span (a query engine's ``query``,
    an agent run, or a bare LLM call): the question, the budget a
    :class:`~llama_index_tale.TaleQueryTransform` gave it, and each model call — estimator or
    answer — with input, output and reasoning tokens from the provider's raw usage (counted
    with tiktoken where a provider reports none; the record's ``usage.source`` then says
    ``"counted"``), latency, model and USD cost. Same records, ``summary()`` and exports as
    the LangChain side. Correct under concurrent ``aquery`` calls.

    Example:
        .. code-block:: python

            with TaleTracer() as tracer:
                engine.query("...")
            print(tracer.summary())
            tracer.to_jsonl("costs.jsonl")
    """

    def __init__(
        self, price_table: PriceTable | None = None, dispatcher: Dispatcher | None = None
    ) -> None:
        self._trace = TraceAssembler(price_table)
        self.prices = self._trace.prices
        self.ledger = self._trace.ledger
        self._lock = self._trace.lock
        self.dispatcher = dispatcher or get_dispatcher()
        self._instances: dict[str, int] = {}  # span id -> id() of the object that opened it
        self._attached = 0
        self._event_handler = _EventHandler()
        self._event_handler._tracer = self
        self._span_handler = _SpanHandler()
        self._span_handler._tracer = self

    # -- attach / detach ---------------------------------------------------------------------
    def attach(self) -> TaleTracer:
        """Start listening on the dispatcher (the root one by default). Attaching an attached
        tracer again (nested ``with tracer:`` blocks) only counts: it keeps listening until
        the matching number of :meth:`detach` calls."""
        with self._lock:
            self._attached += 1
            first = self._attached == 1
        if first:
            self.dispatcher.add_event_handler(self._event_handler)
            self.dispatcher.add_span_handler(self._span_handler)
        return self

    def detach(self) -> None:
        """Stop listening (after the last of nested attaches). Every query seen so far is
        recorded: one still running gets ``error`` saying so."""
        with self._lock:
            if self._attached == 0:
                return
            self._attached -= 1
            if self._attached:
                return
        self.dispatcher.event_handlers = [
            h for h in self.dispatcher.event_handlers if h is not self._event_handler
        ]
        self.dispatcher.span_handlers = [
            h for h in self.dispatcher.span_handlers if h is not self._span_handler
        ]
        self._settle(everything=True)

    def __enter__(self) -> TaleTracer:
        return self.attach()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.detach()

    # -- results -----------------------------------------------------------------------------
    @property
    def records(self) -> list[QueryRecord]:
        """Records of the finished queries (settling any that have gone quiet)."""
        self._settle()
        return self.ledger.records

    def summary(self) -> UsageSummary:
        self._settle()
        return self.ledger.summary()

    def to_jsonl(self, path: str | Path) -> Path:
        self._settle()
        return self.ledger.to_jsonl(path)

    def to_csv(self, path: str | Path) -> Path:
        self._settle()
        return self.ledger.to_csv(path)

    # -- span tree ---------------------------------------------------------------------------
    # A query is a root span. A query engine's root span ends after its model calls: it is
    # recorded then. A workflow agent's root span ends at once, before its steps run: it is
    # recorded when it has gone quiet (no open span, no model call in flight) and the records
    # are read, or when the tracer is detached. Spans with no model call and no query
    # (index building, embedding) are not queries.
    def _root(self, span_id: str | None) -> str | None:
        root = self._trace.root(span_id)
        return str(root) if root is not None else None

    # A streamed response runs its model call when the caller consumes it, after the query's
    # span has closed, in spans that start with no parent (the instrumentation's context is
    # gone by then). They are joined to their query in two ways. (1) A query that returns a
    # streaming response (``response_gen``) gets its generator wrapped: while a step of it
    # runs, ``_STREAMING_FOR`` names the query, and a parentless span started then belongs
    # to it; the query is recorded when the stream ends. (2) An LLM whose async stream is
    # built on its sync one (``astream_chat`` over ``stream_chat``, most CustomLLMs) opens a
    # parentless span of the same instance, with the same prompt, while the outer call's
    # stream is pending: that span is the outer call's child, so the call is counted once.
    def _span_started(
        self,
        span_id: str,
        parent: str | None,
        instance: Any = None,
        bound_args: inspect.BoundArguments | None = None,
    ) -> None:
        with self._lock:
            if parent is None:
                parent = self._adopter(instance, bound_args)
            if isinstance(instance, BaseLLM):  # what a streamed call is matched by
                self._instances[span_id] = id(instance)
            # a span whose parent this tracer never saw belongs to no query
            self._trace.join(span_id, parent, unseen_parent_is_root=False, count_open=True)

    def _adopter(self, instance: Any, bound_args: inspect.BoundArguments | None) -> str | None:
        """The span a parentless span belongs to when it is a stream's continuation (see
        above), else ``None`` (a query of its own). Under the lock."""
        query = _STREAMING_FOR.get()
        waiting = [
            (key, call)
            for key, call in self._trace.calls.items()
            if instance is not None and call.span_closed and call.instance == id(instance)
        ]
        if waiting:  # (2) first: the stream being consumed may be a query's own call
            prompt = _prompt_argument(bound_args)
            same = [key for key, call in waiting if _same_prompt(call.prompt, prompt)]
            if same:
                return str(same[0])
            if len(waiting) == 1 and query is None:
                return str(waiting[0][0])
        if query is not None and query in self._trace.queries:
            return query
        return None

    def _span_ended(
        self, span_id: str, result: Any = None, error: BaseException | None = None
    ) -> None:
        with self._lock:
            call = self._trace.calls.get(span_id)
            if call is not None and error is None:
                call.span_closed = True  # a stream: its end event comes when it is consumed
            if error is not None:
                # the model call raised: no end event comes, but it was made (and may bill)
                self._trace.failed_call(span_id, error)
            root = self._root(span_id)
            pending = self._trace.queries.get(root) if root is not None else None
            if pending is None or root is None:
                return
            pending.open_spans -= 1
            if span_id != root:
                return
            pending.ended = True
            pending.answer = pending.answer or _answer_text(result)
            pending.error = pending.error or error
            if error is None:
                self._follow_stream(root, pending, result)
            done = pending.quiet and (pending.calls or pending.question is not None)
            if done:
                self._forget(root)
        if done:
            self._trace.record(root, pending)

    def _follow_stream(self, root: str, pending: PendingQuery, result: Any) -> None:
        """Wrap a streaming response's generator so that its model call joins the query and
        the query is recorded when the stream ends (under the lock)."""
        stream = getattr(result, "response_gen", None)
        if isinstance(stream, Generator):
            wrapped: Any = self._sync_stream(root, stream)
        elif isinstance(stream, AsyncGenerator):
            wrapped = self._async_stream(root, stream)
        else:
            return
        try:
            result.response_gen = wrapped
        except (AttributeError, TypeError):  # a frozen response: nothing to follow
            return
        pending.streams += 1

    def _sync_stream(self, root: str, stream: Iterator[Any]) -> Generator[Any, None, None]:
        with self._following(root) as followed:
            try:
                while (item := followed.step(next, stream)) is not _DONE:
                    yield followed.took(item)
            except GeneratorExit:
                # closed early by its reader: close the model's stream now, so that its call
                # is recorded (cut short) before the query is
                close = getattr(stream, "close", None)
                if close is not None:
                    with followed.named():
                        close()
                raise

    async def _async_stream(
        self, root: str, stream: AsyncIterator[Any]
    ) -> AsyncGenerator[Any, None]:
        with self._following(root) as followed:
            try:
                while (item := await followed.step(anext, stream)) is not _DONE:
                    yield followed.took(item)
            except GeneratorExit:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    with followed.named():
                        await aclose()
                raise

    @contextlib.contextmanager
    def _following(self, root: str) -> Iterator[_FollowedStream]:
        """Report the end of a followed stream once: read to the end, closed early by its
        reader (not an error) or failed (the query's error)."""
        followed = _FollowedStream(root)
        error: BaseException | None = None
        try:
            yield followed
        except GeneratorExit:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._stream_ended(root, "".join(followed.pieces), error)

    def _stream_ended(self, root: str, text: str, error: BaseException | None) -> None:
        with self._lock:
            pending = self._trace.queries.get(root)
            if pending is None:
                return
            pending.streams -= 1
            pending.answer = pending.answer or text or None
            if error is not None:
                pending.error = pending.error or error
            done = pending.ended and pending.quiet
            if done:
                self._forget(root)
        if done:
            self._trace.record(root, pending)

    def _forget(self, root: str) -> None:
        """Take a query out of the tree (under the lock); a detached tracer's calls in flight
        leave with it unrecorded, as they report nothing more."""
        query = self._trace.forget(root, record_unfinished=False)
        for member in query.members if query is not None else ():
            self._instances.pop(str(member), None)

    def _settle(self, *, everything: bool = False) -> None:
        with self._lock:
            ready = [
                (root, q)
                for root, q in self._trace.queries.items()
                if everything or (q.ended and q.quiet)
            ]
            if everything:
                self._cut_streams({str(root) for root, _ in ready})
            for root, pending in ready:
                self._forget(str(root))
                unconsumed = (
                    pending.ended and pending.open_spans <= 0 and not pending.calls_in_flight
                )
                if (
                    not (pending.ended and pending.quiet)
                    and pending.error is None
                    and not (unconsumed and pending.streams > 0)
                ):
                    pending.error = RuntimeError("still running when the tracer was detached")
        for root, pending in ready:
            if pending.calls or pending.question is not None:
                self._trace.record(root, pending)

    def _cut_streams(self, roots: set[str]) -> None:
        """At detach: the streamed calls of ``roots`` still being read are recorded with what
        has streamed so far, marked ``cut_short`` (under the lock)."""
        for key, call in list(self._trace.calls.items()):
            if call.span_closed and self._root(str(key)) in roots:
                usage = usage_from_reply(call.partial, call.prompt)
                self._trace.end_call(key, usage, call.model, tree_key=key, cut_short=True)

    # -- events ------------------------------------------------------------------------------
    def _query_of(self, event: BaseEvent) -> PendingQuery | None:
        return self._trace.query_of(event.span_id)

    def _on_event(self, event: BaseEvent) -> None:
        if isinstance(event, QueryStartEvent):
            q = event.query
            text = q.query_str if isinstance(q, QueryBundle) else str(q)
            with self._lock:
                pending = self._query_of(event)
                if pending is not None and pending.question is None:
                    pending.question = text
        elif isinstance(event, TaleBudgetEvent):
            announced = ("budget", "estimator", "style", "method", "question")
            self._trace.set_budget(
                event.span_id, **{name: getattr(event, name) for name in announced}
            )
        elif isinstance(event, (LLMChatStartEvent, LLMCompletionStartEvent)):
            model = event.model_dict.get("model") or event.model_dict.get("model_name")
            prompt = event.messages if isinstance(event, LLMChatStartEvent) else event.prompt
            key = event.span_id or event.id_
            with self._lock:
                # Only the outermost LLM event of a call counts: an LLM that implements chat
                # through complete (MockLLM, CustomLLM...) emits both, one inside the other.
                if key in self._trace.calls:
                    self._trace.calls[key].depth += 1
                    return
                if self._inside_call(event.span_id):
                    return
                self._trace.start_call(
                    key,
                    event.span_id,
                    role=current_call_role(),
                    model=model,
                    prompt=prompt,
                    cap=cap_from_params(
                        event.additional_kwargs,
                        event.model_dict,
                        {"max_tokens": current_call_cap()},
                    ),
                    instance=self._instances.get(key),
                )
        elif isinstance(event, (LLMChatInProgressEvent, LLMCompletionInProgressEvent)):
            with self._lock:
                call = self._trace.calls.get(event.span_id or "")
                if call is not None:
                    call.partial = event.response
        elif isinstance(event, (LLMChatEndEvent, LLMCompletionEndEvent)):
            self._on_llm_end(event)
        elif isinstance(event, ExceptionEvent):
            self._on_stream_stopped(event)

    def _inside_call(self, span_id: str | None) -> bool:
        """Whether a span lies inside a model call already being recorded (under the lock)."""
        seen = 0
        key: Any = span_id
        while key is not None and (key := self._trace.parent.get(key)) is not None:
            if key in self._trace.calls:
                return True
            seen += 1
            if seen > 10_000:
                break
        return False

    def _on_stream_stopped(self, event: ExceptionEvent) -> None:
        """A streamed call that stopped before its end event: closed early by its reader
        (``GeneratorExit``: a web client that disconnected, a ``break``) or failed midway.
        It was made and billed: recorded with what had streamed (the provider's usage if the
        last chunk carried it, else counted), marked ``cut_short``; a failure also carries
        its error."""
        key = event.span_id or ""
        with self._lock:
            call = self._trace.calls.get(key)
            if call is None or not call.span_closed:
                return  # not a stream being read: the span's own end handles it
            partial = call.partial
        usage = usage_from_reply(partial, call.prompt)
        closed = isinstance(event.exception, GeneratorExit)
        self._trace.end_call(
            key,
            usage,
            call.model,
            error=None if closed else event.exception,
            tree_key=key,
            cut_short=True,
        )

    def _on_llm_end(self, event: LLMChatEndEvent | LLMCompletionEndEvent) -> None:
        key = event.span_id or ""
        with self._lock:
            call = self._trace.calls.get(key)
            if call is None:
                return  # an inner call's end event
            call.depth -= 1
            if call.depth > 0:
                return
        response = event.response
        usage = usage_from_reply(response, call.prompt)
        raw = getattr(response, "raw", None)
        raw_model = raw.get("model") if isinstance(raw, dict) else getattr(raw, "model", None)
        model = raw_model if isinstance(raw_model, str) else call.model
        # recorded in its query; a call outside any span is a query of its own
        self._trace.end_call(key, usage, model, tree_key=event.span_id)
