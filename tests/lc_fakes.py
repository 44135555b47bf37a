"""LangChain fakes: langchain-core's fake chat model, made to report usage and a model name."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

ESTIMATOR_MARK = "estimate the minimum number of tokens"


class UsageFakeChatModel(FakeListChatModel):
    """Replies ``estimate_reply`` to the estimator prompt and ``responses[0]`` otherwise,
    reporting usage as word counts and ``model_name`` like a provider would."""

    responses: list[str] = Field(default_factory=lambda: ["3 + 5 = 8. [[8]]"])
    model_name: str | None = "gpt-4o-mini"
    estimate_reply: str = "Budget: [[120]]"
    report_usage: bool = True
    seen: list[tuple[list[BaseMessage], dict[str, Any]]] = Field(default_factory=list)

    def _reply(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
        self.seen.append((messages, kwargs))
        if ESTIMATOR_MARK in messages[-1].text:
            return self.estimate_reply
        return self.responses[0]

    def _message_kwargs(self, messages: list[BaseMessage], text: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.report_usage:
            n_in = sum(len(m.text.split()) for m in messages)
            n_out = len(text.split())
            out["usage_metadata"] = {
                "input_tokens": n_in,
                "output_tokens": n_out,
                "total_tokens": n_in + n_out,
                "output_token_details": {"reasoning": 1},
            }
        if self.model_name:
            out["response_metadata"] = {"model_name": self.model_name}
        return out

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self._reply(messages, {**kwargs, **({"stop": stop} if stop else {})})
        message = AIMessage(content=text, **self._message_kwargs(messages, text))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = self._reply(messages, {**kwargs, **({"stop": stop} if stop else {})})
        words = text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == len(words) - 1 else word + " "
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", **self._message_kwargs(messages, text))
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._stream(messages, stop, None, **kwargs):
            if run_manager and chunk.text:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


class ToolCallingFake(UsageFakeChatModel):
    """Plays a script of AI messages (tool calls, then an answer) and accepts bind_tools."""

    script: list[AIMessage] = Field(default_factory=list)
    step: int = 0

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        settings = {k: v for k, v in kwargs.items() if k not in ("tool_choice", "strict")}
        return self.bind(**settings) if settings else self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append((messages, kwargs))
        if ESTIMATOR_MARK in messages[-1].text:  # the estimator's call: not a script step
            text = self.estimate_reply
            reply = AIMessage(content=text, **self._message_kwargs(messages, text))
            return ChatResult(generations=[ChatGeneration(message=reply)])
        planned = self.script[min(self.step, len(self.script) - 1)]
        self.step += 1
        message = planned.model_copy(update=self._message_kwargs(messages, planned.text or "x"))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._generate(messages, stop, None, **kwargs).generations[0].message
        assert isinstance(message, AIMessage)
        chunks = [
            {
                "name": c["name"],
                "args": json.dumps(c["args"]),
                "id": c["id"],
                "index": i,
                "type": "tool_call_chunk",
            }
            for i, c in enumerate(message.tool_calls)
        ]
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=message.content,
                tool_call_chunks=chunks,
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
            )
        )
