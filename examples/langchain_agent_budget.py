"""An agent with a tool and a token budget (langchain 1.x create_agent + TaleBudgetMiddleware).

    pip install -e ".[agents]"
    OPENAI_API_KEY=... python examples/langchain_agent_budget.py   # with langchain-openai

Without an API key it runs on a scripted fake model so the example still shows the budget.
"""

import os

from langchain.agents import create_agent
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from langchain_tale.middleware import TaleBudgetMiddleware


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


class ScriptedToolModel(GenericFakeChatModel):
    def bind_tools(self, tools, **kwargs):
        return self


if os.environ.get("OPENAI_API_KEY"):
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model="gpt-4o-mini")
else:
    model = ScriptedToolModel(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[
                        {
                            "name": "multiply",
                            "args": {"a": 12.3, "b": 4.56},
                            "id": "1",
                            "type": "tool_call",
                        }
                    ],
                    usage_metadata={"input_tokens": 120, "output_tokens": 20, "total_tokens": 140},
                ),
                AIMessage(
                    content="12.3 * 4.56 = 56.088",
                    usage_metadata={"input_tokens": 160, "output_tokens": 12, "total_tokens": 172},
                ),
            ]
        )
    )

budget = TaleBudgetMiddleware(estimator="heuristic", total_tokens=2_000, exit_behavior="end")
agent = create_agent(
    model, tools=[multiply], system_prompt="You are a calculator.", middleware=[budget]
)
result = agent.invoke({"messages": [{"role": "user", "content": "What is 12.3 * 4.56?"}]})
for message in result["messages"]:
    print(f"{message.type:>6}: {message.text or message.tool_calls}")
