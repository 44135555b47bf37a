"""Tool calling for the embedded models in the Hermes/Qwen2.5 layout.

Qwen2.5's chat template describes tools in the system message inside ``<tools></tools>`` and
the model answers a call as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; tool
results go back in a user turn inside ``<tool_response></tool_response>``. This module writes
that prompt from LangChain messages and reads the calls back out of the reply.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.tool import ToolCall, tool_call

from langchain_tale._messages import to_core
from tale_shared.prompts import Message

_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)
_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)

TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    "{tools}\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
)


def tools_prompt(tools: Sequence[dict[str, Any]]) -> str:
    """The system-message block that describes ``tools`` (OpenAI tool schemas)."""
    lines = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return TOOLS_PREAMBLE.format(tools=lines)


def with_tools(messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]]) -> list[Message]:
    """Core messages for a tool-using turn: tool descriptions in the system message, earlier
    calls written as ``<tool_call>`` blocks, results as ``<tool_response>`` user turns."""
    out: list[Message] = []
    block = tools_prompt(tools)
    if messages and messages[0].type == "system":
        out.append(Message("system", f"{messages[0].text}\n\n{block}"))
        rest = messages[1:]
    else:
        out.append(Message("system", block))
        rest = messages
    for m in rest:
        if isinstance(m, ToolMessage):
            out.append(Message("user", f"<tool_response>\n{m.text}\n</tool_response>"))
        elif isinstance(m, AIMessage) and m.tool_calls:
            calls = "\n".join(
                "<tool_call>\n"
                + json.dumps({"name": c["name"], "arguments": c["args"]})
                + "\n</tool_call>"
                for c in m.tool_calls
            )
            out.append(Message("assistant", f"{m.text}\n{calls}".strip()))
        else:
            out.extend(to_core([m]))
    return out


def _call_of(raw: str, names: set[str] | None) -> ToolCall | None:
    try:
        data = json.loads(raw)
        name, args = data["name"], data.get("arguments", {})
        if isinstance(args, str):
            args = json.loads(args)
        args = dict(args)
    except (ValueError, KeyError, TypeError):
        return None
    if names is not None and name not in names:
        return None
    return tool_call(name=str(name), args=args, id=f"call_{uuid.uuid4().hex[:12]}")


def parse_tool_calls(text: str, names: Sequence[str] | None = None) -> tuple[str, list[ToolCall]]:
    """The reply's text without its tool calls, and the calls. A call is a ``<tool_call>``
    block, or — since llama.cpp drops Qwen's ``<tool_call>`` special tokens from the text — a
    ``{"name": <one of names>, "arguments": {...}}`` object on its own: the whole reply, a
    fenced code block, or a line. Unreadable blocks stay in the text, so nothing is silently
    dropped."""
    known = set(names) if names is not None else None
    calls: list[ToolCall] = []

    def take(match: re.Match[str]) -> str:
        call = _call_of(match.group(1), known)
        if call is None:
            return match.group(0)
        calls.append(call)
        return ""

    remaining = _CALL.sub(take, text)
    if not calls and known:  # a call in a code fence, or the whole reply
        for block in [*_FENCE.finditer(remaining), None]:
            raw = block.group(1) if block is not None else remaining.strip()
            call = _call_of(raw, known)
            if call is not None:
                calls.append(call)
                remaining = remaining.replace(block.group(0), "") if block else ""
    if not calls and known:
        kept = []
        for line in remaining.splitlines():
            call = _call_of(line.strip(), known) if line.strip().startswith("{") else None
            if call is None:
                kept.append(line)
            else:
                calls.append(call)
        remaining = "\n".join(kept)
    return remaining.strip(), calls
