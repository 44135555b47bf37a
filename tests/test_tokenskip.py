"""TokenSkip-format inference (fake models) and compressed context in agent loops."""

import asyncio

import pytest
from lc_fakes import UsageFakeChatModel
from li_fakes import UsageMockLLM

from langchain_tale import TaleCallbackHandler, TokenSkipRunnable
from tale_shared.compression import SEPARATOR, training_example

Q = "Natalia sold clips to 48 of her friends in April, and then half as many in May. Total?"
REPLY = "48 / 2 = 24\n48 + 24 = 72\nThe final answer is: [[72]]"


def test_langchain_sends_exactly_the_training_layout_and_parses_the_answer():
    llm = UsageFakeChatModel(responses=[REPLY])
    tracer = TaleCallbackHandler()
    reply = TokenSkipRunnable(llm=llm, gamma=0.6, max_tokens=400).invoke(
        Q, config={"callbacks": [tracer]}
    )
    (messages, kwargs) = llm.seen[0]
    assert messages[-1].text == training_example(Q, "x", "72", 0.6)["prompt"]
    assert messages[-1].text == f"{Q}{SEPARATOR}0.6{SEPARATOR}"
    assert kwargs["max_tokens"] == 240  # max_tokens scaled by gamma
    tale = reply.response_metadata["tale"]
    assert tale["method"] == "tokenskip@0.6" and tale["answer"] == "72" and tale["cap"] == 240
    (record,) = tracer.records
    assert record.n_calls == 1 and record.question == Q and record.usage.output_tokens > 0


def test_langchain_async_and_stream_and_ratio_one_is_the_bare_question():
    llm = UsageFakeChatModel(responses=[REPLY])
    runnable = TokenSkipRunnable(llm=llm, gamma=1.0)
    asyncio.run(runnable.ainvoke(Q))
    assert llm.seen[-1][0][-1].text == Q and "max_tokens" not in llm.seen[-1][1]
    streamed = "".join(c.text for c in TokenSkipRunnable(llm=llm, gamma=0.5).stream(Q))
    assert streamed == REPLY and llm.seen[-1][0][-1].text.endswith(f"0.5{SEPARATOR}")


def test_an_untrained_gamma_is_a_clear_error():
    with pytest.raises(ValueError, match=r"0\.65 was not trained: the model knows 1\.0, 0\.9"):
        TokenSkipRunnable(llm=UsageFakeChatModel(), gamma=0.65)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        TokenSkipRunnable(llm=UsageFakeChatModel(), gamma=1.5)
    assert TokenSkipRunnable(llm=UsageFakeChatModel(), gamma=0.65, trained_ratios=(0.65,))


def test_llama_index_transform_words_the_query_and_keeps_retrieval_on_the_question():
    from li_fakes import SpyEmbedding
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.query_engine import TransformQueryEngine

    from llama_index_tale import TaleTracer, TokenSkipQueryTransform

    embed = SpyEmbedding(embed_dim=8)
    index = VectorStoreIndex.from_documents(
        [Document(text="Natalia sold clips.")], embed_model=embed
    )
    llm = UsageMockLLM(answer=REPLY)
    engine = TransformQueryEngine(
        index.as_query_engine(llm=llm), TokenSkipQueryTransform(gamma=0.7)
    )
    with TaleTracer() as tracer:
        response = engine.query(Q)
    assert f"{Q}{SEPARATOR}0.7{SEPARATOR}" in llm.seen[-1][-1].content
    assert embed.queries[-1] == Q  # retrieval embedded the bare question
    assert "[[72]]" in str(response)
    (record,) = tracer.records
    assert record.method == "tokenskip@0.7" and record.n_calls == 1
    with pytest.raises(ValueError, match="not trained"):
        TokenSkipQueryTransform(gamma=0.55)
