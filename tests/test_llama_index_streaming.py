"""Streamed LlamaIndex queries and calls: one record per query, each call once, the question
attached — also when the stream is consumed after the query's span has closed."""

from __future__ import annotations

import asyncio

from li_fakes import SpyEmbedding, UsageMockLLM
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.llms import ChatMessage, MockLLM

from llama_index_tale import TaleLLM, TaleQueryEngine, TaleQueryTransform, TaleTracer

Q = "How many clips did Natalia sell in April and May?"


def _index():
    return VectorStoreIndex.from_documents(
        [Document(text="Natalia sold 48 clips in April."), Document(text="May: half as many.")],
        embed_model=SpyEmbedding(embed_dim=8),
    )


def _calls(tracer):
    return [(r.question, r.n_calls, r.usage.output_tokens) for r in tracer.records]


def test_a_streamed_query_is_one_record_with_its_call_and_answer():
    engine = _index().as_query_engine(llm=UsageMockLLM(), streaming=True)
    with TaleTracer() as tracer:
        response = engine.query(Q)
        assert tracer.records == []  # not yet: its model call runs as the stream is read
        text = "".join(response.response_gen)
    (record,) = tracer.records
    assert record.question == Q and record.n_calls == 1
    assert record.usage.output_tokens > 0 and record.answer == text


def _sync_streamed_tokens(question: str) -> int:
    engine = _index().as_query_engine(llm=UsageMockLLM(), streaming=True)
    with TaleTracer() as tracer:
        "".join(engine.query(question).response_gen)
    (record,) = tracer.records
    return record.usage.output_tokens


async def test_a_streamed_aquery_counts_its_call_once():
    engine = _index().as_query_engine(llm=UsageMockLLM(), streaming=True)
    with TaleTracer() as tracer:
        response = await engine.aquery(Q)
        pieces = [piece async for piece in response.async_response_gen()]
    assert _calls(tracer) == [(Q, 1, _sync_streamed_tokens(Q))] and "".join(pieces)


async def test_concurrent_streamed_aqueries_are_kept_apart():
    engine = _index().as_query_engine(llm=UsageMockLLM(async_delay_s=0.01), streaming=True)
    questions = [f"{Q} (case {i})" for i in range(8)]

    async def ask(question):
        response = await engine.aquery(question)
        return [piece async for piece in response.async_response_gen()]

    with TaleTracer() as tracer:
        await asyncio.gather(*(ask(q) for q in questions))
    assert sorted(_calls(tracer)) == sorted((q, 1, _sync_streamed_tokens(q)) for q in questions)


def test_a_streamed_tale_query_keeps_its_budget_and_estimator_call():
    llm = UsageMockLLM()
    engine = TaleQueryEngine(
        _index().as_query_engine(llm=llm, streaming=True),
        TaleQueryTransform(llm=llm, estimator="zero-shot"),
    )
    with TaleTracer() as tracer:
        "".join(engine.query(Q).response_gen)
    (record,) = tracer.records
    assert record.question == Q and record.budget == 120
    assert [c.role for c in record.calls] == ["estimator", "answer"]


def test_a_stream_never_read_is_recorded_once_at_detach_without_an_error():
    engine = _index().as_query_engine(llm=UsageMockLLM(), streaming=True)
    with TaleTracer() as tracer:
        engine.query(Q)
    (record,) = tracer.records
    assert record.question == Q and record.error is None and record.n_calls == 0


async def test_async_streams_built_on_sync_ones_are_one_call():
    messages = [ChatMessage(role="user", content="What is 3 + 5?")]
    with TaleTracer() as tracer:
        chat = await MockLLM(max_tokens=4).astream_chat(messages)
        [piece async for piece in chat]
        completion = await MockLLM(max_tokens=4).astream_complete("What is 3 + 5?")
        [piece async for piece in completion]
        budgeted = await TaleLLM(llm=MockLLM(max_tokens=4), estimator="fixed:40").astream_chat(
            messages
        )
        [piece async for piece in budgeted]
    records = tracer.records
    assert len(records) == 3 and all(r.n_calls == 1 for r in records)


def test_a_sync_stream_is_one_call():
    with TaleTracer() as tracer:
        list(MockLLM(max_tokens=4).stream_chat([ChatMessage(role="user", content="3 + 5?")]))
    (record,) = tracer.records
    assert record.n_calls == 1 and record.usage.output_tokens > 0
