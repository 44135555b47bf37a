"""Tool calling for the embedded models in the Hermes/Qwen2.5 layout, framework-free.

Qwen2.5's chat template describes tools in the system message inside ``<tools></tools>`` and
the model answers a call as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; tool
results go back in a user turn inside ``<tool_response></tool_response>``. This module writes
those blocks and reads the calls back out of a reply; ``ChatLocalLlama.bind_tools``
(LangChain) and ``LocalLlamaLLM`` as a function-calling LLM (LlamaIndex) both use it, so the
embedded model sees one layout in both frameworks.

Example:
    >>> text, calls = parse_tool_calls(
    ...     'Let me look.\\n<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>', ["add"]
    ... )
    >>> text, calls
    ('Let me look.', [('add', {'a': 1})])
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from tale_shared.prompts import Message

_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)
_FENCE = re.compile(r"```(?:json)?\s*([\[{].*?[\]}])\s*```", re.S)

TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    "{tools}\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
)

ToolCallText = tuple[str, dict[str, Any]]
"""A call read from a reply: the tool's name and its arguments."""


def tools_prompt(tools: Sequence[dict[str, Any]]) -> str:
    """The system-message block that describes ``tools`` (OpenAI tool schemas)."""
    lines = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return TOOLS_PREAMBLE.format(tools=lines)


def tool_names(tools: Sequence[dict[str, Any]]) -> list[str]:
    """The names of OpenAI tool schemas."""
    return [t["function"]["name"] for t in tools if "function" in t]


def with_tools_block(messages: Sequence[Message], tools: Sequence[dict[str, Any]]) -> list[Message]:
    """``messages`` with the tools described in the system message (a new one first when
    there is none)."""
    block = tools_prompt(tools)
    out = list(messages)
    if out and out[0].role == "system":
        return [Message("system", f"{out[0].content}\n\n{block}"), *out[1:]]
    return [Message("system", block), *out]


def call_turn(text: str, calls: Sequence[ToolCallText]) -> Message:
    """An earlier assistant turn that called tools, as the model writes one."""
    blocks = "\n".join(
        "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"
        for name, args in calls
    )
    return Message("assistant", f"{text}\n{blocks}".strip())


def response_turn(result: str) -> Message:
    """A tool's result, as the model reads one: a user turn in ``<tool_response>``."""
    return Message("user", f"<tool_response>\n{result}\n</tool_response>")


MAX_CALLS_PER_REPLY = 4
"""The most calls a forced reply may make when several are allowed."""

PLAN_CHARS = 300
"""The longest plan a planned forced reply may write before its calls (about 75 tokens)."""


def call_schema(
    tools: Sequence[dict[str, Any]],
    name: str | None = None,
    *,
    several: bool = False,
    plan: bool = False,
) -> dict[str, Any]:
    """The JSON schema of one call to ``tools`` (OpenAI tool schemas) — or to the tool
    ``name`` — as the layout writes it: ``{"name": ..., "arguments": {...}}``. Given to the
    embedded model as a grammar, it makes the reply a tool call (``tool_choice``).
    ``several``: a JSON array of 1 to :data:`MAX_CALLS_PER_REPLY` calls (parallel calls, e.g.
    two look-ups at once). ``plan``: ``{"plan": <words>, "calls": [...]}`` — the model says
    what it knows and what it will do (at most :data:`PLAN_CHARS` characters) before it
    calls; :func:`parse_tool_calls` returns the plan as the reply's text.

    >>> add = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
    >>> call_schema([add])["anyOf"][0]["properties"]["name"]
    {'const': 'add'}
    >>> call_schema([add], several=True)["maxItems"]
    4
    >>> call_schema([add], plan=True)["required"]
    ['plan', 'calls']
    """
    chosen = [t for t in tools if "function" in t and name in (None, t["function"]["name"])]
    if not chosen:
        raise ValueError(f"no tool named {name!r} among {tool_names(tools)}")
    one = _one_call_schema(chosen)
    most = MAX_CALLS_PER_REPLY if several else 1
    calls = {"type": "array", "items": one, "minItems": 1, "maxItems": most}
    if plan:
        return {
            "type": "object",
            "properties": {"plan": {"type": "string", "maxLength": PLAN_CHARS}, "calls": calls},
            "required": ["plan", "calls"],
        }
    return calls if several else one


def first_reply_of_turn(roles: Sequence[str]) -> bool:
    """Whether the next reply is the first of the user's turn: no tool result after the last
    user message (``roles`` in order, ``"user"``/``"tool"``/others). An earlier exchange or
    a worked example in the history does not count.

    >>> first_reply_of_turn(["system", "user", "assistant", "tool", "user"])
    True
    >>> first_reply_of_turn(["user", "assistant", "tool"])
    False
    """
    for role in reversed(roles):
        if role == "tool":
            return False
        if role == "user":
            return True
    return True


def _one_call_schema(chosen: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "name": {"const": t["function"]["name"]},
                    "arguments": t["function"].get("parameters") or {"type": "object"},
                },
                "required": ["name", "arguments"],
            }
            for t in chosen
        ]
    }


def forced_tool(tool_choice: Any) -> tuple[bool, str | None]:
    """Read a ``tool_choice`` as LangChain and OpenAI spell it: ``(forced, name)``. Forced:
    ``"required"``/``"any"``/``True``, a tool's name, or ``{"type": "function", "function":
    {"name": ...}}``; not forced: ``None``, ``"auto"``, ``"none"``, ``False``."""
    if tool_choice in (None, False, "auto", "none"):
        return False, None
    if tool_choice in (True, "required", "any"):
        return True, None
    if isinstance(tool_choice, str):
        return True, tool_choice
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
        if isinstance(name, str):
            return True, name
    raise ValueError(f"cannot read tool_choice {tool_choice!r}")


def _planned(raw: str, names: set[str] | None) -> tuple[str, list[ToolCallText]] | None:
    """A planned reply (``call_schema(plan=True)``): its plan and its calls; ``None`` if it
    is not one or any of its calls is not a call."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or set(data) != {"plan", "calls"}:
        return None
    calls = _calls_of(json.dumps(data["calls"]), names)
    return None if not calls else (str(data["plan"]).strip(), calls)


def _calls_of(raw: str, names: set[str] | None) -> list[ToolCallText] | None:
    """The calls of a JSON object or a JSON array of them; ``None`` unless all are calls."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, list):
        call = _call_of(raw, names)
        return None if call is None else [call]
    calls = [_call_of(json.dumps(item), names) for item in data]
    if not calls or any(c is None for c in calls):
        return None
    return [c for c in calls if c is not None]


def _call_of(raw: str, names: set[str] | None) -> ToolCallText | None:
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
    return str(name), args


def _cut_array(raw: str, names: set[str] | None) -> tuple[list[ToolCallText], str] | None:
    """The complete calls at the start of a JSON array that was cut off (a reply that ran
    out of tokens mid-array) and the unread rest; ``None`` if it is not such an array."""
    text = raw.strip()
    if not text.startswith("["):
        return None
    decoder = json.JSONDecoder()
    calls: list[ToolCallText] = []
    at = 1
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        try:
            item, end = decoder.raw_decode(text, at)
        except ValueError:
            break
        call = _call_of(json.dumps(item), names)
        if call is None:
            return None
        calls.append(call)
        at = end
    return (calls, text[at:].strip()) if calls else None


def parse_tool_calls(
    text: str, names: Sequence[str] | None = None
) -> tuple[str, list[ToolCallText]]:
    """The reply's text without its tool calls, and the calls. A call is a ``<tool_call>``
    block, or — since llama.cpp drops Qwen's ``<tool_call>`` special tokens from the text — a
    ``{"name": <one of names>, "arguments": {...}}`` object on its own (or a JSON array of
    them, what a grammar for several calls writes; cut off by the token limit, the calls it
    completed): the whole reply, a fenced code block, or a line. A planned reply (``{"plan":
    ..., "calls": [...]}``, see :func:`call_schema`) gives its plan as the text. Unreadable
    blocks stay in the text, so nothing is silently dropped."""
    known = set(names) if names is not None else None
    if known and (planned := _planned(text.strip(), known)) is not None:
        return planned
    calls: list[ToolCallText] = []

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
            found = _calls_of(raw, known)
            if found is not None:
                calls.extend(found)
                remaining = remaining.replace(block.group(0), "") if block else ""
            elif block is None and (cut := _cut_array(raw, known)) is not None:
                calls, remaining = cut  # the unread rest stays in the text
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


__all__ = [
    "MAX_CALLS_PER_REPLY",
    "PLAN_CHARS",
    "TOOLS_PREAMBLE",
    "ToolCallText",
    "call_schema",
    "call_turn",
    "first_reply_of_turn",
    "forced_tool",
    "parse_tool_calls",
    "response_turn",
    "tool_names",
    "tools_prompt",
    "with_tools_block",
]
