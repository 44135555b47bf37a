"""TokenSkip-format inference (fake models) and compressed context in agent loops."""

import asyncio

import pytest
from lc_fakes import UsageFakeChatModel
from li_fakes import UsageMockLLM

from langchain_tale import TaleTracer, TokenSkipRunnable
from tale_shared.compression import SEPARATOR, training_example

Q = "Natalia sold clips to 48 of her friends in April, and then half as many in May. Total?"
REPLY = "48 / 2 = 24\n48 + 24 = 72\nThe final answer is: [[72]]"


def test_langchain_sends_exactly_the_training_layout_and_parses_the_answer():
    llm = UsageFakeChatModel(responses=[REPLY])
    tracer = TaleTracer()
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


# -- compressed context in agent loops ---------------------------------------------------------
LONG_OBSERVATION = (
    "The weather service reports that the temperature in the city is currently 21 degrees, "
    "with a light wind from the west at 12 km/h, and the forecast says that there will be "
    "some clouds in the afternoon but that the evening should be clear and mild for the "
    "whole region, according to the latest update that was published this morning at 6."
)


def test_langchain_middleware_compresses_old_steps_and_keeps_the_structure():
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.tools import tool
    from lc_fakes import ToolCallingFake

    from langchain_tale.middleware import TaleContextCompressionMiddleware

    @tool
    def weather(city: str) -> str:
        """The weather report for a city."""
        return LONG_OBSERVATION

    script = [
        AIMessage(
            content=f"I will look up the weather, step {i}, " + "thinking about it " * 20,
            tool_calls=[
                {"name": "weather", "args": {"city": "x"}, "id": f"c{i}", "type": "tool_call"}
            ],
        )
        for i in range(3)
    ] + [AIMessage(content="It is 21 degrees. [[21]]")]
    model = ToolCallingFake(script=script)
    middleware = TaleContextCompressionMiddleware(context_ratio=0.5, min_tokens=20)
    agent = create_agent(
        model,
        tools=[weather],
        system_prompt="You are a weather bot. " * 10,
        middleware=[middleware],
    )
    task = "What is the temperature in the city? " * 5
    result = agent.invoke({"messages": [HumanMessage(task)]})
    assert result["messages"][-1].text.endswith("[[21]]")
    assert result["messages"][2].text == LONG_OBSERVATION  # the agent's state is untouched
    last_step, _ = model.seen[-1]  # system, human, (ai, tool) x 3
    assert last_step[0].type == "system" and last_step[0].text == "You are a weather bot. " * 10
    assert last_step[1].text == task  # the latest human message, whole
    tools = [m for m in last_step if m.type == "tool"]
    ais = [m for m in last_step if m.type == "ai"]
    assert [m.tool_call_id for m in tools] == ["c0", "c1", "c2"]  # structure kept
    assert [m.tool_calls[0]["id"] for m in ais] == ["c0", "c1", "c2"]
    assert tools[-1].text == LONG_OBSERVATION  # the latest result, whole
    for old in tools[:-1]:
        assert len(old.text) < 0.7 * len(LONG_OBSERVATION) and "21" in old.text
    assert all(len(m.text) < len(script[0].text) for m in ais)


def test_a_failing_scorer_leaves_the_context_whole_and_warns():
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    from langchain_tale.middleware import TaleContextCompressionMiddleware

    def broken(tokens):
        raise RuntimeError("scorer down")

    middleware = TaleContextCompressionMiddleware(context_ratio=0.5, min_tokens=5, scorer=broken)
    messages = [
        HumanMessage("task"),
        AIMessage(
            content="", tool_calls=[{"name": "t", "args": {}, "id": "c0", "type": "tool_call"}]
        ),
        ToolMessage(LONG_OBSERVATION, tool_call_id="c0"),
        ToolMessage(LONG_OBSERVATION, tool_call_id="c0"),
    ]
    with pytest.warns(UserWarning, match="scorer down"):
        out = middleware.compressed(messages)
    assert [m.text for m in out] == [m.text for m in messages]


def test_llama_index_node_postprocessor_and_tale_llm_history():
    from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole
    from llama_index.core.schema import NodeWithScore, TextNode

    from llama_index_tale import CompressingNodePostprocessor, TaleLLM

    nodes = [
        NodeWithScore(node=TextNode(text=LONG_OBSERVATION), score=0.9),
        NodeWithScore(node=TextNode(text="short"), score=0.5),
    ]
    out = CompressingNodePostprocessor(context_ratio=0.5).postprocess_nodes(nodes)
    assert len(out[0].node.text) < 0.7 * len(LONG_OBSERVATION) and out[1].node.text == "short"
    assert nodes[0].node.text == LONG_OBSERVATION and out[0].score == 0.9

    inner = UsageMockLLM(answer="[[21]]")
    llm = TaleLLM(llm=inner, estimator="fixed:50", style="system", context_ratio=0.5)
    image = ChatMessage(role=MessageRole.USER, blocks=[ImageBlock(url="http://x/y.png")])
    history = [
        ChatMessage(role=MessageRole.SYSTEM, content="You are a weather bot."),
        ChatMessage(role=MessageRole.USER, content="What is the temperature?"),
        ChatMessage(role=MessageRole.TOOL, content=LONG_OBSERVATION),
        image,
        ChatMessage(role=MessageRole.TOOL, content=LONG_OBSERVATION),
    ]
    llm.chat(history)
    sent = inner.seen[-1]
    assert sent[1].content == "What is the temperature?"  # the latest user message
    assert len(sent[2].content) < 0.7 * len(LONG_OBSERVATION)  # an older tool result
    assert sent[3].blocks == image.blocks  # not text: passed through
    assert sent[4].content == LONG_OBSERVATION  # the latest tool result


def test_tokenskip_data_from_benchmark_rows_takes_correct_uncut_cots_once_per_question(
    tmp_path, capsys
):
    import json

    from tale_shared.research.bench import BenchRow
    from tale_shared.research.export import export_tokenskip

    data = tmp_path / "items.jsonl"
    items = [
        {"id": f"q{k}", "question": f"What is {k} + {k}?", "answer": str(2 * k)} for k in range(4)
    ]
    data.write_text("".join(json.dumps(i) + "\n" for i in items))
    cot = "First add the two numbers: {k} + {k} = {s}. So the total is {s}. [[{s}]]"
    rows = [
        BenchRow(
            method=m,
            id=f"q{k}",
            correct=ok,
            answer=str(2 * k),
            cut=cut,
            text=cot.format(k=k, s=2 * k),
        )
        for m, k, ok, cut in [
            ("vanilla", 0, True, False),
            ("vanilla-paper", 0, True, False),  # the same question: once
            ("vanilla", 1, False, False),  # wrong
            ("vanilla", 2, True, True),  # cut at its cap
            ("tale", 3, True, False),  # not a plain CoT
        ]
    ]
    runs = tmp_path / "rows.jsonl"
    runs.write_text("".join(r.model_dump_json() + "\n" for r in rows))
    out = tmp_path / "ts.jsonl"
    assert export_tokenskip(runs, out, data=data, ratios=(0.5,)) == 1
    (example,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert example["prompt"].startswith("What is 0 + 0?") and "0.5" in example["prompt"]
    with pytest.raises(ValueError, match="--data"):
        export_tokenskip(runs, tmp_path / "x.jsonl")

    # several files through the CLI: read in order, an item taken once
    from tale_shared import cli

    more = [
        BenchRow(
            method="vanilla",
            id=f"q{k}",
            correct=True,
            answer=str(2 * k),
            text=cot.format(k=k, s=2 * k),
        )
        for k in (0, 3)
    ]
    runs2 = tmp_path / "rows2.jsonl"
    runs2.write_text("".join(r.model_dump_json() + "\n" for r in more))
    both = tmp_path / "both.jsonl"
    cmd = ["export", "tokenskip", str(runs), str(runs2), "--data", str(data), "--out", str(both)]
    assert cli.main([*cmd, "--ratios", "0.7"]) == 0
    prompts = [json.loads(line)["prompt"] for line in both.read_text().splitlines()]
    assert [p.split("?")[0] for p in prompts] == ["What is 0 + 0", "What is 3 + 3"]
    sft = ["export", "sft", str(runs), str(runs2), "--out", str(tmp_path / "s.jsonl")]
    assert cli.main(sft) != 0
    assert "sft data comes from one search file, not 2" in capsys.readouterr().err


def test_tokenskip_is_a_method_the_pipeline_and_bench_run_with_the_runnables_layout(
    scripted, tmp_path
):
    """`tale bench --methods tokenskip@0.5` asks exactly what TokenSkipRunnable asks: the
    training layout, the cap scaled by gamma, one call, no budget."""
    from tale_shared.methods import parse_method
    from tale_shared.pipeline import TalePipeline
    from tale_shared.research.bench import load_rows, run_bench
    from tale_shared.research.datasets import Item

    model = scripted(REPLY)
    result = TalePipeline(model, method="tokenskip@0.5", max_tokens=400).solve(Q)
    (messages, cap) = model.calls[0]
    assert [m.role for m in messages] == ["user"]
    assert messages[0].content == training_example(Q, "x", "72", 0.5)["prompt"]
    assert cap == 200 and result.answer == "72" and result.budget is None
    assert result.record.method == "tokenskip@0.5" and result.record.n_calls == 1

    llm = UsageFakeChatModel(responses=[REPLY])
    TokenSkipRunnable(llm=llm, gamma=0.5, max_tokens=400).invoke(Q)
    assert llm.seen[0][0][-1].text == messages[0].content and llm.seen[0][1]["max_tokens"] == 200

    out = tmp_path / "rows.jsonl"
    items = [Item(id="a", question=Q, answer="72")]
    assert run_bench(model, items, ["tokenskip@1.0", "tokenskip@0.7"], out, progress=False) == 2
    rows = {r.method: r for r in load_rows(out)}
    assert rows["tokenskip@1.0"].cap == 512 and rows["tokenskip@0.7"].cap == 359
    assert all(r.correct for r in rows.values())
    assert model.calls[1][0][0].content == Q  # ratio 1.0 is the bare question
    assert parse_method("tokenskip@1").spec == "tokenskip@1.0"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("tokenskip@x", "needs a ratio"),
        ("tokenskip@1.5", r"must be in \(0, 1\]"),
        ("tokenskip@0.5+ex3", "takes no modifiers"),
        ("tokenskip@0.5+force", "takes no modifiers"),
    ],
)
def test_a_bad_tokenskip_method_is_a_clear_error(spec, message):
    from tale_shared.methods import parse_method

    with pytest.raises(ValueError, match=message):
        parse_method(spec)


def test_budget_entry_points_refuse_tokenskip_and_name_the_one_that_runs_it():
    from langchain_tale import TaleRunnable
    from langchain_tale.middleware import TaleBudgetMiddleware
    from llama_index_tale import TaleQueryTransform

    llm = UsageFakeChatModel(responses=[REPLY])
    with pytest.raises(ValueError, match="TokenSkipRunnable"):
        TaleRunnable(llm=llm, method="tokenskip@0.5")
    with pytest.raises(ValueError, match="TokenSkipQueryTransform"):
        TaleQueryTransform(llm=UsageMockLLM(), method="tokenskip@0.5")
    with pytest.raises(ValueError, match="not a step budget"):
        TaleBudgetMiddleware(method="tokenskip@0.5")
