"""A LlamaIndex FunctionAgent with per-step budgets and a total token budget (TaleLLM).

Runs on MockFunctionCallingLLM so it needs no key; wrap OpenAI(...) or any LLM the same way.

    pip install -e ".[llama-index]"
    python examples/llama_index_agent_budget.py
"""

import asyncio

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool

from llama_index_tale import TaleLLM, TaleTracer


def multiply(a: float = 12.3, b: float = 4.56) -> float:
    """Multiply two numbers."""
    return a * b


async def main() -> None:
    llm = TaleLLM(
        llm=MockFunctionCallingLLM(), estimator="heuristic", total_tokens=5_000, exit_behavior="end"
    )
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(multiply)], llm=llm, system_prompt="You are a calculator."
    )
    with TaleTracer() as tracer:
        result = await agent.run("What is 12.3 * 4.56?")
    print("answer:", result)
    print(f"steps {llm.steps}, tokens spent {llm.spent_tokens} of {llm.total_tokens}")
    print(tracer.summary())


asyncio.run(main())
