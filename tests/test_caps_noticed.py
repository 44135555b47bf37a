"""A cap the provider ignores is seen: marked in both tracers' records, warned once per model,
counted in the summary. (The real server: tests/test_openai_server.py.)"""

import warnings

import pytest
from lc_fakes import UsageFakeChatModel
from li_fakes import UsageMockLLM

import tale_shared.caps as caps
from langchain_tale import TaleRunnable, TaleTracer
from tale_shared.caps import CapExceededWarning, cap_from_params

Q = "Tom has 3 apples and buys 5 more. How many apples does he have?"
LONG = "Tom has 3 apples. He buys 5 more. So 3 + 5 = 8 apples in all. [[8]]"
N_LONG = len(LONG.split())  # the fakes report words as tokens


@pytest.fixture(autouse=True)
def _warn_afresh(monkeypatch):
    monkeypatch.setattr(caps, "_warned", set())


def test_cap_parameters_are_read_wherever_a_provider_puts_them():
    assert cap_from_params({"max_tokens": 512}, {"max_completion_tokens": 90}) == 90
    assert cap_from_params({"max_output_tokens": 64}) == 64  # Gemini
    assert cap_from_params({"options": {"num_predict": 40}}) == 40  # Ollama
    assert cap_from_params({"max_tokens": None, "temperature": 0}, None) is None
    assert cap_from_params({"max_tokens": True}) is None


def test_langchain_a_cap_the_model_ignores_is_marked_warned_once_and_counted():
    tracer = TaleTracer()
    runnable = TaleRunnable(
        llm=UsageFakeChatModel(responses=[LONG]), estimator="fixed:8", cap_headroom=1.0
    )
    with pytest.warns(CapExceededWarning, match=f"gpt-4o-mini returned {N_LONG} output tokens"):
        reply = runnable.invoke(Q, config={"callbacks": [tracer]})
    assert reply.response_metadata["tale"]["cap"] == 8
    assert reply.response_metadata["tale"]["cap_exceeded"] is True
    with warnings.catch_warnings():
        warnings.simplefilter("error", CapExceededWarning)  # once per model: no second warning
        runnable.invoke(Q, config={"callbacks": [tracer]})
    first, _ = tracer.records
    (call,) = first.calls
    assert call.cap == 8 and call.cap_exceeded and first.cap_exceeded
    summary = tracer.summary()
    assert summary.capped_calls == 2 and summary.cap_exceeded_calls == 2
    assert "2 of 2 capped calls over their cap" in str(summary)


def test_langchain_a_cap_that_holds_is_counted_but_not_marked():
    tracer = TaleTracer()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CapExceededWarning)
        TaleRunnable(llm=UsageFakeChatModel(), estimator="fixed:40", cap_headroom=1.5).invoke(
            Q, config={"callbacks": [tracer]}
        )
    (record,) = tracer.records
    assert record.calls[0].cap == 60 and not record.cap_exceeded
    assert tracer.summary().capped_calls == 1 and tracer.summary().cap_exceeded_calls == 0


def test_llama_index_query_engine_caps_a_copy_of_the_llm_and_the_tracer_marks_excess():
    from li_fakes import SpyEmbedding
    from llama_index.core import Document, VectorStoreIndex

    from llama_index_tale import TaleQueryEngine, TaleQueryTransform, TaleTracer

    answered_with_caps = []

    class CapSpy(UsageMockLLM):
        def _respond(self, messages):  # type: ignore[no-untyped-def]
            answered_with_caps.append(self.max_tokens)
            return super()._respond(messages)

    llm = CapSpy(answer=LONG, max_tokens=256)
    index = VectorStoreIndex.from_documents(
        [Document(text="Tom has 3 apples.")], embed_model=SpyEmbedding(embed_dim=8)
    )
    engine = TaleQueryEngine(
        index.as_query_engine(llm=llm),
        TaleQueryTransform(llm=llm, estimator="fixed:8"),
        cap_headroom=1.0,
    )
    with TaleTracer() as tracer, pytest.warns(CapExceededWarning, match="cap of 8"):
        response = engine.query(Q)
    assert response.metadata["tale_cap"] == 8 and llm.max_tokens == 256  # a copy was capped
    assert answered_with_caps == [8]
    (record,) = tracer.records
    assert record.cap_exceeded and [c.cap for c in record.calls] == [8]

    with pytest.raises(TypeError, match="response synthesizer"):
        TaleQueryEngine(object(), TaleQueryTransform(llm=llm), cap_headroom=1.5)  # type: ignore[arg-type]


def test_tale_llm_caps_each_step_on_a_copy_of_the_wrapped_llm():
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    from llama_index_tale import TaleLLM, TaleTracer

    seen_caps = []

    class CapSpy(UsageMockLLM):
        def chat(self, messages, **kwargs):  # type: ignore[no-untyped-def]
            seen_caps.append(self.max_tokens)
            return super().chat(messages, **kwargs)

    inner = CapSpy(answer=LONG, max_tokens=512)
    llm = TaleLLM(llm=inner, estimator="fixed:10", cap_headroom=1.5)
    with TaleTracer() as tracer, pytest.warns(CapExceededWarning):
        llm.chat([ChatMessage(role=MessageRole.USER, content=Q)])
    assert seen_caps == [15] and inner.max_tokens == 512
    assert tracer.records[0].calls[0].cap == 15 and tracer.records[0].cap_exceeded
