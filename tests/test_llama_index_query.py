import asyncio

import pytest
from li_fakes import ESTIMATOR_MARK, SpyEmbedding, UsageMockLLM
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.prompts import PromptTemplate
from llama_index.core.query_engine import TransformQueryEngine
from llama_index.core.schema import QueryBundle

from llama_index_tale import TaleQueryEngine, TaleQueryTransform
from tale_shared.estimators import FixedBudgetEstimator

Q = "How many clips did Natalia sell in April and May?"
DOCS = [
    Document(text="Natalia sold 48 clips in April."),
    Document(text="In May she sold half as many clips as in April."),
]


@pytest.fixture
def setup():
    llm, embed = UsageMockLLM(), SpyEmbedding(embed_dim=8)
    index = VectorStoreIndex.from_documents(DOCS, embed_model=embed)
    return llm, embed, index


def test_query_str_carries_the_budget_embedding_strs_the_original():
    transform = TaleQueryTransform(llm=UsageMockLLM(), style="words", estimator="zero-shot")
    metadata = {}
    bundle = transform.run(Q, metadata=metadata)
    assert bundle.query_str.startswith(Q) and "at most 90 words" in bundle.query_str
    assert bundle.embedding_strs == [Q]
    assert metadata["tale"]["budget"] == 120 and metadata["tale"]["estimator"] == "zero-shot"
    assert metadata["tale"]["style"] == "words" and transform.last_budget.tokens == 120


def test_custom_embedding_strs_are_kept():
    original = QueryBundle(query_str=Q, custom_embedding_strs=["clips April May"])
    bundle = TaleQueryTransform(llm=UsageMockLLM(), estimator="fixed:50").run(original)
    assert bundle.embedding_strs == ["clips April May"] and "50 tokens" in bundle.query_str


def test_transform_query_engine_budgets_the_answer_not_the_retrieval(setup):
    llm, embed, index = setup
    engine = TransformQueryEngine(
        index.as_query_engine(llm=llm),
        TaleQueryTransform(llm=llm, style="tokens", estimator="zero-shot"),
    )
    response = engine.query(Q)
    assert str(response) == "3 + 5 = 8. [[8]]"
    assert embed.queries == [Q]
    answer_prompt = llm.seen[-1][-1].content
    assert "use less than 120 tokens" in answer_prompt and "48 clips" in answer_prompt


def test_plain_retriever_query_engine_with_a_transformed_bundle(setup):
    llm, embed, index = setup
    bundle = TaleQueryTransform(llm=llm, estimator=FixedBudgetEstimator(64)).run(Q)
    index.as_query_engine(llm=llm).query(bundle)
    assert embed.queries == [Q] and "use less than 64 tokens" in llm.seen[-1][-1].content


async def test_tale_query_engine_aquery_awaits_the_estimator(setup):
    llm, embed, index = setup
    llm.async_delay_s = 0.05
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    engine = TaleQueryEngine(
        index.as_query_engine(llm=llm), TaleQueryTransform(llm=llm, estimator="zero-shot")
    )
    before = ticks
    response = await engine.aquery(Q)
    task.cancel()
    assert ticks - before >= 2  # the loop kept running while the estimator was awaited
    assert response.metadata["tale"]["budget"] == 120 and embed.queries == [Q]


def test_tale_query_engine_sync_and_metadata(setup):
    llm, _, index = setup
    response = TaleQueryEngine(
        index.as_query_engine(llm=llm), TaleQueryTransform(llm=llm, estimator="heuristic")
    ).query(Q)
    assert response.metadata["tale"]["estimator"] == "heuristic"
    assert not any(ESTIMATOR_MARK in m[-1].content for m in llm.seen)


def test_estimator_prompt_through_the_prompt_mixin():
    llm = UsageMockLLM()
    transform = TaleQueryTransform(llm=llm, estimator="zero-shot")
    assert "estimator_prompt" in transform.get_prompts()
    transform.update_prompts(
        {
            "estimator_prompt": PromptTemplate(
                "Count the tokens needed; estimate the minimum number of tokens as [[N]]."
            )
        }
    )
    transform.run(Q)
    assert llm.seen[0][-1].content.startswith("Count the tokens needed")


def test_bad_input():
    with pytest.raises(ValueError, match="empty"):
        TaleQueryTransform(llm=UsageMockLLM()).run("  ")
    with pytest.raises(ValueError):
        TaleQueryTransform(llm=UsageMockLLM(), style="nope").run(Q)
    fallback = TaleQueryTransform(llm=UsageMockLLM(estimate_reply="no idea"), estimator="zero-shot")
    fallback.run(Q)
    assert fallback.last_budget.tokens == 256 and fallback.last_budget.fell_back


def test_default_is_the_models_profile_method_with_no_estimator_call():
    llm = UsageMockLLM()
    metadata: dict = {}
    bundle = TaleQueryTransform(llm=llm).run(Q, metadata)
    assert metadata["tale"]["method"] == "tale (tale-heuristic@paper; no profile)"
    assert metadata["tale"]["estimator"] == "heuristic" and llm.seen == []  # no model call
    assert "use less than" in bundle.query_str


def test_methods_word_the_query_and_others_are_refused():
    metadata: dict = {}
    bundle = TaleQueryTransform(llm=UsageMockLLM(), method="chain-of-draft").run(Q, metadata)
    assert "5 words at most" in bundle.query_str and metadata["tale"]["budget"] is None
    with pytest.raises(ValueError, match="exemplars, forcing and early exit"):
        TaleQueryTransform(llm=UsageMockLLM(), method="tale-heuristic+ex3")


def test_no_llm_anywhere_falls_back_to_the_default_style(monkeypatch):
    from llama_index.core import Settings

    monkeypatch.setattr(Settings, "_llm", None)
    transform = TaleQueryTransform(estimator="fixed:64")  # no llm, no usable Settings.llm
    assert "use less than 64 tokens" in transform.run(Q).query_str


def test_a_system_style_leads_the_query_and_budgets_stay_per_task():
    transform = TaleQueryTransform(llm=UsageMockLLM(), estimator="fixed:64", style="system")
    bundle = transform.run(Q)
    assert bundle.query_str.startswith("You are a concise problem solver")
    assert bundle.query_str.endswith(Q)


async def test_last_budget_is_per_task_under_concurrent_queries():
    import asyncio

    from tale_shared.budget import TokenBudget
    from tale_shared.estimators import BudgetEstimator

    class ByLength(BudgetEstimator):
        def estimate(self, question):  # type: ignore[no-untyped-def]
            return TokenBudget(tokens=len(question), estimator="len")

        async def aestimate(self, question):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.01)
            return self.estimate(question)

    transform = TaleQueryTransform(llm=UsageMockLLM(), estimator=ByLength())

    async def one(q: str) -> tuple[int, int]:
        await transform.arun(q)
        await asyncio.sleep(0.02)
        return len(q), transform.last_budget.tokens

    pairs = await asyncio.gather(*(one("x" * (40 + i)) for i in range(10)))
    assert all(asked == seen for asked, seen in pairs)


async def test_local_llm_streams_as_it_generates_and_stops_when_left():
    from conftest import FakeLocal

    from llama_index_tale import LocalLlamaLLM

    llm = LocalLlamaLLM(model="smollm2-135m")
    fake = FakeLocal()
    llm._local = fake
    stream = await llm.astream_complete("hi")
    first = await stream.__anext__()
    assert first.delta == "w0 " and fake.made < 200  # the first piece came before the last
    await stream.aclose()
    for _ in range(50):
        if fake.closed:
            break
        await asyncio.sleep(0.02)
    assert fake.closed and fake.made < 100
