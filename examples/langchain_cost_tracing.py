"""Cost tracing over a batch: one record per query, totals, CSV/JSONL export.

Runs on a fake model that reports usage like a provider, so it is instant; pass any chat
model (ChatOpenAI, ChatAnthropic, ChatLocalLlama) instead.

    pip install -e ".[langchain]"
    python examples/langchain_cost_tracing.py
"""

from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_tale import TaleRunnable, TaleTracer


class ReportingFake(FakeListChatModel):
    """A fake chat model that reports token usage and a model name."""

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        text = "[[90]]" if "estimate the minimum" in messages[-1].text else "2 + 3 = 5. [[5]]"
        n_in = sum(len(m.text.split()) for m in messages)
        message = AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": n_in,
                "output_tokens": len(text.split()),
                "total_tokens": n_in + len(text.split()),
            },
            response_metadata={"model_name": "gpt-4o-mini"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


tracer = TaleTracer()
chain = TaleRunnable(llm=ReportingFake(responses=[""]), estimator="zero-shot")  # on the same model
questions = [f"Sam has {i} apples and buys 3 more. How many apples?" for i in range(100)]
chain.batch(questions, config={"callbacks": [tracer], "max_concurrency": 16})

print(tracer.summary())
print(
    "first record:",
    tracer.records[0].model_dump(include={"budget", "estimator", "n_calls", "cost_usd"}),
)
tracer.to_csv("tale_costs.csv")
tracer.to_jsonl("tale_costs.jsonl")
print("wrote tale_costs.csv and tale_costs.jsonl")
