"""One name for one concept across the core and both adapters (the 0.1 names are gone)."""

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


def test_both_adapters_call_their_tracer_taletracer_and_the_old_names_are_gone():
    assert llama_index_tale.TaleTracer.__name__ == langchain_tale.TaleTracer.__name__
    for old in ("TaleCallbackHandler", "tale_usage"):
        assert not hasattr(langchain_tale, old) and old not in langchain_tale.__all__


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
    assert not any(key.startswith("tale_") for key in engine.query("Q?").metadata)  # 1.0


def test_load_model_lives_in_loading_only():
    import tale_shared.models
    from tale_shared.loading import load_model

    assert tale_shared.load_model is load_model
    assert not hasattr(tale_shared.models, "load_model")  # the 0.1 shim made an import circle
