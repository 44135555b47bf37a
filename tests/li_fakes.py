"""LlamaIndex fakes: MockLLM that reports usage in ``raw`` like a provider, and spies."""

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
    MessageRole,
)
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from pydantic import Field

ESTIMATOR_MARK = "estimate the minimum number of tokens"


class UsageMockLLM(MockLLM):
    """Replies ``[[budget]]`` to the estimator prompt and ``answer`` otherwise, with OpenAI-style
    usage (word counts) in ``raw``; ``async_delay_s`` makes ``achat`` await (never block)."""

    answer: str = "3 + 5 = 8. [[8]]"
    estimate_reply: str = "Budget: [[120]]"
    report_usage: bool = True
    async_delay_s: float = 0.0
    seen: list[list[ChatMessage]] = Field(default_factory=list)

    def __init__(self, **kwargs: Any) -> None:
        mine = {
            k: kwargs.pop(k)
            for k in list(kwargs)
            if k in type(self).model_fields and k not in MockLLM.model_fields
        }
        super().__init__(**kwargs)
        for key, value in mine.items():
            setattr(self, key, value)

    def _respond(self, messages: Sequence[ChatMessage]) -> ChatResponse:
        self.seen.append(list(messages))
        last = messages[-1].content or ""
        text = self.estimate_reply if ESTIMATOR_MARK in last else self.answer
        raw = None
        if self.report_usage:
            n_in = sum(len((m.content or "").split()) for m in messages)
            raw = {
                "model": "gpt-4o-mini",
                "usage": {
                    "prompt_tokens": n_in,
                    "completion_tokens": len(text.split()),
                    "completion_tokens_details": {"reasoning_tokens": 1},
                },
            }
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), raw=raw)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._respond(messages)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._complete(prompt)

    def _complete(self, prompt: str) -> CompletionResponse:
        r = self._respond([ChatMessage(role=MessageRole.USER, content=prompt)])
        return CompletionResponse(text=r.message.content or "", raw=r.raw)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        if self.async_delay_s:
            await asyncio.sleep(self.async_delay_s)
        return self._complete(prompt)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        if self.async_delay_s:
            await asyncio.sleep(self.async_delay_s)
        return self._respond(messages)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        response = self._respond(messages)
        response.delta = response.message.content
        return iter([response])

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        response = self._respond(messages)
        response.delta = response.message.content

        async def gen() -> ChatResponseAsyncGen:
            yield response

        return gen()


class SpyEmbedding(MockEmbedding):
    """MockEmbedding that remembers which query texts were embedded."""

    queries: list[str] = Field(default_factory=list)

    def _get_query_embedding(self, query: str) -> list[float]:
        self.queries.append(query)
        return super()._get_query_embedding(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        self.queries.append(query)
        return super()._get_query_embedding(query)
