"""Tool calling for the embedded models, on LangChain messages: the core's Hermes/Qwen2.5
layout (:mod:`tale_shared.local.tool_layout`) written from LangChain messages, and the calls
it reads back made LangChain ``ToolCall`` s."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.tool import ToolCall, tool_call

from langchain_tale._messages import to_core
from tale_shared.local import tool_layout
from tale_shared.prompts import Message


def with_tools(messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]]) -> list[Message]:
    """Core messages for a tool-using turn: tool descriptions in the system message, earlier
    calls written as ``<tool_call>`` blocks, results as ``<tool_response>`` user turns."""
    out: list[Message] = []
    for m in messages:
        if isinstance(m, ToolMessage):
            out.append(tool_layout.response_turn(m.text))
        elif isinstance(m, AIMessage) and m.tool_calls:
            calls = [(c["name"], c["args"]) for c in m.tool_calls]
            out.append(tool_layout.call_turn(m.text, calls))
        else:
            out.extend(to_core([m]))
    return tool_layout.with_tools_block(out, tools)


def parse_tool_calls(text: str, names: Sequence[str] | None = None) -> tuple[str, list[ToolCall]]:
    """The reply's text without its tool calls, and the calls as LangChain ``ToolCall`` s
    (:func:`tale_shared.local.tool_layout.parse_tool_calls` reads them)."""
    remaining, calls = tool_layout.parse_tool_calls(text, names)
    return remaining, [
        tool_call(name=name, args=args, id=f"call_{uuid.uuid4().hex[:12]}") for name, args in calls
    ]
