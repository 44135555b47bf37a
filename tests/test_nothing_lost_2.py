"""Nothing lost, nothing counted twice, part two: silent providers, caps on the core path,
big tool results, served edge cases, bad input that used to crash or hang."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import warnings

import httpx
import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from lc_fakes import ToolCallingFake

from langchain_tale.middleware import TaleBudgetMiddleware
from tale_shared import cli
from tale_shared.caps import CapExceededWarning
from tale_shared.compression import compress
from tale_shared.models import Completion, finish_reason_of, normalize_finish_reason
from tale_shared.pipeline import TalePipeline
from tale_shared.prompts import Message
from tale_shared.run_budget import RunBudget
from tale_shared.served import ServedModel
from tale_shared.usage import TokenUsage


# -- 2. an agent on a provider that reports no usage ------------------------------------------
@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _silent_agent(total_tokens: int, steps: int = 4):
    script = [
        AIMessage(
            content="",
            tool_calls=[{"name": "add", "args": {"a": i, "b": 1}, "id": f"c{i}"}],
        )
        for i in range(steps)
    ] + [AIMessage(content="Done: [[4]]")]
    model = ToolCallingFake(script=script, report_usage=False)
    system = "You are a careful assistant. " + "Follow the house rules exactly. " * 170
    middleware = TaleBudgetMiddleware(estimator="fixed:50", total_tokens=total_tokens)
    agent = create_agent(model, tools=[add], system_prompt=system, middleware=[middleware])
    return model, agent


def test_a_silent_provider_has_its_prompt_and_tool_calls_counted_and_the_total_holds():
    model, agent = _silent_agent(total_tokens=500)
    result = agent.invoke({"messages": [HumanMessage("Add the numbers, one step at a time.")]})
    # the ~1,000-token system prompt alone spends the 500: the run ends after the first step
    assert len(model.seen) == 1
    assert "token budget spent" in result["messages"][-1].text
    meta = next(m for m in result["messages"] if isinstance(m, AIMessage)).response_metadata
    counted = TokenUsage.model_validate(meta["tale"]["counted_usage"])
    assert counted.source == "counted" and counted.input_tokens > 500
    assert counted.output_tokens > 0  # the tool call's name and arguments


async def test_a_silent_provider_is_counted_on_the_async_path_too():
    model, agent = _silent_agent(total_tokens=500)
    await agent.ainvoke({"messages": [HumanMessage("Add the numbers, one step at a time.")]})
    assert len(model.seen) == 1


# -- 3. a served reply without usage; a bench baseline with no tokens ------------------------
def _served(handler):
    return ServedModel(
        "http://127.0.0.1:9/v1",
        "m",
        transport=httpx.MockTransport(handler),
        async_transport=httpx.MockTransport(handler),
        backoff_s=0.001,
    )


NO_USAGE = {"choices": [{"message": {"content": "3 + 5 = 8, so [[8]]"}, "finish_reason": "stop"}]}


def test_a_served_reply_without_usage_is_counted_not_zero():
    model = _served(lambda request: httpx.Response(200, json=NO_USAGE))
    reply = model.complete([Message("user", "What is 3 + 5? Think it through.")])
    assert reply.usage.source == "counted" and reply.usage.counter
    assert reply.usage.input_tokens >= 8 and reply.usage.output_tokens >= 8
    reply = asyncio.run(model.acomplete([Message("user", "3 + 5?")]))
    assert reply.usage.source == "counted" and reply.usage.output_tokens > 0


def test_bench_summary_of_a_baseline_with_no_tokens_says_unknown_not_zero_division():
    from tale_shared.research.bench import BenchRow, bench_table, summarize_bench

    rows = [
        BenchRow(method=m, id=str(i), correct=True, output_tokens=0, seconds=0.0)
        for m in ("vanilla", "tale")
        for i in range(3)
    ]
    summaries = summarize_bench(rows, ["vanilla", "tale"])
    assert summaries[1].output_ratio is None and summaries[1].time_ratio is None
    assert "| ? |" in bench_table(summaries)


# -- 4. the core path records its caps ----------------------------------------------------------
class IgnoresCaps:
    """A provider that ignores max_tokens: 999 output tokens, cut or not."""

    model_name = "ignores-caps"

    def __init__(self) -> None:
        self.caps: list[int | None] = []

    def _reply(self, max_tokens: int | None) -> Completion:
        self.caps.append(max_tokens)
        return Completion(
            text="a long answer that never ends",
            usage=TokenUsage(input_tokens=50, output_tokens=999, source="provider"),
            model=self.model_name,
            finish_reason="length",
        )

    def complete(self, messages, *, max_tokens=None):
        return self._reply(max_tokens)

    async def acomplete(self, messages, *, max_tokens=None):
        return self._reply(max_tokens)


def test_the_core_path_records_each_calls_cap_and_warns_when_a_provider_ignores_it():
    from tale_shared import caps

    caps._warned.discard("ignores-caps")
    model = IgnoresCaps()
    pipeline = TalePipeline(model, method="tale-fixed:54@paper+force1.5")
    with pytest.warns(CapExceededWarning, match="cap of 81"):
        result = pipeline.solve("What is 3 + 5?")
    answer = result.record.calls[0]
    assert model.caps[0] == 81 and answer.cap == 81 and answer.cap_exceeded
    assert result.cut and result.forced


def test_bench_rows_carry_the_cap_and_whether_it_held(tmp_path):
    from tale_shared.research.bench import bench_row
    from tale_shared.research.datasets import Item

    pipeline = TalePipeline(IgnoresCaps(), method="tale-fixed:54@paper+force1.5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CapExceededWarning)
        row = bench_row(pipeline, "t", Item(id="1", question="3 + 5?", answer="8"), "m")
    assert row.cap == 81 and row.cap_exceeded and row.cut


# -- 5. compression stays about linear in the text --------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "First, Tom buys 3 apples for $2 each, so he pays 3 * 2 = 6 dollars in total. " * 400,
        "汤姆买了三个苹果，每个两美元，所以他一共付了六美元。然后他又买了五个梨。" * 400,
        json.dumps([{"id": i, "name": f"item {i}", "price": i * 1.5} for i in range(600)]),
    ],
    ids=["english", "cjk", "json"],
)
def test_compression_counts_the_joined_text_a_logarithmic_number_of_times(text):
    from tale_shared.tokens import count_tokens

    long_counts = 0

    def count(piece: str) -> int:
        nonlocal long_counts
        if len(piece) > 1000:
            long_counts += 1
        return count_tokens(piece)

    short = compress(text, 0.5, count=count)
    assert 0 < len(short) < len(text)
    # the whole text once, then a bisection: O(log n) counts, never one per token
    assert long_counts <= 2 * math.ceil(math.log2(len(text))) + 3


# -- 6. search keeps --concurrency requests in flight -----------------------------------------
class SlowAsyncModel:
    """Counts how many requests are in flight at once."""

    model_name = "slow"

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self._lock = threading.Lock()

    def complete(self, messages, *, max_tokens=None):
        raise AssertionError("the async path is used")

    async def acomplete(self, messages, *, max_tokens=None):
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.05)
        with self._lock:
            self.in_flight -= 1
        return Completion(
            text="[[1]]", usage=TokenUsage(output_tokens=5, source="provider"), model="slow"
        )


async def test_search_keeps_the_asked_number_of_requests_in_flight(tmp_path):
    from tale_shared.research.datasets import Item
    from tale_shared.research.search import BudgetSearch, search_dataset

    model = SlowAsyncModel()
    items = [Item(id=str(i), question=f"What is {i} - {i} + 1?", answer="1") for i in range(20)]
    await search_dataset(
        BudgetSearch(model, style="words"),
        items,
        tmp_path / "s.jsonl",
        concurrency=16,
        progress=False,
    )
    assert model.most == 16  # the default executor (CPUs + 4 threads) allowed 6 on 2 cores


# -- 7. Retry-After that is negative or a day ----------------------------------------------------
@pytest.mark.parametrize("header", ["-1", "86400", "nan"])
def test_retry_after_is_clamped(header, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("tale_shared.served.time.sleep", slept.append)
    replies = [httpx.Response(429, headers={"retry-after": header})]
    ok = {"choices": [{"message": {"content": "[[1]]"}}], "usage": {"completion_tokens": 1}}

    def handler(request):
        return replies.pop(0) if replies else httpx.Response(200, json=ok)

    model = _served(handler)
    assert model.complete([Message("user", "q")]).text == "[[1]]"
    assert len(slept) == 1 and 0 <= slept[0] <= model.max_retry_after_s


# -- 8. one clear line, exit 2, nothing written -------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [{"data": [{"object": "model"}]}, [{"id": "x"}], {"data": "x"}, {"data": []}],
    ids=["entry-without-id", "list-body", "data-not-a-list", "no-models"],
)
def test_a_server_whose_models_list_is_odd_is_a_clear_error(body):
    from tale_shared.models import ModelCallError

    with pytest.raises(ModelCallError, match="name the model"):
        ServedModel(
            "http://127.0.0.1:9/v1",
            transport=httpx.MockTransport(lambda request: httpx.Response(200, json=body)),
        )


def test_bench_on_an_empty_data_file_says_no_items_and_writes_nothing(tmp_path, capsys):
    data = tmp_path / "empty.jsonl"
    data.write_text("")
    out = tmp_path / "out.jsonl"
    argv = ["bench", "--data", str(data), "--methods", "vanilla", "--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "holds no items" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_dpo_training_on_tokenskip_data_is_a_clear_error(tmp_path):
    from tale_shared.research.recipes import read_examples

    data = tmp_path / "tokenskip.jsonl"
    data.write_text(json.dumps({"prompt": "Q<|eot_id|>0.5<|eot_id|>", "completion": "A"}) + "\n")
    with pytest.raises(ValueError, match=r"no 'chosen' field.*tale export dpo"):
        read_examples(data, "dpo")


# -- 9. NaN budgets; Bedrock's stop reason ------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0.0])
def test_a_usd_total_that_cannot_be_enforced_is_refused(value):
    with pytest.raises(ValueError, match="total_usd"):
        TaleBudgetMiddleware(total_usd=value)
    with pytest.raises(ValueError, match="total_usd"):
        RunBudget(total_usd=value)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"stopReason": "max_tokens"}, "length"),  # Bedrock Converse
        ({"stop_reason": "max_tokens"}, "length"),  # Anthropic
        ({"finish_reason": "MAX_TOKENS"}, "length"),  # Gemini
        ({"done_reason": "length"}, "length"),  # Ollama
        ({"finish_reason": "stop"}, "stop"),
        ({"stopReason": "end_turn"}, "end_turn"),
    ],
)
def test_every_providers_cut_reason_reads_as_length(metadata, expected):
    assert finish_reason_of(metadata) == expected


def test_a_bedrock_reply_cut_at_its_cap_is_forced_in_tale_runnable():
    from langchain_core.language_models import GenericFakeChatModel

    from langchain_tale import TaleRunnable

    cut = AIMessage(content="Let me think step by", response_metadata={"stopReason": "max_tokens"})
    llm = GenericFakeChatModel(messages=iter([cut, AIMessage(content="[[8]]")]))
    reply = TaleRunnable(llm=llm, method="tale-fixed:40@paper+force1.5").invoke("3 + 5?")
    assert reply.response_metadata["tale"]["forced"] is True
    assert normalize_finish_reason("FinishReason.MAX_TOKENS") == "length"
