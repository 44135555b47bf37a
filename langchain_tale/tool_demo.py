"""A worked example of tool use as LangChain messages (few-shot prompting with tool calls)."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from tale_shared.tool_demo import ToolDemo


def tool_demo_messages(demo: ToolDemo, *, answer_tool: str | None = None) -> list[BaseMessage]:
    """``demo`` as the messages of an earlier exchange: the question, each step's
    ``AIMessage`` with its tool calls and their ``ToolMessage`` results, then the answer — a
    reply, or a call to ``answer_tool`` (the name of a ``ToolStrategy``'s schema, for an agent
    whose every reply is a call). Put them before the user's question.

    Example:
        .. code-block:: python

            from langchain.agents import create_agent
            from langchain_tale import ChatLocalLlama, tool_demo_messages

            agent = create_agent(ChatLocalLlama(), tools=[lookup_price, calculator])
            history = tool_demo_messages(demo)  # demo: a tale_shared.tool_demo.ToolDemo
            agent.invoke({"messages": [*history, ("user", "What do 3 Zorvex lamps cost?")]})
    """
    out: list[BaseMessage] = [HumanMessage(demo.question)]
    for step in demo.steps_with_ids():
        out.append(
            AIMessage(
                content="",
                tool_calls=[
                    {"name": c.name, "args": dict(c.arguments), "id": i, "type": "tool_call"}
                    for i, c in step
                ],
            )
        )
        out.extend(ToolMessage(content=c.result, tool_call_id=i, name=c.name) for i, c in step)
    if answer_tool is None:
        out.append(AIMessage(content=demo.final_text))
        return out
    arguments = demo.answer_arguments()
    out.append(
        AIMessage(
            content="",
            tool_calls=[
                {"name": answer_tool, "args": arguments, "id": "demo_answer", "type": "tool_call"}
            ],
        )
    )
    out.append(
        ToolMessage(
            content=f"Returning structured response: {arguments}",
            tool_call_id="demo_answer",
            name=answer_tool,
        )
    )
    return out


__all__ = ["tool_demo_messages"]
