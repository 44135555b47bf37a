"""A worked example of tool use as LlamaIndex chat history (earlier tool calls and results)."""

from __future__ import annotations

from llama_index.core.base.llms.types import (
    ChatMessage,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)

from tale_shared.tool_demo import ToolDemo, answer_text


def _call_message(calls: list[tuple[str, str, dict[str, object]]]) -> ChatMessage:
    return ChatMessage(
        role=MessageRole.ASSISTANT,
        blocks=[
            ToolCallBlock(tool_call_id=i, tool_name=name, tool_kwargs=dict(args))
            for i, name, args in calls
        ],
    )


def _result_message(call_id: str, name: str, result: str) -> ChatMessage:
    return ChatMessage(
        role=MessageRole.TOOL,
        blocks=[TextBlock(text=result)],
        additional_kwargs={"tool_call_id": call_id, "name": name},
    )


def tool_demo_history(demo: ToolDemo, *, answer_tool: str | None = None) -> list[ChatMessage]:
    """``demo`` as chat history: the question, each step's assistant message with its
    ``ToolCallBlock`` s and their tool results, then the answer — a reply, or a call to
    ``answer_tool`` (a ``FunctionTool(return_direct=True)``, for an agent whose every reply is
    a call). Pass it as the agent's ``chat_history``.

    Example:
        .. code-block:: python

            from llama_index.core.agent.workflow import FunctionAgent
            from llama_index_tale import LocalLlamaLLM, tool_demo_history

            agent = FunctionAgent(tools=[lookup_price, calculator], llm=LocalLlamaLLM())
            history = tool_demo_history(demo)  # demo: a tale_shared.tool_demo.ToolDemo
            await agent.run("What do 3 Zorvex lamps cost?", chat_history=history)
    """
    out = [ChatMessage(role=MessageRole.USER, content=demo.question)]
    for step in demo.steps_with_ids():
        out.append(_call_message([(i, c.name, c.arguments) for i, c in step]))
        out.extend(_result_message(i, c.name, c.result) for i, c in step)
    if answer_tool is None:
        out.append(ChatMessage(role=MessageRole.ASSISTANT, content=demo.final_text))
        return out
    arguments = demo.answer_arguments()
    out.append(_call_message([("demo_answer", answer_tool, arguments)]))
    out.append(_result_message("demo_answer", answer_tool, answer_text(arguments["answer"])))
    return out


__all__ = ["tool_demo_history"]
