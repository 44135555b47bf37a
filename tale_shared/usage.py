"""Usage records: one per model call, one per query, and a thread-safe ledger of queries.

This is the one record type that the CLI, both framework adapters and the benchmarks share,
so a figure means the same thing everywhere.

Example:
    >>> from tale_shared.usage import CallRecord, QueryRecord, TokenUsage, UsageLedger
    >>> call = CallRecord(role="answer", model="gpt-4o-mini",
    ...                   usage=TokenUsage(input_tokens=50, output_tokens=80))
    >>> ledger = UsageLedger()
    >>> ledger.add(QueryRecord(question="2+2?", budget=100, calls=[call]))
    >>> ledger.summary().output_tokens
    80
"""

from __future__ import annotations

import csv
import logging
import re
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from tale_shared._io import atomic_writer, iter_json_lines
from tale_shared._redact import redact_optional
from tale_shared._validation import one_line_error

logger = logging.getLogger(__name__)

UsageSource = Literal["provider", "counted", "none"]
"""Where token numbers came from: the provider's report, our own counting, or nowhere."""

CallRole = Literal["estimator", "answer", "forced", "probe", "other"]
"""What a call was for: the budget estimate, the answer, a forced final answer after a cap cut
the reasoning (budget forcing), an early-exit probe, or anything else."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str | None) -> str | None:
    """``value`` with lone surrogates (which cannot be written as UTF-8) replaced by U+FFFD,
    so that a record accepted in memory can always be exported.

    >>> clean_text("ok \\ud800") == "ok \\ufffd"
    True
    """
    return None if value is None else _SURROGATE.sub("\ufffd", value)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """Text cells that a spreadsheet would run as a formula get a leading ``'``.

    >>> csv_safe("=HYPERLINK(1)"), csv_safe("-2"), csv_safe(-2)
    ("'=HYPERLINK(1)", "'-2", -2)
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _now() -> datetime:
    return datetime.now(timezone.utc)


class TokenUsage(BaseModel):
    """Tokens of one or more model calls. Provider-reported numbers are the truth.

    ``source`` says where the numbers came from: ``"provider"`` (reported usage),
    ``"counted"`` (re-tokenised by tale because the provider reported none) or ``"none"``
    (no call was made); ``counter`` names what counted them (``"tiktoken:o200k_base"``,
    ``"langchain:ChatOpenAI"``, ``"llama_index:Settings.tokenizer"``, ...). Adding two usages
    keeps the weakest source and the first counter.
    """

    model_config = ConfigDict(frozen=True)

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    reasoning_tokens: int = Field(default=0, ge=0)
    cached_input_tokens: int = Field(default=0, ge=0)
    """Input tokens the provider took from its prompt cache (part of ``input_tokens``): for
    the embedded llama.cpp models, the start of the prompt the previous call had already
    evaluated; for APIs, what they report as cache reads."""
    source: UsageSource = "none"
    counter: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @computed_field  # type: ignore[prop-decorator]
    @property
    def visible_output_tokens(self) -> int:
        """Output tokens of the visible answer: ``output_tokens`` less the thinking
        (``reasoning_tokens``, part of the output and billed as output)."""
        return max(0, self.output_tokens - self.reasoning_tokens)

    def __add__(self, other: TokenUsage) -> TokenUsage:
        if not isinstance(other, TokenUsage):
            return NotImplemented
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            source=_combine_sources(self.source, other.source),
            counter=self.counter or other.counter,
        )


def _combine_sources(a: UsageSource, b: UsageSource) -> UsageSource:
    if a == "none":
        return b
    if b == "none":
        return a
    return "counted" if "counted" in (a, b) else "provider"


def sum_usage(usages: Iterable[TokenUsage]) -> TokenUsage:
    """Sum usages (an empty iterable gives zero usage with source ``"none"``)."""
    total = TokenUsage()
    for usage in usages:
        total = total + usage
    return total


class CallRecord(BaseModel):
    """One model call: which part of the method made it, its tokens, latency and cost.

    ``cost_usd`` is ``None`` when the model's price is unknown — never a silent 0. ``cap`` is
    the output cap the call was sent with (``None``: uncapped); ``cap_exceeded`` says the
    provider reported more output tokens than that (tokens tale counted itself, with another
    tokenizer than the model's, are never taken as proof).
    """

    role: CallRole = "answer"
    model: str | None = None
    usage: TokenUsage = Field(default_factory=TokenUsage)
    latency_s: float = Field(default=0.0, ge=0)
    cost_usd: float | None = None
    error: str | None = None
    cap: int | None = Field(default=None, ge=1)
    cut_short: bool = False
    """The call's reply was not read to its end (a stream its reader closed early): its
    usage is what had streamed by then."""

    @field_validator("error", mode="after")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        return redact_optional(clean_text(value))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cap_exceeded(self) -> bool:
        return (
            self.cap is not None
            and self.usage.source == "provider"
            and self.usage.output_tokens > self.cap
        )


class QueryRecord(BaseModel):
    """Everything one query cost: the budget it got and every call it made.

    The estimator's calls are part of the query's cost, as TALE's paper should have counted.
    """

    query_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    question: str | None = None
    budget: int | None = None
    estimator: str | None = None
    style: str | None = None
    method: str | None = None
    answer: str | None = None
    calls: list[CallRecord] = Field(default_factory=list)
    latency_s: float = Field(default=0.0, ge=0)
    started_at: datetime = Field(default_factory=_now)
    error: str | None = None

    @field_validator("question", "answer", "error", "style", "estimator", "method", mode="after")
    @classmethod
    def _writable_text(cls, value: str | None) -> str | None:
        return clean_text(value)

    @field_validator("error", mode="after")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        return redact_optional(value)

    def _usage_of(self, role: CallRole | None) -> TokenUsage:
        return sum_usage(c.usage for c in self.calls if role is None or c.role == role)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def estimator_usage(self) -> TokenUsage:
        return self._usage_of("estimator")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def answer_usage(self) -> TokenUsage:
        return sum_usage(c.usage for c in self.calls if c.role != "estimator")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def usage(self) -> TokenUsage:
        return self._usage_of(None)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def n_calls(self) -> int:
        return len(self.calls)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def models(self) -> list[str]:
        return sorted({c.model for c in self.calls if c.model})

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_usd(self) -> float | None:
        """Total cost, or ``None`` when any call's price is unknown."""
        costs = [c.cost_usd for c in self.calls]
        if any(c is None for c in costs):
            return None
        return float(sum(c for c in costs if c is not None))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cap_exceeded(self) -> bool:
        """Whether any call returned more output tokens than its cap allowed."""
        return any(c.cap_exceeded for c in self.calls)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def budget_adherence(self) -> float | None:
        """Answer output tokens divided by the budget (below 1.0: within budget)."""
        if not self.budget:
            return None
        return self.answer_usage.output_tokens / self.budget


class UsageSummary(BaseModel):
    """Totals over many queries."""

    queries: int
    calls: int
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    """Thinking tokens, part of ``output_tokens`` (and priced as output)."""
    estimator_input_tokens: int
    estimator_output_tokens: int
    cost_usd: float | None
    queries_with_unknown_cost: int
    mean_budget: float | None
    mean_budget_adherence: float | None
    mean_latency_s: float | None
    capped_calls: int = 0
    cap_exceeded_calls: int = 0
    visible_output_tokens: int = 0
    """Output tokens of the visible answers (``output_tokens`` less ``reasoning_tokens``)."""

    def __str__(self) -> str:
        cost = "unknown" if self.cost_usd is None else f"${self.cost_usd:.6f}"
        exceeded = (
            f", {self.cap_exceeded_calls} of {self.capped_calls} capped calls over their cap"
            if self.cap_exceeded_calls
            else ""
        )
        thinking = f" ({self.reasoning_tokens} thinking)" if self.reasoning_tokens else ""
        return (
            f"{self.queries} queries, {self.calls} calls, "
            f"{self.input_tokens} in / {self.output_tokens} out tokens{thinking} "
            f"(estimator {self.estimator_input_tokens} in / {self.estimator_output_tokens} out), "
            f"cost {cost}{exceeded}"
        )


def summarize(records: Iterable[QueryRecord]) -> UsageSummary:
    """Aggregate query records into a :class:`UsageSummary`."""
    records = list(records)
    total = sum_usage(r.usage for r in records)
    est = sum_usage(r.estimator_usage for r in records)
    unknown = sum(1 for r in records if r.cost_usd is None)
    budgets = [r.budget for r in records if r.budget]
    adherence = [a for r in records if (a := r.budget_adherence) is not None]
    return UsageSummary(
        queries=len(records),
        calls=sum(r.n_calls for r in records),
        input_tokens=total.input_tokens,
        output_tokens=total.output_tokens,
        reasoning_tokens=total.reasoning_tokens,
        visible_output_tokens=total.visible_output_tokens,
        estimator_input_tokens=est.input_tokens,
        estimator_output_tokens=est.output_tokens,
        cost_usd=None if unknown else float(sum(r.cost_usd or 0.0 for r in records)),
        queries_with_unknown_cost=unknown,
        mean_budget=sum(budgets) / len(budgets) if budgets else None,
        mean_budget_adherence=sum(adherence) / len(adherence) if adherence else None,
        mean_latency_s=sum(r.latency_s for r in records) / len(records) if records else None,
        capped_calls=sum(1 for r in records for c in r.calls if c.cap is not None),
        cap_exceeded_calls=sum(1 for r in records for c in r.calls if c.cap_exceeded),
    )


CSV_COLUMNS = (
    "query_id",
    "started_at",
    "question",
    "budget",
    "estimator",
    "style",
    "method",
    "models",
    "n_calls",
    "estimator_input_tokens",
    "estimator_output_tokens",
    "answer_input_tokens",
    "answer_output_tokens",
    "reasoning_tokens",
    "visible_output_tokens",
    "usage_source",
    "latency_s",
    "cost_usd",
    "budget_adherence",
    "cap_exceeded",
    "error",
)


def _csv_row(r: QueryRecord) -> dict[str, object]:
    return {
        "query_id": r.query_id,
        "started_at": r.started_at.isoformat(),
        "question": r.question,
        "budget": r.budget,
        "estimator": r.estimator,
        "style": r.style,
        "method": r.method,
        "models": ";".join(r.models),
        "n_calls": r.n_calls,
        "estimator_input_tokens": r.estimator_usage.input_tokens,
        "estimator_output_tokens": r.estimator_usage.output_tokens,
        "answer_input_tokens": r.answer_usage.input_tokens,
        "answer_output_tokens": r.answer_usage.output_tokens,
        "reasoning_tokens": r.usage.reasoning_tokens,
        "visible_output_tokens": r.usage.visible_output_tokens,
        "usage_source": r.usage.source,
        "latency_s": round(r.latency_s, 6),
        "cost_usd": r.cost_usd,
        "budget_adherence": r.budget_adherence,
        "cap_exceeded": r.cap_exceeded,
        "error": r.error,
    }


class UsageLedger:
    """A thread-safe, append-only collection of :class:`QueryRecord`.

    Both adapters' tracers keep one; ``summary()``, ``to_jsonl()`` and ``to_csv()`` are the
    same everywhere.

    Example:
        >>> ledger = UsageLedger()
        >>> ledger.add(QueryRecord(question="q"))
        >>> len(ledger)
        1
    """

    def __init__(
        self,
        records: Iterable[QueryRecord] = (),
        listeners: Iterable[Callable[[QueryRecord], object]] = (),
    ) -> None:
        self._lock = threading.Lock()
        self._records: list[QueryRecord] = list(records)
        self._listeners: list[Callable[[QueryRecord], object]] = list(listeners)

    def add_listener(self, listener: Callable[[QueryRecord], object]) -> None:
        """Call ``listener(record)`` for every record added from now on (an exporter such as
        :class:`tale_shared.otel.OTelExporter`). A listener that raises is logged, never lets
        the traced query fail."""
        with self._lock:
            self._listeners.append(listener)

    def add(self, record: QueryRecord) -> None:
        with self._lock:
            self._records.append(record)
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(record)
            except Exception:
                logger.exception("a usage listener failed on query %s", record.query_id)

    @property
    def records(self) -> list[QueryRecord]:
        """A snapshot copy of the records so far."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __iter__(self) -> Iterator[QueryRecord]:
        return iter(self.records)

    def summary(self) -> UsageSummary:
        return summarize(self.records)

    def to_jsonl(self, path: str | Path) -> Path:
        """Write one JSON object per query (with its calls) to ``path``, atomically: on any
        error the previous file is left as it was."""
        path = Path(path)
        with atomic_writer(path) as fh:
            for record in self.records:
                fh.write(record.model_dump_json() + "\n")
        return path

    def to_csv(self, path: str | Path) -> Path:
        """Write one flat row per query to ``path``, atomically. Text cells that a
        spreadsheet would evaluate (``=``, ``+``, ``-``, ``@``...) are prefixed with ``'``."""
        path = Path(path)
        with atomic_writer(path, newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for record in self.records:
                writer.writerow({k: csv_safe(v) for k, v in _csv_row(record).items()})
        return path

    @classmethod
    def from_jsonl(cls, path: str | Path) -> UsageLedger:
        """Read records written by :meth:`to_jsonl`. A last line that a crash cut short is
        skipped with a warning (the records before it are whole); any other line that is not
        a record raises ``ValueError`` naming the line."""
        lines = list(iter_json_lines(path))
        records = []
        for index, (n, data, problem) in enumerate(lines):
            if problem is not None:
                if index == len(lines) - 1:
                    logger.warning("%s:%d: skipped a line cut short (%s)", path, n, problem)
                    warnings.warn(
                        f"{path}:{n}: skipped the last line, cut short ({problem})",
                        CutLineWarning,
                        stacklevel=2,
                    )
                    continue
                raise ValueError(f"{path}:{n} is {problem}")
            if not isinstance(data, dict):
                raise ValueError(f"{path}:{n} is not a query record: a {type(data).__name__}")
            for key in (
                "estimator_usage",
                "answer_usage",
                "usage",
                "n_calls",
                "models",
                "cost_usd",
                "budget_adherence",
            ):
                data.pop(key, None)
            try:
                records.append(QueryRecord.model_validate(data))
            except ValueError as exc:
                raise ValueError(
                    f"{path}:{n} is not a query record: {one_line_error(exc)}"
                ) from None
        return cls(records)


class CutLineWarning(UserWarning):
    """A JSONL file's last line was cut short (a crash while it was written) and skipped."""
