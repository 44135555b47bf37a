import asyncio
import csv

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from lc_fakes import UsageFakeChatModel

from langchain_tale import TaleRunnable, TaleTracer

Q = "Tom has 3 apples and buys 5 more. How many apples does he have?"


def _questions(n):
    return [f"Sam has {i} apples and buys {i + 2} more. How many apples?" for i in range(n)]


def test_one_query_record_with_estimator_and_answer_calls():
    tracer = TaleTracer()
    TaleRunnable(llm=UsageFakeChatModel(), estimator="zero-shot").invoke(
        Q, config={"callbacks": [tracer]}
    )
    (r,) = tracer.records
    assert r.question == Q and r.budget == 120 and r.estimator == "zero-shot"
    assert r.style == "paper" and r.n_calls == 2 and r.models == ["gpt-4o-mini"]
    assert [c.role for c in r.calls] == ["estimator", "answer"]
    assert r.estimator_usage.output_tokens == 2 and r.answer_usage.output_tokens == 6
    assert r.usage.reasoning_tokens == 2 and r.usage.source == "provider"
    assert r.cost_usd is not None and r.cost_usd > 0
    assert r.budget_adherence == pytest.approx(6 / 120)
    assert r.answer == "3 + 5 = 8. [[8]]" and r.latency_s > 0


def test_batch_of_500_with_concurrency_32_gives_exactly_500_records():
    tracer = TaleTracer()
    chain = TaleRunnable(llm=UsageFakeChatModel(), estimator="zero-shot")
    chain.batch(_questions(500), config={"callbacks": [tracer], "max_concurrency": 32})
    records = tracer.records
    assert len(records) == 500 and len({r.query_id for r in records}) == 500
    assert sorted(r.question for r in records) == sorted(_questions(500))
    s = tracer.summary()
    assert s.queries == 500 and s.calls == 1000
    assert s.output_tokens == sum(r.usage.output_tokens for r in records)
    assert s.input_tokens == sum(r.usage.input_tokens for r in records)
    assert s.estimator_output_tokens == 2 * 500
    assert s.cost_usd == pytest.approx(sum(r.cost_usd for r in records))
    # nothing of the finished runs is kept beyond their records
    assert not tracer._parent and not tracer._queries and not tracer._calls


async def test_concurrent_async_queries_are_kept_apart():
    tracer = TaleTracer()
    chain = TaleRunnable(llm=UsageFakeChatModel(), estimator="zero-shot")
    qs = _questions(100)
    await asyncio.gather(*(chain.ainvoke(q, config={"callbacks": [tracer]}) for q in qs))
    assert sorted(r.question for r in tracer.records) == sorted(qs)
    assert all(r.n_calls == 2 for r in tracer.records)


def test_a_model_without_model_name_and_without_usage():
    llm = UsageFakeChatModel(model_name=None, report_usage=False)
    tracer = TaleTracer()
    TaleRunnable(llm=llm, estimator="fixed:50").invoke(Q, config={"callbacks": [tracer]})
    (r,) = tracer.records
    (call,) = r.calls
    assert call.usage.source == "counted" and call.usage.output_tokens > 0
    assert call.model == "UsageFakeChatModel" or call.model is None
    assert r.cost_usd is None  # unknown, never $0


def test_streamed_calls_are_counted():
    tracer = TaleTracer()
    chunks = list(
        TaleRunnable(
            llm=UsageFakeChatModel(responses=["x y z [[1]]"]), estimator="zero-shot"
        ).stream(Q, config={"callbacks": [tracer]})
    )
    assert chunks
    (r,) = tracer.records
    assert r.answer_usage.output_tokens == 4 and r.estimator_usage.output_tokens == 2


def test_a_plain_chain_without_tale_is_traced_too(tmp_path):
    chain = (
        ChatPromptTemplate.from_template("Q: {question}") | UsageFakeChatModel() | StrOutputParser()
    )
    with TaleTracer() as tracer:
        chain.invoke({"question": Q})
        UsageFakeChatModel().invoke("hello there")  # a bare model call is a query of its own
    chain.invoke({"question": Q})  # outside the block: not traced
    assert len(tracer.records) == 2
    first, second = tracer.records
    assert first.question == Q and first.budget is None and first.n_calls == 1
    assert second.question == "hello there" and second.n_calls == 1
    rows = list(csv.DictReader(tracer.to_csv(tmp_path / "c.csv").open()))
    assert len(rows) == 2 and rows[0]["budget"] == ""
    assert len(tracer.to_jsonl(tmp_path / "c.jsonl").read_text().splitlines()) == 2


def test_errors_are_recorded_not_lost():
    class Broken(UsageFakeChatModel):
        def _generate(self, *a, **k):
            raise RuntimeError("provider down")

    tracer = TaleTracer()
    with pytest.raises(RuntimeError):
        TaleRunnable(llm=Broken(), estimator="fixed:10").invoke(Q, config={"callbacks": [tracer]})
    (r,) = tracer.records
    assert "provider down" in r.error and r.calls[0].error


def test_counted_usage_names_tale_s_counter_for_a_model_without_its_own():
    tracer = TaleTracer()
    llm = UsageFakeChatModel(report_usage=False)
    TaleRunnable(llm=llm, estimator="fixed:50").invoke(Q, config={"callbacks": [tracer]})
    (call,) = tracer.records[0].calls
    assert call.usage.counter == "tiktoken:o200k_base"


def test_the_model_s_own_token_counter_counts_when_it_has_one():
    from langchain_tale import LangChainModel
    from tale_shared.prompts import Message

    llm = UsageFakeChatModel(report_usage=False, custom_get_token_ids=lambda t: list(t))
    completion = LangChainModel(llm).complete([Message("user", "abc")])
    assert completion.usage.counter == "langchain:UsageFakeChatModel"
    assert completion.usage.input_tokens == 3  # one token per character, as its counter says
    assert completion.usage.output_tokens == len(completion.text)


def test_a_failing_model_counter_falls_back_to_tale_s_and_says_so():
    from langchain_tale import LangChainModel
    from tale_shared.prompts import Message

    def broken(text):
        raise OSError("needs a download")

    llm = UsageFakeChatModel(report_usage=False, custom_get_token_ids=broken)
    usage = LangChainModel(llm).complete([Message("user", "abc")]).usage
    assert usage.counter == "tiktoken:o200k_base" and usage.input_tokens == 1
