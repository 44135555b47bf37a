"""Any LlamaIndex LLM seen through the core's ``ChatModel`` protocol, and usage extraction."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole
from llama_index.core.llms import LLM

from tale_shared.local.registry import canonical_model_name
from tale_shared.models import Completion, finish_reason_of
from tale_shared.prompts import Message
from tale_shared.tokens import (
    TokenCounter,
    count_texts,
    get_token_counter,
    prime_packaged_encodings,
)
from tale_shared.usage import CallRole, TokenUsage

logger = logging.getLogger(__name__)

_ROLES = {
    "system": MessageRole.SYSTEM,
    "user": MessageRole.USER,
    "assistant": MessageRole.ASSISTANT,
}
_call_role: ContextVar[CallRole] = ContextVar("tale_call_role", default="answer")


def current_call_role() -> CallRole:
    """Which part of TALE the model call in progress belongs to (read by the tracer)."""
    return _call_role.get()


@contextmanager
def call_role(role: CallRole) -> Iterator[None]:
    token = _call_role.set(role)
    try:
        yield
    finally:
        _call_role.reset(token)


_call_cap: ContextVar[int | None] = ContextVar("tale_call_cap", default=None)


def current_call_cap() -> int | None:
    """The output cap tale gave the model call in progress, if any (read by the tracer:
    LlamaIndex's completion events do not carry the LLM's ``max_tokens``)."""
    return _call_cap.get()


@contextmanager
def call_cap(cap: int | None) -> Iterator[None]:
    token = _call_cap.set(cap)
    try:
        yield
    finally:
        _call_cap.reset(token)


def to_llama_index(messages: Sequence[Message]) -> list[ChatMessage]:
    return [ChatMessage(role=_ROLES[m.role], content=m.content) for m in messages]


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _first_int(obj: Any, *keys: str) -> int | None:
    for key in keys:
        value = _get(obj, key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return None


def token_counter_for(llm: Any = None) -> TokenCounter:
    """The counter for ``llm``'s text — the same name and call as LangChain's side. LlamaIndex
    LLMs share one tokenizer, ``Settings.tokenizer`` (the user's, or LlamaIndex's default
    tiktoken cl100k, which works offline once tale has primed tiktoken's cache); tale's
    default counter if that cannot be had."""
    from llama_index.core import Settings

    prime_packaged_encodings()
    try:
        tokenizer = Settings.tokenizer
    except Exception as exc:
        logger.warning("LlamaIndex's tokenizer is unavailable (%s); counting with tale's", exc)
        return get_token_counter()
    return TokenCounter(tokenizer, "llama_index:Settings.tokenizer")


def usage_from_reply(
    reply: Any, prompt: Sequence[ChatMessage] | str = (), llm: Any = None
) -> TokenUsage:
    """Provider-reported usage of a LlamaIndex chat/completion response.

    Reads ``reply.raw.usage`` (OpenAI: ``prompt_tokens``/``completion_tokens`` and
    ``completion_tokens_details.reasoning_tokens``; Anthropic: ``input_tokens``/
    ``output_tokens``), then ``additional_kwargs``. When the provider reported nothing the
    text is counted (:func:`token_counter_for`) and the usage says ``source="counted"`` and which
    counter counted it.
    """
    raw = _get(reply, "raw")
    gemini = _get(raw, "usage_metadata")
    if _first_int(gemini, "prompt_token_count") is not None:
        # Gemini: thoughts are billed as output beside the candidates' tokens
        thoughts = _first_int(gemini, "thoughts_token_count") or 0
        prompt_tokens = _first_int(gemini, "prompt_token_count") or 0
        cached = _first_int(gemini, "cached_content_token_count") or 0
        return TokenUsage(
            input_tokens=prompt_tokens,
            output_tokens=(_first_int(gemini, "candidates_token_count") or 0) + thoughts,
            reasoning_tokens=thoughts,
            cached_input_tokens=min(prompt_tokens, cached),
            source="provider",
        )
    for holder in (_get(raw, "usage"), raw, _get(reply, "additional_kwargs")):
        n_in = _first_int(holder, "prompt_tokens", "input_tokens")
        n_out = _first_int(holder, "completion_tokens", "output_tokens")
        if n_in is not None or n_out is not None:
            details = _get(holder, "completion_tokens_details") or _get(
                holder, "output_tokens_details"
            )
            # cache reads: OpenAI's prompt_tokens_details.cached_tokens, Anthropic's
            # cache_read_input_tokens (Anthropic counts them apart from input_tokens)
            cached = _first_int(_get(holder, "prompt_tokens_details"), "cached_tokens") or 0
            anthropic_cached = _first_int(holder, "cache_read_input_tokens") or 0
            n_in = (n_in or 0) + anthropic_cached
            reasoning = _first_int(details, "reasoning_tokens") or 0
            if not reasoning and (thought := thinking_text(reply)):
                # Anthropic bills thinking as output without a separate count: count it
                reasoning, _ = count_texts(token_counter_for(llm), [thought])
            return TokenUsage(
                input_tokens=n_in,
                output_tokens=n_out or 0,
                reasoning_tokens=min(reasoning, n_out or 0),
                cached_input_tokens=min(n_in, cached + anthropic_cached),
                source="provider",
            )
    counter = token_counter_for(llm)
    texts = [prompt] if isinstance(prompt, str) else [m.content or "" for m in prompt]
    n_prompt, used = count_texts(counter, texts)
    message = _get(reply, "message")
    text = (message.content if message is not None else _get(reply, "text")) or ""
    n_out, used_out = count_texts(counter, [text])
    return TokenUsage(
        input_tokens=n_prompt,
        output_tokens=n_out,
        source="counted",
        counter=used if used == used_out else used_out,
    )


def thinking_text(response: Any) -> str:
    """The thinking a chat response carries apart from its answer (LlamaIndex's
    ``ThinkingBlock`` s: Anthropic, Gemini), empty when none."""
    message = _get(response, "message")
    blocks = _get(message, "blocks") or []
    parts = [
        block.content
        for block in blocks
        if type(block).__name__ == "ThinkingBlock" and isinstance(block.content, str)
    ]
    return "\n".join(p for p in parts if p)


CAP_FIELDS = ("max_tokens", "max_new_tokens")
"""The fields LlamaIndex LLMs keep their output cap in (OpenAI, OpenAILike, Anthropic, ...;
LlamaCPP and Hugging Face)."""
_uncappable: set[str] = set()


def with_max_tokens(llm: LLM, max_tokens: int | None) -> LLM:
    """``llm`` with ``max_tokens`` as its output cap. LlamaIndex LLMs fix the cap at
    construction, so a capped call goes to a shallow copy with the field changed (a tighter
    cap the LLM already has is kept). An LLM without such a field is returned as it is, with
    a warning once per class: its calls are not capped."""
    if max_tokens is None:
        return llm
    fields = type(llm).model_fields
    name = next((f for f in CAP_FIELDS if f in fields), None)
    if name is None:
        cls = type(llm).__name__
        if cls not in _uncappable:
            _uncappable.add(cls)
            warnings.warn(
                f"{cls} has no max_tokens field: tale cannot cap its output", stacklevel=2
            )
        return llm
    current = getattr(llm, name, None)
    if isinstance(current, int) and 0 < current <= max_tokens:
        return llm
    return llm.model_copy(update={name: max_tokens})


def model_name_of(llm: Any, reply: Any = None) -> str:
    """The model's one name (:func:`~tale_shared.local.registry.canonical_model_name`): the
    one ``reply`` names when given, else the LLM's (its ``model_name`` before its ``model``,
    in the order LangChain's side reads them: ``LocalLlamaLLM``'s names its adapter)."""
    raw = _get(reply, "raw")
    for value in (_get(raw, "model"), _get(llm, "model_name"), _get(llm, "model")):
        if isinstance(value, str) and value:
            return canonical_model_name(value)
    try:
        return str(llm.metadata.model_name)
    except Exception:
        return type(llm).__name__


class LlamaIndexModel:
    """Wraps a LlamaIndex ``LLM`` for the core (zero-shot estimator, search, CLI).

    Calls made through it are marked with ``role`` (``"estimator"`` for the estimator) so the
    :class:`~llama_index_tale.TaleTracer` can tell estimator tokens from answer tokens.

    Example:
        >>> from llama_index.core.llms import MockLLM
        >>> LlamaIndexModel(MockLLM()).complete([Message("user", "hi")]).usage.source
        'counted'
    """

    def __init__(self, llm: LLM, role: CallRole = "answer") -> None:
        self.llm = llm
        self.role = role

    @property
    def model_name(self) -> str:
        return model_name_of(self.llm)

    def _completion(
        self, response: ChatResponse, prompt: list[ChatMessage], start: float
    ) -> Completion:
        return Completion(
            text=response.message.content or "",
            usage=usage_from_reply(response, prompt),
            model=model_name_of(self.llm, response),
            latency_s=time.perf_counter() - start,
            finish_reason=finish_reason_of(response.additional_kwargs, response.raw),
        )

    def _capped(self, max_tokens: int | None) -> LLM:
        return with_max_tokens(self.llm, max_tokens)

    def with_thinking_budget(
        self, budget: int, answer_tokens: int | None = None
    ) -> tuple[LlamaIndexModel, int]:
        """A copy whose calls send ``budget`` through the LLM's thinking knob
        (:mod:`tale_shared.thinking`), and the output cap they need."""
        from llama_index_tale._thinking import settings_for, with_thinking

        settings = settings_for(self.llm, budget, answer_tokens)
        thinking = LlamaIndexModel(with_thinking(self.llm, settings), self.role)
        return thinking, settings.max_output_tokens

    def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None) -> Completion:
        prompt = to_llama_index(messages)
        start = time.perf_counter()
        with call_role(self.role):
            response = self._capped(max_tokens).chat(prompt)
        return self._completion(response, prompt, start)

    async def acomplete(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> Completion:
        prompt = to_llama_index(messages)
        start = time.perf_counter()
        with call_role(self.role):
            response = await self._capped(max_tokens).achat(prompt)
        return self._completion(response, prompt, start)
