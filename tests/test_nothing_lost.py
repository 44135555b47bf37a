"""Nothing lost, nothing counted twice: exports, tracers, agent budgets, parsing, the CLI."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import math
import warnings
from pathlib import Path

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from lc_fakes import ToolCallingFake, UsageFakeChatModel
from li_fakes import UsageMockLLM
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback

from langchain_tale import TaleRunnable
from langchain_tale import TaleTracer as LangChainTracer
from langchain_tale.middleware import TaleBudgetExceededError, TaleBudgetMiddleware
from llama_index_tale import TaleLLM, TaleQueryEngine, TaleQueryTransform, TaleTracer
from llama_index_tale.llm_adapter import LlamaIndexModel
from tale_shared import cli
from tale_shared._io import JsonlAppender, write_jsonl
from tale_shared.estimators import (
    EstimatorFileError,
    RegressionEstimator,
    ZeroShotEstimator,
    parse_budget_reply,
)
from tale_shared.research.export import export_sft
from tale_shared.research.search import load_results
from tale_shared.run_budget import UnpricedModelWarning
from tale_shared.tokens import count_tokens
from tale_shared.usage import QueryRecord, UsageLedger

SEARCH = Path(__file__).resolve().parents[1] / "benchmarks/results/search-gsm8k-train.jsonl"


# -- exports: never clobbered ----------------------------------------------------------------
def _copy_search(tmp_path: Path, n: int = 100) -> Path:
    runs = tmp_path / "runs.jsonl"
    runs.write_text("".join(SEARCH.read_text().splitlines(keepends=True)[:n]))
    return runs


@pytest.mark.parametrize("kind", ["sft", "dpo", "tokenskip"])
def test_export_onto_its_own_input_is_refused_and_the_input_kept(tmp_path, capsys, kind):
    runs = _copy_search(tmp_path)
    before = runs.read_bytes()
    assert cli.main(["export", kind, str(runs), "--out", str(runs)]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert runs.read_bytes() == before


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path):
    out = tmp_path / "out.jsonl"
    write_jsonl(({"n": i} for i in range(100)), out)

    def rows():
        yield {"n": 0}
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_jsonl(rows(), out)
    assert len(out.read_text().splitlines()) == 100
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary file left


def test_export_of_a_good_search_still_writes_every_example(tmp_path):
    runs = _copy_search(tmp_path)
    assert export_sft(runs, tmp_path / "sft.jsonl") == 44


def test_appender_closes_a_cut_line_before_writing(tmp_path):
    out = tmp_path / "a.jsonl"
    out.write_text('{"id": 1}\n{"id": 2, "cut')
    with JsonlAppender(out) as appender:
        appender.write({"id": 3})
    lines = out.read_text().splitlines()
    assert json.loads(lines[-1]) == {"id": 3} and len(lines) == 3


# -- LangChain middleware: the estimator's calls are the estimator's, and they count ---------
@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _agent(middleware, n_tool_calls=2, model_name="gpt-4o-mini"):
    script = [
        AIMessage(
            content="",
            tool_calls=[
                {"name": "add", "args": {"a": i, "b": 1}, "id": f"c{i}", "type": "tool_call"}
            ],
        )
        for i in range(n_tool_calls)
    ] + [AIMessage(content="The answer is [[3]].")]
    model = ToolCallingFake(script=script, model_name=model_name)
    agent = create_agent(model, tools=[add], system_prompt="Calculator.", middleware=[middleware])
    return agent, {"messages": [HumanMessage("What is 2 + 1? Use the tool.")]}


def test_zero_shot_estimator_calls_in_an_agent_are_recorded_as_estimator_calls():
    agent, inputs = _agent(TaleBudgetMiddleware(estimator="zero-shot"))
    tracer = LangChainTracer()
    agent.invoke(inputs, config={"callbacks": [tracer]})
    (record,) = tracer.records
    roles = [c.role for c in record.calls]
    assert roles.count("estimator") == 3 and roles.count("answer") == 3
    assert record.estimator_usage.total_tokens > 0


def test_zero_shot_estimator_tokens_count_toward_the_agents_total():
    # measure one step's answer and estimator tokens, then set a total between them
    agent, inputs = _agent(TaleBudgetMiddleware(estimator="zero-shot"))
    tracer = LangChainTracer()
    agent.invoke(inputs, config={"callbacks": [tracer]})
    first_answer = next(c for c in tracer.records[0].calls if c.role == "answer")
    first_estimate = next(c for c in tracer.records[0].calls if c.role == "estimator")
    assert first_estimate.usage.total_tokens > 1
    total = first_answer.usage.total_tokens + 1  # the answer alone stays under it
    agent, inputs = _agent(
        TaleBudgetMiddleware(estimator="zero-shot", total_tokens=total, exit_behavior="error")
    )
    with pytest.raises(TaleBudgetExceededError) as info:
        agent.invoke(inputs)
    assert info.value.tokens == first_answer.usage.total_tokens + first_estimate.usage.total_tokens


def test_a_usd_total_with_an_unpriced_model_warns_once():
    agent, inputs = _agent(
        TaleBudgetMiddleware(estimator="fixed:50", total_usd=0.01), model_name="my-private-llm"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agent.invoke(inputs)
    unpriced = [w for w in caught if issubclass(w.category, UnpricedModelWarning)]
    assert len(unpriced) == 1 and "my-private-llm" in str(unpriced[0].message)


# -- LangChain tracer: every call under a root, wherever it is -------------------------------
def test_a_model_call_inside_a_tool_belongs_to_the_query():
    inner = UsageFakeChatModel(responses=["inner [[1]]"])
    outer = UsageFakeChatModel(responses=["outer [[2]]"])

    @tool
    def lookup(q: str) -> str:
        """Ask the inner model."""
        return inner.invoke(q).text

    chain = RunnableLambda(lambda x: lookup.invoke(x["question"])) | outer
    tracer = LangChainTracer()
    chain.invoke({"question": "What is 1 + 1?"}, config={"callbacks": [tracer]})
    (record,) = tracer.records
    assert record.n_calls == 2 and record.question == "What is 1 + 1?"
    assert tracer.pending_runs == 0


def test_a_handler_attached_inside_a_chain_records_each_tale_run():
    tracer = LangChainTracer()
    tale = TaleRunnable(llm=UsageFakeChatModel(), estimator="fixed:64").with_config(
        callbacks=[tracer]
    )
    chain = RunnableLambda(lambda x: x) | tale
    chain.invoke("What is 3 + 5?")
    chain.invoke("What is 4 + 4?")
    records = tracer.records
    assert [r.budget for r in records] == [64, 64] and all(r.n_calls == 1 for r in records)
    assert tracer.pending_runs == 0


async def test_cancelled_queries_keep_their_in_flight_call_and_leave_nothing_behind():
    class Slow(UsageFakeChatModel):
        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
            await asyncio.sleep(10)
            raise AssertionError("not reached")

    tracer = LangChainTracer()
    runnable = TaleRunnable(llm=Slow(), estimator="fixed:64")
    task = asyncio.ensure_future(
        runnable.abatch([f"q{i}" for i in range(64)], config={"callbacks": [tracer]})
    )
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    records = tracer.records
    assert len(records) == 64
    assert all(r.n_calls == 1 and r.calls[0].error for r in records)
    assert tracer.pending_runs == 0


def test_regression_spec_is_loaded_once(monkeypatch):
    loads = []
    real = RegressionEstimator.load.__func__

    def counting(cls, path):
        loads.append(path)
        return real(cls, path)

    monkeypatch.setattr(RegressionEstimator, "load", classmethod(counting))
    runnable = TaleRunnable(llm=UsageFakeChatModel(), estimator="regression")
    for i in range(20):
        runnable.invoke(f"What is {i} + 1?")
    assert len(loads) == 1


def test_dict_keys_that_do_not_reach_the_prompt_are_named():
    runnable = TaleRunnable(llm=UsageFakeChatModel(), estimator="fixed:64")
    with pytest.warns(UserWarning, match=r"\['context'\]"):
        runnable.invoke({"question": "What is 3 + 5?", "context": "numbers"})


# -- LlamaIndex tracer: one call is one call -------------------------------------------------
def test_mock_llm_chat_through_complete_is_one_call():
    llm = MockLLM(max_tokens=8)
    with TaleTracer() as tracer:
        reply = llm.chat([ChatMessage(role=MessageRole.USER, content="hello there")])
    (record,) = tracer.records
    assert record.n_calls == 1
    assert record.answer_usage.output_tokens == count_tokens(reply.message.content)


async def test_mock_llm_achat_and_aquery_count_each_call_once():
    llm = MockLLM(max_tokens=8)
    with TaleTracer() as tracer:
        await llm.achat([ChatMessage(role=MessageRole.USER, content="hello")])
    assert [r.n_calls for r in tracer.records] == [1]

    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding

    index = VectorStoreIndex.from_documents(
        [Document(text="Natalia sold 48 clips.")], embed_model=MockEmbedding(embed_dim=8)
    )
    engine = TaleQueryEngine(
        index.as_query_engine(llm=llm), TaleQueryTransform(llm=llm, estimator="zero-shot")
    )
    with TaleTracer() as tracer:
        await engine.aquery("How many clips?")
    (record,) = tracer.records
    assert [c.role for c in record.calls] == ["estimator", "answer"]


class _FailingLLM(UsageMockLLM):
    """Answers fail (inside the instrumented call, as a provider error would) when the
    question says FAIL; the estimator's calls succeed."""

    @llm_completion_callback()
    async def acomplete(self, prompt, formatted=False, **kwargs):  # type: ignore[override]
        if "FAIL" in prompt:
            raise RuntimeError("provider down")
        return self._complete(prompt)


async def test_queries_whose_answer_call_fails_are_recorded_with_the_error():
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding

    llm = _FailingLLM()
    index = VectorStoreIndex.from_documents(
        [Document(text="Natalia sold 48 clips.")], embed_model=MockEmbedding(embed_dim=8)
    )
    engine = TaleQueryEngine(
        index.as_query_engine(llm=llm), TaleQueryTransform(llm=llm, estimator="zero-shot")
    )
    questions = [f"How many clips? {'FAIL' if i % 5 == 0 else 'ok'} {i}" for i in range(50)]
    with TaleTracer() as tracer:
        await asyncio.gather(*(engine.aquery(q) for q in questions), return_exceptions=True)
    records = tracer.records
    assert len(records) == 50
    failed = [r for r in records if r.error]
    assert len(failed) == 10
    for r in failed:  # the billed estimator call is there, and the failed answer call
        assert [c.role for c in r.calls] == ["estimator", "answer"]
        assert r.calls[0].usage.total_tokens > 0 and "provider down" in (r.calls[1].error or "")


def test_a_tracer_entered_twice_keeps_listening_until_the_outer_exit():
    llm = UsageMockLLM()
    tracer = TaleTracer()
    message = [ChatMessage(role=MessageRole.USER, content="hi")]
    with tracer:
        with tracer:
            llm.chat(message)
        llm.chat(message)  # after the inner exit: still recorded
    llm.chat(message)  # after the outer exit: not
    assert len(tracer.records) == 2


def test_tale_llm_spending_includes_the_estimators_calls():
    estimator_llm = UsageMockLLM()
    llm = TaleLLM(
        llm=UsageMockLLM(),
        estimator=ZeroShotEstimator(LlamaIndexModel(estimator_llm, role="estimator")),
    )
    reply = llm.chat([ChatMessage(role=MessageRole.USER, content="What is 3 + 5?")])
    answer = reply.raw["usage"]
    n_answer = answer["prompt_tokens"] + answer["completion_tokens"]
    (estimate_messages,) = estimator_llm.seen
    n_estimate = sum(len((m.content or "").split()) for m in estimate_messages) + 2
    assert llm.spent.tokens == n_answer + n_estimate and llm.spent.steps == 1


def test_transform_refuses_a_query_that_is_not_text():
    transform = TaleQueryTransform(llm=UsageMockLLM(), estimator="fixed:64")
    with pytest.raises(TypeError, match="query string or a QueryBundle"):
        transform.run(None)  # type: ignore[arg-type]


# -- ledgers and CSV -------------------------------------------------------------------------
def test_a_lone_surrogate_is_cleaned_on_the_way_in_and_exports_never_half_write(tmp_path):
    out = tmp_path / "ledger.jsonl"
    ledger = UsageLedger(QueryRecord(question=f"q{i}") for i in range(100))
    ledger.to_jsonl(out)
    ledger.add(QueryRecord(question="bad \ud800 text"))
    ledger.to_jsonl(out)
    ledger.to_csv(tmp_path / "ledger.csv")
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 101 and "bad \ufffd text" in lines[-1]


def test_ledger_export_failing_midway_keeps_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "ledger.jsonl"
    UsageLedger(QueryRecord(question=f"q{i}") for i in range(100)).to_jsonl(out)
    broken = UsageLedger([QueryRecord(question="a"), QueryRecord(question="b")])
    calls = []

    def dump(self, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise OSError("disk full")
        return "{}"

    monkeypatch.setattr(QueryRecord, "model_dump_json", dump)
    with pytest.raises(OSError):
        broken.to_jsonl(out)
    assert len(out.read_text().splitlines()) == 100


def test_csv_cells_that_would_run_as_formulas_are_escaped(tmp_path):
    ledger = UsageLedger([QueryRecord(question='=HYPERLINK("http://x","y")', error="-2+3")])
    path = ledger.to_csv(tmp_path / "costs.csv")
    (row,) = list(csv.DictReader(path.open(encoding="utf-8")))
    assert row["question"].startswith("'=") and row["error"] == "'-2+3"


# -- the regression file ---------------------------------------------------------------------
def _rewrite(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document["params"])
    canonical = json.dumps(document["params"], sort_keys=True, separators=(",", ":"))
    document["sha256"] = hashlib.sha256(canonical.encode()).hexdigest()  # a deliberate edit
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.update(intercept=math.nan),
        lambda p: p["coef"].__setitem__(0, math.inf),
        lambda p: p.update(fallback_tokens=10**9),
        lambda p: p["idf"].__setitem__(0, -1.0),
    ],
    ids=["nan-intercept", "inf-coef", "fallback-out-of-range", "negative-idf"],
)
def test_a_recomputed_checksum_does_not_let_nonsense_load(tmp_path, change):
    path = (
        RegressionEstimator()
        .fit(["What is 2+2?", "A long question"] * 5, [40, 200] * 5)
        .save(tmp_path / "est.json")
    )
    _rewrite(path, change)
    with pytest.raises(EstimatorFileError):
        RegressionEstimator.load(path)


# -- parsing the zero-shot reply -------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("GPT-4 estimate: 150", 150),
        ("a 2-step problem, I'd say 150", 150),
        ("[[1,2,3]]", None),
        ("Budget: [[1,200]]", 1200),
        ("about 80 tokens, not 2-3 steps", 80),
        ("use -3 tokens", None),
        ("Budget: [[45 tokens]]", 45),
    ],
)
def test_zero_shot_replies_are_read_as_a_person_would(reply, value):
    assert parse_budget_reply(reply).value == value


# -- the CLI: errors, not tracebacks; checks before the model loads --------------------------
def _no_model(*args, **kwargs):
    raise AssertionError("the model must not load for this")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "   "], "question is empty"),
        (["ask", "What is 2+2?", "--estimator", "magic"], "unknown estimator"),
        (["ask", "What is 2+2?", "--style", "shouty"], "unknown prompt style"),
        (["ask", "What is 2+2?", "--estimator", "fixed:-3"], "positive integer"),
    ],
)
def test_ask_checks_its_arguments_before_loading_the_model(monkeypatch, capsys, argv, message):
    monkeypatch.setattr(cli, "load_model", _no_model)
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_folder_as_data_is_an_error_not_a_traceback(tmp_path, capsys):
    assert cli.main(["train-estimator", str(tmp_path), "--out", str(tmp_path / "e.json")]) == 2
    assert "tale: error:" in capsys.readouterr().err


@pytest.mark.parametrize("row", ["null", '"a string"', "[1, 2]"])
def test_a_bad_row_in_a_data_file_names_its_line(tmp_path, capsys, row):
    data = tmp_path / "data.jsonl"
    data.write_text('{"question": "q", "answer": "1"}\n' + row + "\n")
    assert cli.main(["search", "--data", str(data), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert f"{data}:2" in capsys.readouterr().err


def test_a_wrong_schema_search_file_names_its_line(tmp_path, capsys):
    runs = tmp_path / "runs.jsonl"
    runs.write_text(SEARCH.read_text().splitlines(keepends=True)[0] + '{"foo": 1}\n')
    assert cli.main(["export", "sft", str(runs), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert f"{runs}:2 is not a search result" in capsys.readouterr().err
    with pytest.raises(ValueError, match="holds no search result"):
        (tmp_path / "junk.jsonl").write_text("not json\n")
        load_results(tmp_path / "junk.jsonl")


def test_train_estimator_refuses_an_unwritable_output_before_training(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr("tale_shared.research.training.train_from_search", _no_model)
    target = tmp_path / "a-folder"
    target.mkdir()
    code = cli.main(["train-estimator", str(SEARCH), "--out", str(target)])
    assert code == 2 and "is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["search", "calibrate", "bench"])
def test_a_lora_adapter_is_refused_on_ray_rather_than_dropped(
    tmp_path, monkeypatch, capsys, command
):
    from tale_shared.research import cli as research_cli

    monkeypatch.setattr(research_cli, "load_model", _no_model)
    data = tmp_path / "data.jsonl"
    data.write_text('{"question": "q", "answer": "1"}\n')
    for adapter in (["--lora", "a.gguf"], ["--no-adapter"]):
        argv = [command, "--data", str(data), "--ray", *adapter]
        if command != "calibrate":
            argv += ["--out", str(tmp_path / "o.jsonl")]
        assert cli.main(argv) == 2
        assert "--lora and --no-adapter run in process" in capsys.readouterr().err
