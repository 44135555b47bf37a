"""The small protocol through which the core talks to any chat model.

Messages in, text and usage out, sync and async. The local llama.cpp model implements it
directly; ``langchain_tale`` and ``llama_index_tale`` wrap their frameworks' models in it, so the
zero-shot estimator, the CLI and the benchmarks run on any model those frameworks support.

Example:
    >>> class Echo:
    ...     model_name = "echo"
    ...     def complete(self, messages, *, max_tokens=None):
    ...         return Completion(text=messages[-1].content, model="echo")
    ...     async def acomplete(self, messages, *, max_tokens=None):
    ...         return self.complete(messages, max_tokens=max_tokens)
    >>> isinstance(Echo(), ChatModel)
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from tale_shared.prompts import Message
from tale_shared.usage import CallRecord, CallRole, TokenUsage


class Completion(BaseModel):
    """One model reply: its text, the provider-reported usage, the model and the latency."""

    model_config = ConfigDict(frozen=True)

    text: str
    usage: TokenUsage = Field(default_factory=TokenUsage)
    model: str | None = None
    latency_s: float = Field(default=0.0, ge=0)
    finish_reason: str | None = None
    cap: int | None = Field(default=None, ge=1)
    """The output cap the call was sent with (the core's plan runner sets it)."""

    def to_call_record(self, role: CallRole, *, cost_usd: float | None = None) -> CallRecord:
        return CallRecord(
            role=role,
            model=self.model,
            usage=self.usage,
            latency_s=self.latency_s,
            cost_usd=cost_usd,
            cap=self.cap,
        )


@runtime_checkable
class ChatModel(Protocol):
    """What the core needs from a model: ``complete`` and ``acomplete``."""

    @property
    def model_name(self) -> str: ...

    def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None) -> Completion:
        """Generate one reply to ``messages`` (at most ``max_tokens`` output tokens if set)."""
        ...

    async def acomplete(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> Completion:
        """Async :meth:`complete`."""
        ...


class ModelCallError(RuntimeError):
    """A model call failed (error, timeout); the message says which model and why."""


CUT_FINISH_REASONS = frozenset(
    {"length", "max_tokens", "max_output_tokens", "model_length", "max_tokens_reached"}
)
"""How providers say "cut by the output cap": OpenAI and OpenAI-compatible servers and Ollama
``length``, Anthropic and Bedrock ``max_tokens``, Gemini ``MAX_TOKENS``, the Responses API
``max_output_tokens``. :func:`normalize_finish_reason` turns each into ``"length"``."""

_FINISH_KEYS = ("finish_reason", "stop_reason", "stopReason", "done_reason")


def normalize_finish_reason(reason: object) -> str | None:
    """The core's spelling of a provider's finish reason: ``"length"`` for every provider's
    "cut by the cap", otherwise the reason in lower case (``None`` when there is none).

    >>> [normalize_finish_reason(r) for r in ("length", "max_tokens", "MAX_TOKENS", "stop")]
    ['length', 'length', 'length', 'stop']
    >>> normalize_finish_reason("FinishReason.MAX_TOKENS"), normalize_finish_reason(None)
    ('length', None)
    """
    if reason is None:
        return None
    text = str(getattr(reason, "name", None) or getattr(reason, "value", None) or reason)
    low = text.strip().lower().rsplit(".", 1)[-1]  # enums print as FinishReason.MAX_TOKENS
    if not low:
        return None
    return "length" if low in CUT_FINISH_REASONS else low


def _field(source: object, key: str) -> Any:
    return source.get(key) if isinstance(source, Mapping) else getattr(source, key, None)


def finish_reason_of(*sources: object) -> str | None:
    """The normalised finish reason found in any of ``sources``: mappings (response
    metadata, a raw JSON reply) or objects (a provider SDK's reply) with ``finish_reason``,
    ``stop_reason`` (Anthropic), ``stopReason`` (Bedrock), ``done_reason`` (Ollama),
    ``incomplete_details.reason`` (OpenAI's Responses API) or a first ``choices`` entry that
    has one.

    >>> finish_reason_of({"stopReason": "max_tokens"}), finish_reason_of(None, {})
    ('length', None)
    >>> finish_reason_of({"status": "incomplete",
    ...                   "incomplete_details": {"reason": "max_output_tokens"}})
    'length'
    """
    for source in sources:
        if source is None:
            continue
        for key in _FINISH_KEYS:
            value = _field(source, key)
            if value:
                return normalize_finish_reason(value)
        # OpenAI's Responses API: status "incomplete" with incomplete_details.reason
        details = _field(source, "incomplete_details")
        reason = _field(details, "reason") if details is not None else None
        if reason:
            return normalize_finish_reason(reason)
        choices = (
            source.get("choices")
            if isinstance(source, Mapping)
            else getattr(source, "choices", None)
        )
        if isinstance(choices, Sequence) and not isinstance(choices, str) and choices:
            found = finish_reason_of(choices[0])
            if found:
                return found
    return None
