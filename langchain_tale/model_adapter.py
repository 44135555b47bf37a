"""Any LangChain chat model seen through the core's ``ChatModel`` protocol."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLanguageModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableConfig

from langchain_tale._caps import cap_kwargs
from langchain_tale._messages import to_langchain
from tale_shared.local.registry import canonical_model_name
from tale_shared.models import Completion, finish_reason_of
from tale_shared.prompts import Message
from tale_shared.tokens import (
    TokenCounter,
    count_texts,
    get_token_counter,
    prime_packaged_encodings,
)
from tale_shared.usage import TokenUsage


def model_name_of(llm: Any, reply: Any = None) -> str:
    """The model's one name (:func:`~tale_shared.local.registry.canonical_model_name`): the
    one ``reply`` names in its response metadata when given, else the LangChain chat model's,
    else its class name — the same name and call as LlamaIndex's side."""
    meta = getattr(reply, "response_metadata", None) or {}
    for value in (meta.get("model_name"), meta.get("model")):
        if isinstance(value, str) and value:
            return canonical_model_name(value)
    for attr in ("model_name", "model", "model_id", "model_path"):
        value = getattr(llm, attr, None)
        if isinstance(value, str) and value:
            return canonical_model_name(value)
    return type(llm).__name__


def token_counter_for(llm: Any) -> TokenCounter:
    """The model's own token counter when its class has one (``ChatOpenAI`` counts with the
    model's tiktoken encoding, a ``custom_get_token_ids`` is honoured), else tale's default.

    langchain-core's fallback (a GPT-2 tokenizer fetched from the Hugging Face hub) is never
    used: it needs the network and is the wrong tokenizer for most models.
    """
    if isinstance(llm, BaseLanguageModel) and (
        llm.custom_get_token_ids is not None
        or type(llm).get_token_ids is not BaseLanguageModel.get_token_ids
    ):
        prime_packaged_encodings()  # tiktoken's files, for counters that call tiktoken
        return TokenCounter(llm.get_token_ids, f"langchain:{type(llm).__name__}")
    return get_token_counter()


def countable_text(message: BaseMessage) -> str:
    """What a message sends to the model, as text to count: its text and, for an AI message,
    each tool call's name and JSON arguments (a tool call costs output tokens too)."""
    calls = getattr(message, "tool_calls", None) or []
    parts: list[str] = [str(message.text)]
    parts.extend(
        json.dumps({"name": c.get("name"), "arguments": c.get("args")}, ensure_ascii=False)
        for c in calls
    )
    return "\n".join(p for p in parts if p)


def usage_from_reply(
    reply: BaseMessage, prompt: Sequence[BaseMessage] = (), llm: Any = None
) -> TokenUsage:
    """Provider-reported usage of an AI message. When there is none the text is counted,
    with ``llm``'s own counter where it has one (:func:`token_counter_for`), and the usage
    names the counter."""
    usage = getattr(reply, "usage_metadata", None)
    if usage:
        details = usage.get("output_token_details") or {}
        input_details = usage.get("input_token_details") or {}
        n_in = int(usage.get("input_tokens", 0))
        n_out = int(usage.get("output_tokens", 0))
        reasoning = int(details.get("reasoning", 0) or 0)
        if not reasoning and (thought := thinking_text(reply)):
            # Anthropic, Bedrock and Ollama bill thinking as output without a separate count
            reasoning, _ = count_texts(token_counter_for(llm), [thought])
        return TokenUsage(
            input_tokens=n_in,
            output_tokens=n_out,
            reasoning_tokens=min(reasoning, n_out),
            cached_input_tokens=min(n_in, int(input_details.get("cache_read", 0) or 0)),
            source="provider",
        )
    counter = token_counter_for(llm)
    n_in, used = count_texts(counter, (countable_text(m) for m in prompt))
    thought = thinking_text(reply)
    n_out, used_out = count_texts(counter, [t for t in (thought, countable_text(reply)) if t])
    n_thought = count_texts(counter, [thought])[0] if thought else 0
    return TokenUsage(
        input_tokens=n_in,
        output_tokens=n_out,
        reasoning_tokens=min(n_thought, n_out),
        source="counted",
        counter=used if used == used_out else used_out,
    )


def thinking_text(message: BaseMessage) -> str:
    """The thinking a reply carries apart from its answer: Anthropic's ``thinking`` blocks,
    Bedrock's reasoning blocks, Ollama's ``reasoning_content`` (empty when none)."""
    parts: list[str] = []
    content = message.content
    if isinstance(content, list):
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "thinking" and isinstance(block.get("thinking"), str):
                parts.append(block["thinking"])
            elif kind in ("reasoning_content", "reasoning"):
                inner = block.get("reasoning_content") or block.get("reasoning") or {}
                text = inner.get("text") if isinstance(inner, dict) else inner
                if isinstance(text, str):
                    parts.append(text)
    extra = (message.additional_kwargs or {}).get("reasoning_content")
    if isinstance(extra, str):
        parts.append(extra)
    return "\n".join(p for p in parts if p)


def _whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    return value if isinstance(value, int) and value >= 0 else None


def completion_usage(
    response: LLMResult, prompts: Sequence[Any] = (), llm: Any = None
) -> TokenUsage:
    """Usage of a text-completion LLM's call (a ``BaseLLM``: no chat message to carry
    ``usage_metadata``): the provider's ``llm_output["token_usage"]`` (``prompt_tokens``,
    ``completion_tokens``) when it gives both, else the prompts and every generated text
    counted with ``llm``'s counter (``source="counted"``)."""
    reported = (response.llm_output or {}).get("token_usage") or (response.llm_output or {}).get(
        "usage"
    )
    if isinstance(reported, dict):
        n_in = _whole(reported.get("prompt_tokens", reported.get("input_tokens")))
        n_out = _whole(reported.get("completion_tokens", reported.get("output_tokens")))
        if n_in is not None and n_out is not None:
            return TokenUsage(input_tokens=n_in, output_tokens=n_out, source="provider")
    counter = token_counter_for(llm)
    texts = [p if isinstance(p, str) else countable_text(p) for p in prompts]
    n_in, used = count_texts(counter, texts)
    outputs = [g.text for row in response.generations for g in row if g.text]
    n_out, _ = count_texts(counter, outputs)
    return TokenUsage(input_tokens=n_in, output_tokens=n_out, source="counted", counter=used)


class LangChainModel:
    """Wraps a LangChain ``BaseChatModel`` for the core (zero-shot estimator, search, CLI).

    Every call goes through ``llm.invoke`` / ``llm.ainvoke`` with ``config``, so callbacks and
    tracing see it as a child run.

    Example:
        >>> from langchain_core.language_models import FakeListChatModel
        >>> from tale_shared.estimators import ZeroShotEstimator
        >>> est = ZeroShotEstimator(LangChainModel(FakeListChatModel(responses=["[[80]]"])))
        >>> est.estimate("What is 2 + 2?").tokens
        80
    """

    def __init__(
        self,
        llm: BaseChatModel,
        config: RunnableConfig | None = None,
        call_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.llm = llm
        self.config = config
        self.call_kwargs = dict(call_kwargs or {})
        """Sent with every call (a thinking knob, :meth:`with_thinking_budget`)."""

    @property
    def model_name(self) -> str:
        return model_name_of(self.llm)

    def with_config(self, config: RunnableConfig | None) -> LangChainModel:
        return LangChainModel(self.llm, config, self.call_kwargs)

    def with_thinking_budget(
        self, budget: int, answer_tokens: int | None = None
    ) -> tuple[LangChainModel, int]:
        """A copy whose calls send ``budget`` through the model's thinking knob
        (:mod:`tale_shared.thinking`), and the output cap they need."""
        from langchain_tale._thinking import with_thinking

        kwargs, settings, llm = with_thinking(self.call_kwargs, self.llm, budget, answer_tokens)
        kwargs = {k: v for k, v in kwargs.items() if k not in ("max_tokens", "max_output_tokens")}
        return LangChainModel(llm, self.config, kwargs), settings.max_output_tokens

    def _kwargs(self, max_tokens: int | None) -> dict[str, Any]:
        if "options" in self.call_kwargs:  # Ollama: the cap lives in the options
            options = {**self.call_kwargs["options"], "num_predict": max_tokens}
            return {**self.call_kwargs, "options": options}
        return {**cap_kwargs(self.llm, max_tokens), **self.call_kwargs}

    def _completion(
        self, message: BaseMessage, prompt: list[BaseMessage], start: float
    ) -> Completion:
        meta = getattr(message, "response_metadata", {}) or {}
        return Completion(
            text=message.text,
            usage=usage_from_reply(message, prompt, self.llm),
            model=meta.get("model_name") or meta.get("model") or self.model_name,
            latency_s=time.perf_counter() - start,
            finish_reason=finish_reason_of(meta, getattr(message, "additional_kwargs", None)),
        )

    def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None) -> Completion:
        prompt = to_langchain(messages)
        start = time.perf_counter()
        reply = self.llm.invoke(prompt, config=self.config, **self._kwargs(max_tokens))
        return self._completion(reply, prompt, start)

    async def acomplete(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> Completion:
        prompt = to_langchain(messages)
        start = time.perf_counter()
        reply = await self.llm.ainvoke(prompt, config=self.config, **self._kwargs(max_tokens))
        return self._completion(reply, prompt, start)


__all__ = [
    "LangChainModel",
    "completion_usage",
    "model_name_of",
    "token_counter_for",
    "usage_from_reply",
]


def load_api_model(spec: str) -> LangChainModel:
    """``provider:model`` (``openai:gpt-4o-mini``) as a core model, through LangChain's
    ``init_chat_model`` at temperature 0. The core's ``load_model`` (``tale bench --model
    openai:...``) finds it through the ``tale.model_loaders`` entry point; needs
    ``tale-reasoning[agents]`` and the provider's package."""
    from langchain.chat_models import init_chat_model

    try:
        return LangChainModel(init_chat_model(spec, temperature=0))
    except ValueError as exc:
        provider = spec.partition(":")[0]
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        supported = next((line for line in lines if line.lower().startswith("supported")), "")
        raise ValueError(
            f"cannot load {spec!r}: LangChain knows no model provider {provider!r}"
            + (f" ({supported.rstrip('.')})" if supported else "")
            + "; use provider:model, an embedded model name, a .gguf path or an http(s) URL"
        ) from None
