"""A tool-using LlamaIndex agent that needs its tools, with a token budget per step (``TaleLLM``).

    bash scripts/install.sh local,llama-index
    .venv/bin/python examples/llama_index_agent_budget.py            # the embedded local model
    OPENAI_API_KEY=... .venv/bin/python examples/llama_index_agent_budget.py  # gpt-4o-mini

The town facts are made up, so no model knows them: the agent must search the documents,
then use the calculator. Two things make the embedded 1.5B model work its tools in a
``FunctionAgent``, both plain LlamaIndex:

- a worked example with *these* tools as chat history (``tool_demo_history``);
- a ``final_answer`` tool with ``return_direct=True`` and ``LocalLlamaLLM(tool_required=True)``:
  every reply is a tool call (a llama.cpp grammar, several calls at once allowed), the last
  one the answer.

The same agent runs without and with ``TaleLLM``; the tracer prints what each run cost.

What happened here (2-core CPU, 56 s in all): both runs searched for Brenmoor and Ostholm,
called the calculator with ``9 + 12`` and ended through ``final_answer`` with 21 — 4 calls and
83 output tokens each, right. The budget changed nothing: every reply is a short tool call.
(Without the worked example and ``tool_required`` this model answers from memory.)
"""

import asyncio
import os

from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.tools import FunctionTool

from llama_index_tale import TaleLLM, TaleTracer, tool_demo_history
from tale_shared.calculator import calculate
from tale_shared.tool_demo import ANSWER_TOOL, ANSWER_TOOL_DESCRIPTION, ToolCall, ToolDemo

DOCUMENTS = [
    "Brenmoor is a town on the river Ostra. It has 4210 residents and 9 schools.",
    "Kalvik is a town on the river Ostra. It has 2875 residents and 5 schools.",
    "Ostholm is a town on the river Ostra. It has 6120 residents and 12 schools.",
]


def search_documents(query: str) -> str:
    """Search the documents about the towns on the river Ostra, e.g. 'Brenmoor schools'."""
    hits = [d for d in DOCUMENTS if d.split()[0].lower() in query.lower()]  # by town name
    return "\n".join(hits[:2]) or "no document matches"


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as '(12.5 + 7.5) * 3'."""
    return calculate(expression)  # arithmetic only: never eval


def final_answer(answer: float) -> str:
    """Give the final answer to the user's question, as a number."""
    return f"{answer:g}"


# a solved task written with the agent's own tools (made-up towns, not in the documents)
DEMO = ToolDemo(
    question="How many more schools does Ardwick have than Fenmoor?",
    steps=(
        (
            ToolCall(
                "search_documents",
                {"query": "Ardwick schools"},
                "Ardwick is a town on the river Ostra. It has 5210 residents and 14 schools.",
            ),
            ToolCall(
                "search_documents",
                {"query": "Fenmoor schools"},
                "Fenmoor is a town on the river Ostra. It has 2380 residents and 6 schools.",
            ),
        ),
        (ToolCall("calculator", {"expression": "14 - 6"}, "8"),),
    ),
    answer="8",
)
SYSTEM = (
    "You answer questions with the tools you have. Facts about the towns are only in the "
    "documents: look each one up, never guess it. Use the calculator for the arithmetic, and "
    f"give the result with the {ANSWER_TOOL} tool."
)
TASK = "How many schools do Brenmoor and Ostholm have together?"


async def main() -> None:
    if os.environ.get("OPENAI_API_KEY"):
        from llama_index.llms.openai import OpenAI

        llm = OpenAI(model="gpt-4o-mini", temperature=0)
    else:
        from llama_index_tale import LocalLlamaLLM

        llm = LocalLlamaLLM(tool_required=True)  # the embedded default model

    tools = [
        FunctionTool.from_defaults(search_documents),
        FunctionTool.from_defaults(calculator),
        FunctionTool.from_defaults(
            final_answer, name=ANSWER_TOOL, description=ANSWER_TOOL_DESCRIPTION, return_direct=True
        ),
    ]
    history = tool_demo_history(DEMO, answer_tool=ANSWER_TOOL)
    for name, agent_llm in [("no budget", llm), ("TaleLLM", TaleLLM(llm=llm))]:
        agent = FunctionAgent(tools=tools, llm=agent_llm, system_prompt=SYSTEM)
        calls = []
        with TaleTracer() as tracer:
            handler = agent.run(TASK, chat_history=history, max_iterations=6)
            async for event in handler.stream_events():
                if isinstance(event, ToolCallResult):
                    calls.append(f"  {event.tool_name}({event.tool_kwargs}) -> {event.tool_output}")
            result = await handler
        record = tracer.records[-1]
        print(f"\n== {name}: {record.n_calls} calls, {record.usage.output_tokens} output tokens")
        print("\n".join(calls))
        print("answer:", result, "(right: 21)")


asyncio.run(main())
