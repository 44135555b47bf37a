import asyncio
import csv

import pytest
from li_fakes import SpyEmbedding, UsageMockLLM
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.llms import MockLLM

from llama_index_tale import TaleQueryEngine, TaleQueryTransform, TaleTracer

Q = "How many clips did Natalia sell in April and May?"


def _engine(llm, estimator="zero-shot"):
    index = VectorStoreIndex.from_documents(
        [Document(text="Natalia sold 48 clips in April."), Document(text="May: half as many.")],
        embed_model=SpyEmbedding(embed_dim=8),
    )
    return TaleQueryEngine(
        index.as_query_engine(llm=llm), TaleQueryTransform(llm=llm, estimator=estimator)
    )


def test_one_record_per_query_with_estimator_and_answer_calls():
    with TaleTracer() as tracer:
        _engine(UsageMockLLM()).query(Q)
    (r,) = tracer.records
    assert r.question == Q and r.budget == 120 and r.estimator == "zero-shot"
    assert [c.role for c in r.calls] == ["estimator", "answer"]
    assert r.estimator_usage.output_tokens == 2 and r.answer_usage.output_tokens == 6
    assert r.usage.reasoning_tokens == 2 and r.usage.source == "provider"
    assert r.models == ["gpt-4o-mini"] and r.cost_usd > 0
    assert r.answer == "3 + 5 = 8. [[8]]" and r.budget_adherence == pytest.approx(6 / 120)


def test_a_provider_without_usage_is_counted_and_says_so():
    with TaleTracer() as tracer:
        _engine(UsageMockLLM(report_usage=False), estimator="fixed:40").query(Q)
    (r,) = tracer.records
    assert r.usage.source == "counted" and r.answer_usage.output_tokens > 0


def test_detached_tracer_records_nothing_more():
    tracer = TaleTracer().attach()
    _engine(UsageMockLLM(), "fixed:40").query(Q)
    tracer.detach()
    _engine(UsageMockLLM(), "fixed:40").query(Q)
    assert len(tracer.records) == 1


async def test_concurrent_aqueries_are_kept_apart(tmp_path):
    llm = UsageMockLLM(async_delay_s=0.01)
    engine = _engine(llm)
    questions = [f"{Q} (case {i})" for i in range(20)]
    with TaleTracer() as tracer:
        await asyncio.gather(*(engine.aquery(q) for q in questions))
    records = tracer.records
    assert sorted(r.question for r in records) == sorted(questions)
    assert all(r.n_calls == 2 and r.budget == 120 for r in records)
    s = tracer.summary()
    assert s.queries == 20 and s.calls == 40
    assert s.output_tokens == sum(r.usage.output_tokens for r in records)
    rows = list(csv.DictReader(tracer.to_csv(tmp_path / "t.csv").open()))
    assert len(rows) == 20 and {row["budget"] for row in rows} == {"120"}


def test_a_bare_llm_call_is_a_query_of_its_own():
    with TaleTracer() as tracer:
        MockLLM().complete("hello there")
    (r,) = tracer.records
    assert r.n_calls == 1 and r.budget is None and r.usage.source == "counted"
    assert r.cost_usd is None  # unknown model: unknown cost


def test_two_tracers_at_once_each_see_their_queries():
    outer = TaleTracer().attach()
    with TaleTracer() as inner:
        _engine(UsageMockLLM(), "fixed:40").query(Q)
    _engine(UsageMockLLM(), "fixed:40").query(Q)
    outer.detach()
    assert len(inner.records) == 1 and len(outer.records) == 2


def test_an_estimator_with_a_timeout_stays_inside_its_query():
    from llama_index_tale.llm_adapter import LlamaIndexModel
    from tale_shared.estimators import ZeroShotEstimator

    llm = UsageMockLLM()
    estimator = ZeroShotEstimator(LlamaIndexModel(llm, role="estimator"), timeout_s=10)
    with TaleTracer() as tracer:
        _engine(llm, estimator=estimator).query(Q)
    (record,) = tracer.records  # one query, not two
    assert [c.role for c in record.calls] == ["estimator", "answer"]


def test_counted_usage_uses_the_tokenizer_set_in_settings(monkeypatch):
    import llama_index.core

    from tale_shared.tokens import count_tokens

    with TaleTracer() as tracer:
        _engine(UsageMockLLM(report_usage=False), estimator="fixed:40").query(Q)
    (default,) = tracer.records
    assert default.usage.counter == "llama_index:Settings.tokenizer"  # LlamaIndex's cl100k
    assert default.answer_usage.output_tokens == count_tokens(default.answer, "cl100k_base")
    monkeypatch.setattr(llama_index.core, "global_tokenizer", lambda text: list(text))
    with TaleTracer() as tracer:
        _engine(UsageMockLLM(report_usage=False), estimator="fixed:40").query(Q)
    (r,) = tracer.records
    assert r.usage.counter == "llama_index:Settings.tokenizer"
    assert r.answer_usage.output_tokens == len(r.answer)
