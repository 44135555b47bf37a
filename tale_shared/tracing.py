"""Assembling what each query cost from a framework's run tree: the part both tracers share.

A framework reports runs (LangChain) or spans (LlamaIndex) that nest, model calls that start
and end, and tale's budget announcements. :class:`TraceAssembler` keeps the tree, the queries
in flight (one per root), the model calls in flight, and turns them into
:class:`~tale_shared.usage.CallRecord` and :class:`~tale_shared.usage.QueryRecord` entries of
its :class:`~tale_shared.usage.UsageLedger`: the price of each call, the cap it was sent with
and whether the provider kept to it, calls a query ended without, the query's budget. Each
adapter's tracer only translates its framework's events into these calls.

Example:
    >>> trace = TraceAssembler()
    >>> trace.join("q", None, question="What is 2 + 3?")
    True
    >>> trace.join("c", "q")  # the model call's run, inside the query
    False
    >>> trace.start_call("c", "q", role="answer", model="gpt-4o-mini", cap=50)
    >>> call = trace.end_call("c", TokenUsage(input_tokens=20, output_tokens=8, source="provider"))
    >>> record = trace.finish("q", answer="[[5]]")
    >>> record.question, record.calls[0].cap, record.usage.output_tokens
    ('What is 2 + 3?', 50, 8)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from tale_shared.caps import cap_held
from tale_shared.pricing import PriceTable, default_price_table
from tale_shared.usage import CallRecord, CallRole, QueryRecord, TokenUsage, UsageLedger

Key = Hashable


@dataclass
class PendingCall:
    """A model call that has started and not yet reported its usage."""

    role: CallRole
    model: str | None
    started: float
    prompt: Any = None
    cap: int | None = None
    depth: int = 1  # events of inner calls in the same span (an LLM's chat through complete)
    instance: int | None = None  # id() of the object whose method opened the call's span
    span_closed: bool = False  # a streamed call: its span returned the stream, no end yet
    partial: Any = None  # a streamed call: its latest chunk (what has streamed so far)


@dataclass
class PendingQuery:
    """A query in flight: what it has cost so far and what it is waiting for."""

    started: float
    question: str | None = None
    calls: list[CallRecord] = field(default_factory=list)
    budget: int | None = None
    estimator: str | None = None
    style: str | None = None
    method: str | None = None
    answer: str | None = None
    error: BaseException | None = None
    ended: bool = False
    open_spans: int = 0
    calls_in_flight: int = 0
    streams: int = 0  # streamed responses handed to the caller and not yet consumed
    members: list[Key] = field(default_factory=list)

    @property
    def quiet(self) -> bool:
        """Nothing of it is still running: no open span, no call, no unread stream."""
        return self.open_spans <= 0 and self.calls_in_flight <= 0 and self.streams <= 0


UNFINISHED = "unfinished: its query ended before the call reported usage"


def _unpriced(call: PendingCall, error: str) -> CallRecord:
    """A call that reported no usage: it was made (and may bill), its cost is unknown."""
    return CallRecord(
        role=call.role,
        model=call.model,
        latency_s=time.perf_counter() - call.started,
        cost_usd=None,
        error=error,
    )


class TraceAssembler:
    """The run tree, the queries and calls in flight, and the ledger they end in.

    Thread- and async-safe: every method takes :attr:`lock` (re-entrant, so that a tracer can
    hold it across several calls that must see the same state).
    """

    def __init__(self, price_table: PriceTable | None = None) -> None:
        self.prices = price_table or default_price_table()
        self.ledger = UsageLedger()
        self.lock = threading.RLock()
        self.parent: dict[Key, Key | None] = {}
        self.queries: dict[Key, PendingQuery] = {}
        self.calls: dict[Key, PendingCall] = {}

    # -- the tree ----------------------------------------------------------------------------
    def root(self, key: Key | None) -> Key | None:
        """The root of ``key``'s tree (``key`` itself when it has no known parent)."""
        seen = 0
        with self.lock:
            while key is not None and (parent := self.parent.get(key)) is not None:
                key, seen = parent, seen + 1
                if seen > 10_000:
                    break
        return key

    def query_of(self, key: Key | None) -> PendingQuery | None:
        """The query ``key`` belongs to, if it is in flight."""
        with self.lock:
            root = self.root(key)
            return self.queries.get(root) if root is not None else None

    def join(
        self,
        key: Key,
        parent: Key | None,
        *,
        question: str | None = None,
        unseen_parent_is_root: bool = True,
        count_open: bool = False,
    ) -> bool:
        """Add ``key`` under ``parent``. A key with no parent starts a query; so does one whose
        parent was never seen, when ``unseen_parent_is_root`` (LangChain: a handler attached
        inside a chain sees its runnable as the root). ``count_open`` counts the key as an
        open span of its query (the tracer lowers ``open_spans`` when the span ends).
        Returns whether it started a query."""
        with self.lock:
            known = parent is not None and parent in self.parent
            if known or (parent is not None and not unseen_parent_is_root):
                self.parent[key] = parent
                started = False
            else:
                self.parent[key] = None
                self.queries[key] = PendingQuery(started=time.perf_counter(), question=question)
                started = True
            query = self.query_of(key)
            if query is not None:
                query.members.append(key)
                if count_open:
                    query.open_spans += 1
            return started

    # -- model calls -------------------------------------------------------------------------
    def start_call(
        self,
        key: Key,
        tree_key: Key | None,
        *,
        role: CallRole,
        model: str | None,
        prompt: Any = None,
        cap: int | None = None,
        instance: int | None = None,
    ) -> None:
        """A model call ``key`` started inside ``tree_key``'s query (``key`` itself for a
        framework whose calls are runs of the tree)."""
        with self.lock:
            self.calls[key] = PendingCall(
                role, model, time.perf_counter(), prompt, cap, instance=instance
            )
            query = self.query_of(tree_key)
            if query is not None:
                query.calls_in_flight += 1

    def call_record(
        self,
        pending: PendingCall,
        usage: TokenUsage,
        model: str | None = None,
        error: BaseException | None = None,
    ) -> CallRecord:
        """The record of a finished call: its price (unknown stays unknown), its cap, and a
        :class:`~tale_shared.caps.CapExceededWarning` when the provider returned more."""
        model = model or pending.model
        record = CallRecord(
            role=pending.role,
            model=model,
            usage=usage,
            latency_s=time.perf_counter() - pending.started,
            cost_usd=self.prices.cost(model, usage),
            error=repr(error) if error else None,
            cap=pending.cap,
        )
        if record.cap_exceeded:
            cap_held(model, pending.cap, usage.output_tokens)
        return record

    def end_call(
        self,
        key: Key,
        usage: TokenUsage,
        model: str | None = None,
        *,
        error: BaseException | None = None,
        tree_key: Key | None = None,
        cut_short: bool = False,
    ) -> CallRecord | None:
        """Record call ``key`` in its query (the query of ``tree_key``, else of ``key``);
        returns the record, or ``None`` for a call never started here. A call outside any
        query is a query of its own, recorded at once. ``cut_short``: its reply was not read
        to the end (a stream closed early), ``usage`` is what had streamed."""
        with self.lock:
            pending = self.calls.pop(key, None)
        if pending is None:
            return None
        record = self.call_record(pending, usage, model, error)
        if cut_short:
            record = record.model_copy(update={"cut_short": True})
        with self.lock:  # the query cannot end between finding it and filing the call
            filed = self._file(self.query_of(tree_key if tree_key is not None else key), record)
        if filed:
            return record
        self.ledger.add(
            QueryRecord(
                query_id=str(key),
                calls=[record],
                latency_s=record.latency_s,
                error=record.error,
            )
        )
        return record

    # -- budgets and endings -----------------------------------------------------------------
    def set_budget(
        self,
        key: Key | None,
        *,
        budget: int | None,
        estimator: str | None,
        style: str | None,
        method: str | None,
        question: str | None = None,
    ) -> None:
        """A budget was announced inside ``key``'s query."""
        with self.lock:
            query = self.query_of(key)
            if query is not None:
                query.budget, query.estimator = budget, estimator
                query.style, query.method = style, method
                query.question = question or query.question

    def failed_call(self, key: Key, error: BaseException) -> CallRecord | None:
        """A call that raised before reporting usage: recorded with its error and an unknown
        cost (it was made, and may bill), in its query."""
        with self.lock:
            pending = self.calls.pop(key, None)
            query = self.query_of(key)
            if pending is None:
                return None
            record = _unpriced(pending, repr(error))
            self._file(query, record)
            return record

    def _file(self, query: PendingQuery | None, record: CallRecord) -> bool:
        """Add a finished call to its query (no longer in flight); ``False`` if none."""
        if query is None:
            return False
        with self.lock:
            query.calls.append(record)
            query.calls_in_flight -= 1
        return True

    def forget(self, root: Key, *, record_unfinished: bool = True) -> PendingQuery | None:
        """Take query ``root`` and every run of it out of the tree. Calls still in flight are
        recorded as unfinished (they ran, and may bill) when ``record_unfinished``."""
        with self.lock:
            query = self.queries.pop(root, None)
            if query is None:
                return None
            self.parent.pop(root, None)
            for member in query.members:
                self.parent.pop(member, None)
                call = self.calls.pop(member, None)
                if call is not None and record_unfinished:
                    query.calls.append(_unpriced(call, UNFINISHED))
            return query

    def record(
        self,
        root: Key,
        query: PendingQuery,
        *,
        answer: str | None = None,
        error: BaseException | None = None,
    ) -> QueryRecord:
        """Add a query taken out with :meth:`forget` to the ledger."""
        failure = error or query.error
        record = QueryRecord(
            query_id=str(root),
            question=query.question,
            budget=query.budget,
            estimator=query.estimator,
            style=query.style,
            method=query.method,
            answer=answer if answer is not None else query.answer,
            calls=query.calls,
            latency_s=time.perf_counter() - query.started,
            error=repr(failure) if failure else None,
        )
        self.ledger.add(record)
        return record

    def finish(
        self, root: Key, *, answer: str | None = None, error: BaseException | None = None
    ) -> QueryRecord | None:
        """End query ``root`` now (:meth:`forget`, then :meth:`record`)."""
        query = self.forget(root)
        if query is None:
            return None
        return self.record(root, query, answer=answer, error=error)

    @property
    def pending_runs(self) -> int:
        """Runs and calls still tracked (0 once every query has finished)."""
        with self.lock:
            return len(self.parent) + len(self.calls)
