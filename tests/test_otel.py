"""Query records as OpenTelemetry spans (GenAI conventions), from both tracers."""

import pytest
from lc_fakes import UsageFakeChatModel
from li_fakes import UsageMockLLM

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from tale_shared.otel import OTelExporter
from tale_shared.usage import UsageLedger

Q = "Tom has 3 apples and buys 5 more. How many apples does he have?"


@pytest.fixture
def spans():
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


def _tree(memory):
    finished = memory.get_finished_spans()
    (query,) = [s for s in finished if s.name == "tale.query"]
    children = [
        s for s in finished if s.parent is not None and s.parent.span_id == query.context.span_id
    ]
    return query, children


def test_langchain_query_becomes_a_span_with_estimator_and_answer_children(spans):
    from langchain_tale import TaleRunnable, TaleTracer

    provider, memory = spans
    handler = TaleTracer()
    handler.ledger.add_listener(OTelExporter(provider))
    TaleRunnable(llm=UsageFakeChatModel(), estimator="zero-shot").invoke(
        Q, config={"callbacks": [handler]}
    )
    query, children = _tree(memory)
    (record,) = handler.records
    assert (
        query.attributes["tale.budget"] == 120 and query.attributes["tale.estimator"] == "zero-shot"
    )
    assert query.attributes["gen_ai.usage.output_tokens"] == record.usage.output_tokens
    assert "tale.question" not in query.attributes  # content is opt-in
    roles = [c.attributes["tale.role"] for c in children]
    assert roles == ["estimator", "answer"]
    for child, call in zip(children, record.calls, strict=True):
        assert child.name == "chat gpt-4o-mini"
        assert child.attributes["gen_ai.operation.name"] == "chat"
        assert child.attributes["gen_ai.usage.input_tokens"] == call.usage.input_tokens
        assert child.attributes["gen_ai.usage.output_tokens"] == call.usage.output_tokens
        assert query.start_time <= child.start_time <= child.end_time <= query.end_time


def test_llama_index_query_becomes_the_same_tree(spans):
    from li_fakes import SpyEmbedding
    from llama_index.core import Document, VectorStoreIndex

    from llama_index_tale import TaleQueryEngine, TaleQueryTransform, TaleTracer

    provider, memory = spans
    llm = UsageMockLLM()
    index = VectorStoreIndex.from_documents(
        [Document(text="Tom has 3 apples.")], embed_model=SpyEmbedding(embed_dim=8)
    )
    engine = TaleQueryEngine(
        index.as_query_engine(llm=llm), TaleQueryTransform(llm=llm, estimator="zero-shot")
    )
    with TaleTracer() as tracer:
        tracer.ledger.add_listener(OTelExporter(provider, record_content=True))
        engine.query(Q)
    query, children = _tree(memory)
    assert query.attributes["tale.question"] == Q and query.attributes["tale.budget"] == 120
    assert [c.attributes["tale.role"] for c in children] == ["estimator", "answer"]


def test_a_failing_listener_never_fails_the_query(caplog):
    ledger = UsageLedger()

    def broken(record):
        raise RuntimeError("collector down")

    ledger.add_listener(broken)
    from tale_shared.usage import QueryRecord

    ledger.add(QueryRecord(question="q"))
    assert len(ledger) == 1 and "collector down" in caplog.text
