"""A tool-using LlamaIndex agent with a token budget per step and per run (``TaleLLM``).

    bash scripts/install.sh local,llama-index
    .venv/bin/python examples/llama_index_agent_budget.py            # the embedded local model
    OPENAI_API_KEY=... .venv/bin/python examples/llama_index_agent_budget.py  # gpt-4o-mini

With no API key it runs the embedded Qwen2.5-Coder-1.5B through llama.cpp in a
``ReActAgent`` (the local model has no native function calling; with OpenAI it is a
``FunctionAgent``). The same agent runs without and with ``TaleLLM``; the tracer prints what
each run cost.
"""

import asyncio
import os

from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.tools import FunctionTool

from llama_index_tale import TaleLLM, TaleTracer
from tale_shared.calculator import calculate


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as '(12.5 + 7.5) * 3'."""
    return calculate(expression)  # arithmetic only: never eval


SYSTEM = (
    "You solve maths word problems. Use the calculator tool for the arithmetic. "
    "Give the final answer as a number in double brackets, e.g. [[42]]."
)
TASK = (
    "A bakery sells 48 muffins in the morning and twice as many in the afternoon. "
    "Each muffin costs $2.50. How much money does the bakery make in the day?"
)


async def main() -> None:
    if os.environ.get("OPENAI_API_KEY"):
        from llama_index.llms.openai import OpenAI

        llm, agent_class = OpenAI(model="gpt-4o-mini", temperature=0), FunctionAgent
    else:
        from llama_index_tale import LocalLlamaLLM

        llm, agent_class = LocalLlamaLLM(), ReActAgent  # the embedded default model

    tools = [FunctionTool.from_defaults(calculator)]
    # the model's profile method per step (as TaleRunnable uses), and a total for the run
    budgeted = TaleLLM(llm=llm, total_tokens=3_000, exit_behavior="end")
    for name, agent_llm in [("no budget", llm), ("TaleLLM", budgeted)]:
        agent = agent_class(tools=tools, llm=agent_llm, system_prompt=SYSTEM)
        with TaleTracer() as tracer:
            result = await agent.run(TASK, max_iterations=6)
        record = tracer.records[-1]
        print(f"\n== {name}: {record.n_calls} calls, {record.usage.output_tokens} output tokens")
        print("answer:", result)


asyncio.run(main())
