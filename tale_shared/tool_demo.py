"""A worked example of tool use, written once and given to an agent in either framework.

A small model handed tools and a question often answers from memory, or stops after one
look-up. Shown one solved task that uses the *same* tools — look-ups, then the calculator,
then the answer — it follows the pattern (measured on the agent benchmark's dev templates:
``benchmarks/results/agents-tools-dev-*``).
This is LangChain's "few-shot prompting with tool calling" and LlamaIndex's chat history of
earlier tool calls, kept framework-free: :func:`langchain_tale.tool_demo_messages` and
:func:`llama_index_tale.tool_demo_history` turn a :class:`ToolDemo` into each framework's
messages.

The final answer is either a plain reply (``[[35.75]]``, the default) or a call to an
*answer tool* (``answer_tool="final_answer"``): the pattern for agents whose every reply must
be a tool call (LangChain ``create_agent(response_format=ToolStrategy(...))``, a LlamaIndex
``FunctionTool(return_direct=True)`` with ``LocalLlamaLLM(tool_required=True)``).

Example:
    >>> demo = ToolDemo(
    ...     question="Tom buys 3 Flimdor cups. How many dollars does he pay?",
    ...     steps=(
    ...         (ToolCall("lookup_price", {"product": "Flimdor cup"}, "Flimdor cup: $4.25 each"),),
    ...         (ToolCall("calculator", {"expression": "3 * 4.25"}, "12.75"),),
    ...     ),
    ...     answer="12.75",
    ... )
    >>> demo.tool_names
    ('lookup_price', 'calculator')
    >>> demo.final_text
    '[[12.75]]'
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

ANSWER_TOOL = "final_answer"
"""The answer tool's name where the final answer is a call (its one argument: ``answer``)."""

ANSWER_TOOL_DESCRIPTION = "Give the final answer to the user's question, as a number."
"""The answer tool's description, one text for both frameworks."""

ANSWER_TOOL_SCHEMA: dict[str, Any] = {
    "title": ANSWER_TOOL,
    "description": ANSWER_TOOL_DESCRIPTION,
    "type": "object",
    "properties": {"answer": {"type": "number", "description": "the final answer"}},
    "required": ["answer"],
}
"""The answer tool's arguments as a JSON schema (LangChain ``ToolStrategy`` takes it whole)."""


@dataclass(frozen=True)
class ToolCall:
    """One call in a worked example: the tool, its arguments and what it returned."""

    name: str
    arguments: dict[str, Any]
    result: str


@dataclass(frozen=True)
class ToolDemo:
    """A solved task: the question, the agent's steps (each one or more calls made together,
    e.g. two look-ups), and the final answer."""

    question: str
    steps: tuple[tuple[ToolCall, ...], ...]
    answer: str

    def __post_init__(self) -> None:
        if not self.question.strip():
            raise ValueError("a tool demo needs a question")
        if not self.steps or any(not step for step in self.steps):
            raise ValueError("a tool demo needs at least one step, each with at least one call")
        if not self.answer.strip():
            raise ValueError("a tool demo needs its final answer")

    @property
    def calls_made(self) -> int:
        """How many tool calls the example makes."""
        return sum(len(step) for step in self.steps)

    @property
    def tool_names(self) -> tuple[str, ...]:
        """The tools the example calls, in first-call order."""
        return tuple(dict.fromkeys(call.name for step in self.steps for call in step))

    @property
    def final_text(self) -> str:
        """The final reply when the answer is plain text: ``[[answer]]``, tale's answer form."""
        return answer_text(self.answer)

    def answer_arguments(self) -> dict[str, Any]:
        """The answer tool's arguments: the answer as a number where it reads as one."""
        try:
            value: Any = float(self.answer)
        except ValueError:
            value = self.answer
        else:
            value = int(value) if value.is_integer() else value
        return {"answer": value}

    def check_tools(self, available: Collection[str]) -> None:
        """Raise ``ValueError`` when the example calls a tool the agent does not have: an
        example with other tools teaches the model to call tools that are not there."""
        missing = [name for name in self.tool_names if name not in set(available)]
        if missing:
            raise ValueError(
                f"the tool demo calls {missing}, which the agent does not have "
                f"(its tools: {sorted(available)}); write the example with the agent's own tools"
            )

    def steps_with_ids(self) -> list[list[tuple[str, ToolCall]]]:
        """Each step's calls with a stable id (``demo_1``, ``demo_2``, ...): the ids that tie
        a call to its result in either framework's messages."""
        out: list[list[tuple[str, ToolCall]]] = []
        n = 0
        for step in self.steps:
            out.append([(f"demo_{n + k + 1}", call) for k, call in enumerate(step)])
            n += len(step)
        return out


def answer_text(value: object) -> str:
    """A final answer given through the answer tool, in tale's ``[[answer]]`` form.

    >>> answer_text(183.25), answer_text(18.0), answer_text("n/a")
    ('[[183.25]]', '[[18]]', '[[n/a]]')
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"[[{value}]]"


__all__ = [
    "ANSWER_TOOL",
    "ANSWER_TOOL_DESCRIPTION",
    "ANSWER_TOOL_SCHEMA",
    "ToolCall",
    "ToolDemo",
    "answer_text",
]
