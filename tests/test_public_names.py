"""One name for one concept across the core and both adapters (old names kept as aliases)."""

from __future__ import annotations

from lc_fakes import UsageFakeChatModel
from li_fakes import SpyEmbedding, UsageMockLLM
from llama_index.core import Document, VectorStoreIndex

import langchain_tale
import llama_index_tale
import tale_shared
from langchain_tale import TaleRunnable

TALE_KEYS = {"method", "budget", "estimator", "style", "estimator_usage", "fallback_reason"}


def test_methods_are_public_in_the_core():
    assert tale_shared.parse_method("tale-ep") == tale_shared.Method(
        style="paper", estimator="zero-shot"
    )
    assert tale_shared.method_for("qwen2.5-coder:1.5b").spec == "vanilla+ex3"


def test_both_adapters_call_their_tracer_taletracer_and_keep_the_old_names():
    assert langchain_tale.TaleTracer is langchain_tale.TaleCallbackHandler
    assert llama_index_tale.TaleTracer.__name__ == langchain_tale.TaleTracer.__name__


def test_the_langchain_tracer_is_a_context_manager_like_the_llamaindex_one():
    llm = UsageFakeChatModel()
    outside = TaleRunnable(llm=llm, estimator="fixed:50")
    with langchain_tale.TaleTracer() as tracer:
        outside.invoke("What is 3 + 5?")
        with tracer:  # nested: still listening after the inner block
            outside.invoke("What is 2 + 2?")
        outside.invoke("What is 1 + 1?")
    outside.invoke("Not traced: 4 + 4?")
    assert [r.question for r in tracer.records] == [
        "What is 3 + 5?",
        "What is 2 + 2?",
        "What is 1 + 1?",
    ]
    with langchain_tale.tale_usage() as old:
        outside.invoke("What is 3 + 5?")
    assert len(old.records) == 1


def test_budget_metadata_has_the_same_key_and_fields_in_both_adapters():
    reply = TaleRunnable(llm=UsageFakeChatModel(), estimator="fixed:50").invoke("What is 3 + 5?")
    lc = reply.response_metadata["tale"]
    llm = UsageMockLLM()
    index = VectorStoreIndex.from_documents(
        [Document(text="Natalia sold 48 clips.")], embed_model=SpyEmbedding(embed_dim=8)
    )
    engine = llama_index_tale.TaleQueryEngine(
        index.as_query_engine(llm=llm),
        llama_index_tale.TaleQueryTransform(llm=llm, estimator="fixed:50"),
    )
    li = engine.query("What is 3 + 5?").metadata["tale"]
    assert set(lc) >= TALE_KEYS and set(li) >= TALE_KEYS
    assert lc["budget"] == li["budget"] == 50
    assert engine.query("What is 3 + 5?").metadata["tale_budget"] == 50  # the 0.1 name


def test_load_models_old_home_still_works_and_says_where_it_moved():
    import warnings

    import tale_shared.models
    from tale_shared.loading import load_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert tale_shared.models.load_model is load_model
    assert "tale_shared.loading" in str(caught[0].message)
