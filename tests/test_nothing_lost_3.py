"""Nothing lost, nothing leaked, part three: outputs that would overwrite inputs, another
model's results resumed, interrupts, cut trace files, credentials, tracers that leak hooks or
miss calls, replies that crash, caps that were never validated."""

from __future__ import annotations

import _thread
import asyncio
import json
import math
import os
import signal
import threading
import time
import warnings
from pathlib import Path

import httpx
import pytest
from conftest import ScriptedModel
from langchain_core.language_models import FakeListLLM
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.config import ContextThreadPoolExecutor
from langchain_core.tracers.context import _configure_hooks
from lc_fakes import UsageFakeChatModel
from pydantic import Field

from langchain_tale import TaleRunnable, TaleTracer
from langchain_tale.callbacks import registered_hooks
from llama_index_tale import TaleQueryEngine as TaleQueryEngine_li
from llama_index_tale import TaleQueryTransform as TaleQueryTransform_li
from llama_index_tale import TaleTracer as TaleTracer_li
from tale_shared import cli
from tale_shared.caps import check_cap_headroom
from tale_shared.estimators import ZeroShotEstimator
from tale_shared.model_identity import model_identity
from tale_shared.models import Completion, ModelCallError, finish_reason_of
from tale_shared.pipeline import TalePipeline
from tale_shared.profiles import profile_for
from tale_shared.prompts import Message
from tale_shared.research.bench import BenchRow, run_bench
from tale_shared.research.datasets import Item
from tale_shared.research.jobs import Output, arun_jobs, run_jobs
from tale_shared.research.search import BudgetSearch, search_dataset
from tale_shared.served import ServedModel
from tale_shared.usage import CallRecord, CutLineWarning, QueryRecord, TokenUsage, UsageLedger

ROOT = Path(__file__).resolve().parents[1]
SEARCH = ROOT / "benchmarks/results/search-gsm8k-train.jsonl"


def _copy(src: Path, dst: Path, lines: int = 20) -> Path:
    dst.write_text("".join(src.read_text().splitlines(keepends=True)[:lines]))
    return dst


def _items_file(tmp_path: Path) -> Path:
    path = tmp_path / "items.jsonl"
    rows = [{"id": str(i), "question": f"What is {i} + 2?", "answer": str(i + 2)} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# -- 1. an output path that is an input path -------------------------------------------------
def _runs(tmp_path: Path) -> Path:
    return _copy(SEARCH, tmp_path / "runs.jsonl")


def _rows(tmp_path: Path) -> Path:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        BenchRow(method="vanilla", id="0", correct=True, output_tokens=5).model_dump_json() + "\n"
    )
    return rows


CLOBBERS = {
    "exemplars onto its search file": lambda t: (["exemplars", str(_runs(t))], "runs"),
    "train-estimator onto its search file": lambda t: (
        ["train-estimator", str(_runs(t))],
        "runs",
    ),
    "plot-search onto its search file": lambda t: (
        ["plot-search", str(_runs(t)), "--id", "x"],
        "runs",
    ),
    "search onto its items": lambda t: (["search", "--data", str(_items_file(t))], "items"),
    "bench table onto its rows": lambda t: (
        ["bench", "--data", str(_items_file(t)), "--out", str(_rows(t)), "--summary-only"],
        "rows",
        "--table",
    ),
    "bench table onto its items": lambda t: (
        ["bench", "--data", str(_items_file(t)), "--out", str(t / "r.jsonl"), "--summary-only"],
        "items",
        "--table",
    ),
    "bench plot onto its items": lambda t: (
        ["bench", "--data", str(_items_file(t)), "--out", str(t / "r.jsonl"), "--summary-only"],
        "items",
        "--plot",
    ),
    "agent-bench table onto its items": lambda t: (
        ["agent-bench", "--data", str(_items_file(t)), "--out", str(t / "r.jsonl")],
        "items",
        "--table",
    ),
    "bench rows onto its items": lambda t: (
        ["bench", "--data", str(_items_file(t)), "--summary-only"],
        "items",
        "--out",
    ),
}


@pytest.mark.parametrize("case", CLOBBERS)
def test_no_command_writes_over_one_of_its_inputs(tmp_path, capsys, case):
    argv, victim, *flag = CLOBBERS[case](tmp_path)
    target = tmp_path / ("runs.jsonl" if victim == "runs" else f"{victim}.jsonl")
    before = target.read_bytes()
    argv = [*argv, flag[0] if flag else "--out", str(target)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "it would be replaced" in err or "one would replace the other" in err
    assert len(err.splitlines()) == 1
    assert target.read_bytes() == before  # nothing written
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_output_that_reaches_an_input_through_a_link_is_refused(tmp_path, capsys):
    runs = _runs(tmp_path)
    link = tmp_path / "link.jsonl"
    link.symlink_to(runs)
    before = runs.read_bytes()
    assert cli.main(["exemplars", str(runs), "--out", str(link)]) == 2
    assert runs.read_bytes() == before


# -- 2. resuming another model's results -----------------------------------------------------
async def test_search_refuses_to_resume_another_models_results(tmp_path):
    items = [Item(id=str(i), question=f"What is {i} + 2?", answer=str(i + 2)) for i in range(2)]
    out = tmp_path / "search.jsonl"
    first = BudgetSearch(ScriptedModel("[[2]]", model_name="model-a"), max_tokens=32)
    await search_dataset(first, items[:1], out, progress=False)
    lines = out.read_text()
    other = BudgetSearch(ScriptedModel("[[2]]", model_name="model-b"), max_tokens=32)
    with pytest.raises(ValueError, match="model-a, not model-b"):
        await search_dataset(other, items, out, progress=False)
    assert out.read_text() == lines
    same = BudgetSearch(ScriptedModel("[[3]]", model_name="model-a"), max_tokens=32)
    await search_dataset(same, items, out, progress=False)  # the same model resumes
    assert len(out.read_text().splitlines()) == 2


# -- 3. an interrupt keeps every finished result ---------------------------------------------
def test_an_interrupt_writes_every_call_the_server_answered(tmp_path):
    answered: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> int:
        time.sleep(0.05)
        with lock:
            answered.append(n)
            if len(answered) == 8:
                _thread.interrupt_main()  # Ctrl-C while 4 calls are in flight
        return n

    out = tmp_path / "rows.jsonl"
    output = Output[int](out, str, "jobs", "job")
    with pytest.raises(KeyboardInterrupt):
        run_jobs(list(range(40)), work, output, concurrency=4, progress=False)
    written = sorted(int(line) for line in out.read_text().split())
    assert len(answered) > 8  # calls were in flight at the interrupt
    assert written == sorted(answered)  # none of them paid again on resume


async def test_a_cancelled_async_run_writes_the_calls_in_flight(tmp_path):
    answered: list[int] = []

    async def work(n: int) -> int:
        await asyncio.sleep(0.02 if n < 4 else 0.2)
        answered.append(n)
        return n

    out = tmp_path / "rows.jsonl"
    task = asyncio.ensure_future(
        arun_jobs(list(range(20)), work, Output[int](out, str), concurrency=6, progress=False)
    )
    await asyncio.sleep(0.08)  # 4 done, 6 in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    written = sorted(int(line) for line in out.read_text().split())
    assert len(answered) == 10 and written == sorted(answered)


def test_sigterm_stops_a_command_as_ctrl_c_does(monkeypatch, capsys):
    finished: list[str] = []

    def command(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        finally:
            finished.append("cleanup ran")
        return 0

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    styles = parser._subparsers._group_actions[0].choices["styles"]  # type: ignore[union-attr]
    styles.set_defaults(func=command)
    started = time.perf_counter()
    assert cli.main(["styles"]) == 130
    assert time.perf_counter() - started < 4 and finished == ["cleanup ran"]
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back


# -- 4. a trace file cut by a crash ----------------------------------------------------------
def test_a_trace_whose_last_line_was_cut_reads_back_without_it(tmp_path):
    ledger = UsageLedger([QueryRecord(question=f"q{i}") for i in range(3)])
    path = ledger.to_jsonl(tmp_path / "trace.jsonl")
    whole = path.read_text()
    path.write_text(whole + whole.splitlines()[0][:40])  # a crash mid-line
    with pytest.warns(CutLineWarning, match="trace.jsonl:4"):
        back = UsageLedger.from_jsonl(path)
    assert [r.question for r in back.records] == ["q0", "q1", "q2"]
    path.write_text("not json\n" + whole)  # a broken line that is not the last: an error
    with pytest.raises(ValueError, match=r"trace\.jsonl:1"):
        UsageLedger.from_jsonl(path)


# -- 5. credentials ----------------------------------------------------------------------------
def _failing_served(url: str) -> ServedModel:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    return ServedModel(
        url,
        "m",
        transport=httpx.MockTransport(refuse),
        async_transport=httpx.MockTransport(refuse),
        max_retries=1,
        backoff_s=0.001,
    )


@pytest.mark.parametrize(
    "url",
    ["http://user:SECRET-KEY@127.0.0.1:9/v1", "http://127.0.0.1:9/v1?api_key=SECRET-KEY"],
)
def test_a_key_in_the_url_reaches_no_row_message_or_trace(tmp_path, url, capsys):
    model = _failing_served(url)
    with pytest.raises(ModelCallError) as caught:
        model.complete([Message("user", "2 + 2?")])
    assert "SECRET-KEY" not in str(caught.value) and "***" in str(caught.value)
    out = tmp_path / "rows.jsonl"
    items = [Item(id="0", question="What is 2 + 2?", answer="4")]
    run_bench(model, items, ["vanilla"], out, progress=False)
    text = out.read_text()
    assert "error" in text and "SECRET-KEY" not in text
    # a record made from any error text is redacted too
    record = QueryRecord(error=f"failed at {url}", calls=[CallRecord(error=f"POST {url}")])
    assert "SECRET-KEY" not in record.model_dump_json()


def test_served_models_take_their_key_from_the_environment(monkeypatch):
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json=OPENAI_OK)

    monkeypatch.setenv("OPENAI_API_KEY", "sk-default")
    monkeypatch.setenv("MY_GATEWAY_KEY", "sk-mine")
    for env, expected in [("OPENAI_API_KEY", "sk-default"), ("MY_GATEWAY_KEY", "sk-mine")]:
        model = ServedModel(
            "http://127.0.0.1:9/v1", "m", api_key_env=env, transport=httpx.MockTransport(answer)
        )
        model.complete([Message("user", "2 + 2?")])
        assert seen[-1] == f"Bearer {expected}"
    model = ServedModel(
        "http://127.0.0.1:9/v1", "m", api_key_env=None, transport=httpx.MockTransport(answer)
    )
    model.complete([Message("user", "2 + 2?")])
    assert seen[-1] is None
    args = cli.build_parser().parse_args(
        ["bench", "--data", "d", "--out", "o", "--api-key-env", "MY_GATEWAY_KEY"]
    )
    assert args.api_key_env == "MY_GATEWAY_KEY"


# -- 7. 8. the LangChain tracer: threads, and one hook for the process -----------------------
def _chain():
    return RunnableLambda(lambda q: q) | UsageFakeChatModel(responses=["[[8]]"])


def test_tracer_covers_threads_that_carry_the_blocks_context():
    chain = _chain()
    with TaleTracer() as tracer, ContextThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(chain.invoke, [f"question {i}?" for i in range(24)]))
    assert len(tracer.records) == 24
    # a bare pool does not carry the context (documented): the tracer is passed instead
    from concurrent.futures import ThreadPoolExecutor

    passed = TaleTracer()
    config = {"callbacks": [passed]}
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda q: chain.invoke(q, config=config), [f"q {i}?" for i in range(24)]))
    assert len(passed.records) == 24
    assert "ContextThreadPoolExecutor" in (TaleTracer.__enter__.__doc__ or "")


def test_ten_thousand_tracers_register_one_hook_and_each_sees_only_its_own_query():
    model = UsageFakeChatModel(responses=["[[8]]"])
    before = len(_configure_hooks)
    with TaleTracer():
        pass
    hooks = len(_configure_hooks)
    assert hooks <= before + 1 and registered_hooks() >= 1
    timings = []
    for i in range(10_000):
        with TaleTracer() as tracer:
            if i % 500 == 0:
                started = time.perf_counter()
                model.invoke(f"question {i}")
                timings.append(time.perf_counter() - started)
                assert len(tracer.records) == 1
    assert len(_configure_hooks) == hooks  # flat, whatever the number of tracers
    warm = timings[1:]  # the first invoke pays the imports
    print(
        f"invoke under a tracer: after 500 tracers {warm[0] * 1e3:.2f} ms, "
        f"after 9,500 {warm[-1] * 1e3:.2f} ms"
    )
    # nested blocks of two tracers: each sees the inner query, one more hook at most
    with TaleTracer() as outer, TaleTracer() as inner:
        model.invoke("nested")
    assert len(outer.records) == len(inner.records) == 1
    assert len(_configure_hooks) <= hooks + 1
    model.invoke("outside every block")
    assert len(outer.records) == 1


# -- 9. text-completion LLMs -----------------------------------------------------------------
def test_a_text_completion_llm_is_counted_not_zero():
    llm = FakeListLLM(responses=["Three plus five is eight. [[8]]"])
    with TaleTracer() as tracer:
        llm.invoke("What is 3 + 5? Think it through.")
    (record,) = tracer.records
    assert record.usage.source == "counted" and record.usage.counter
    assert record.usage.input_tokens >= 8 and record.usage.output_tokens >= 8


# -- 10. usage without numbers -----------------------------------------------------------------
OPENAI_OK = {
    "model": "m",
    "choices": [{"message": {"content": "3 + 5 = 8, so [[8]]"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 9},
}


def _served_reply(body: object) -> ServedModel:
    return ServedModel(
        "http://127.0.0.1:9/v1",
        "m",
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=body)),
        backoff_s=0.001,
    )


@pytest.mark.parametrize(
    "usage",
    [
        {"total_tokens": 40},
        {"prompt_tokens": None, "completion_tokens": None},
        {"prompt_tokens": 12, "completion_tokens": None},
        {"prompt_tokens": -3, "completion_tokens": 9},
        "forty",
    ],
)
def test_usage_without_both_numbers_is_counted(usage):
    reply = _served_reply({**OPENAI_OK, "usage": usage}).complete(
        [Message("user", "What is 3 + 5? Think it through.")]
    )
    assert reply.usage.source == "counted"
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0


def test_usage_with_both_numbers_is_the_providers():
    reply = _served_reply(OPENAI_OK).complete([Message("user", "3 + 5?")])
    assert (reply.usage.source, reply.usage.input_tokens, reply.usage.output_tokens) == (
        "provider",
        12,
        9,
    )


# -- 11. caps recorded on the estimator's call ----------------------------------------------
class OverlongEstimates(ScriptedModel):
    """Every reply claims 999 output tokens, whatever the cap."""

    def _reply(self, messages, max_tokens):
        reply = super()._reply(messages, max_tokens)
        usage = TokenUsage(input_tokens=20, output_tokens=999, source="provider")
        return reply.model_copy(update={"usage": usage})


def test_the_zero_shot_estimators_call_records_its_cap():
    model = OverlongEstimates(["[[60]]", "3 + 5 = 8 [[8]]"])
    pipeline = TalePipeline(model, estimator=ZeroShotEstimator(model), style="paper")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result = pipeline.solve("What is 3 + 5?")
    estimator_call = result.record.calls[0]
    assert estimator_call.role == "estimator" and model.calls[0][1] == 48
    assert estimator_call.cap == 48 and estimator_call.cap_exceeded


# -- 12. the Responses API's cut reply ----------------------------------------------------------
def test_a_responses_api_reply_cut_at_its_cap_reads_as_length():
    meta = {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    assert finish_reason_of(meta) == "length"
    assert finish_reason_of({"status": "completed", "incomplete_details": None}) is None


def test_chat_openai_responses_api_cut_is_forced_in_tale_runnable():
    langchain_openai = pytest.importorskip("langchain_openai")
    bodies: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        cut = len(bodies) == 1
        text = "Let me think: 3 plus" if cut else "[[8]]"
        return httpx.Response(200, json=_responses_reply(text, cut))

    llm = langchain_openai.ChatOpenAI(
        model="gpt-4o-mini",
        api_key="sk-test",
        use_responses_api=True,
        http_client=httpx.Client(transport=httpx.MockTransport(answer)),
    )
    reply = TaleRunnable(llm=llm, method="tale-fixed:40@paper+force1.5").invoke("3 + 5?")
    assert reply.response_metadata["tale"]["forced"] is True
    assert len(bodies) == 2 and bodies[0]["max_output_tokens"] == 60


def _responses_reply(text: str, cut: bool) -> dict:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 0,
        "model": "gpt-4o-mini",
        "status": "incomplete" if cut else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "incomplete" if cut else "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 30,
            "output_tokens": 60 if cut else 3,
            "total_tokens": 90 if cut else 33,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


# -- 13. the middleware's forcing call is counted without provider usage --------------------
def test_forcing_in_the_middleware_counts_both_calls_prompts_without_provider_usage():
    from langchain.agents import create_agent

    from langchain_tale.middleware import TaleBudgetMiddleware
    from langchain_tale.model_adapter import usage_from_reply

    cut = AIMessage(
        content="Let me work it out: 3 plus", response_metadata={"done_reason": "length"}
    )
    model = SilentScript(script=[cut, AIMessage(content="[[8]]")])
    middleware = TaleBudgetMiddleware(method="tale-fixed:40@paper+force1.5")
    system = "You are careful. " * 50
    agent = create_agent(model, tools=[], system_prompt=system, middleware=[middleware])
    result = agent.invoke({"messages": [HumanMessage("What is 3 + 5?")]})
    assert len(model.prompts) == 2
    expected = sum(
        (
            usage_from_reply(reply, prompt)
            for prompt, reply in zip(model.prompts, model.replies, strict=True)
        ),
        TokenUsage(),
    )
    reply = next(m for m in result["messages"] if isinstance(m, AIMessage))
    counted = TokenUsage.model_validate(reply.response_metadata["tale"]["counted_usage"])
    assert reply.response_metadata["tale"]["forced"] is True and reply.usage_metadata is None
    assert (counted.input_tokens, counted.output_tokens) == (
        expected.input_tokens,
        expected.output_tokens,
    )
    # the forcing call's prompt holds the whole step again: more than the first call's
    assert expected.input_tokens > 2 * usage_from_reply(cut, model.prompts[0]).input_tokens


class SilentScript(UsageFakeChatModel):
    """Plays ``script``, reports no usage, and keeps each call's prompt."""

    script: list[AIMessage] = Field(default_factory=list)
    prompts: list = Field(default_factory=list)
    replies: list = Field(default_factory=list)
    report_usage: bool = False

    def bind_tools(self, tools, **kwargs):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        from langchain_core.outputs import ChatGeneration, ChatResult

        reply = self.script[len(self.prompts)]
        self.prompts.append(list(messages))
        self.replies.append(reply)
        return ChatResult(generations=[ChatGeneration(message=reply)])


# -- 14. bad input: one line, exit 2 ---------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {"choices": [None]},
        {"choices": "nope"},
        ["a", "list"],
        {"choices": [{"message": "text"}]},
        {"choices": [{"message": {"content": 42}}]},
    ],
)
def test_a_malformed_served_reply_is_a_one_line_model_error(body):
    with pytest.raises(ModelCallError, match="malformed chat completion") as caught:
        _served_reply(body).complete([Message("user", "2 + 2?")])
    assert len(str(caught.value).splitlines()) == 1


def test_a_reply_whose_content_is_a_list_of_parts_is_read():
    body = {
        **OPENAI_OK,
        "choices": [
            {
                "message": {
                    "content": [{"type": "text", "text": "3 + 5 = 8, "}, {"text": "[[8]]"}]
                },
                "finish_reason": "stop",
            }
        ],
    }
    assert _served_reply(body).complete([Message("user", "3 + 5?")]).text == "3 + 5 = 8, [[8]]"


@pytest.mark.parametrize(
    "row",
    [
        {"method": "vanilla", "id": "1", "output_tokens": "lots"},
        {"method": "vanilla", "id": "1", "output_tokens": -5},
        {"method": "vanilla", "id": "1", "correct": "maybe", "calls": -1},
    ],
)
def test_bench_rows_with_wrong_types_are_one_line_and_exit_2(tmp_path, capsys, row):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(row) + "\n")
    argv = ["bench", "--data", str(_items_file(tmp_path)), "--out", str(rows)]
    assert cli.main([*argv, "--summary-only", "--methods", "vanilla"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rows.jsonl:1 is not a benchmark row" in err


def test_an_unknown_provider_is_one_line_and_exit_2(tmp_path, capsys):
    argv = ["ask", "What is 2 + 2?", "--model", "nosuchprovider:some-model"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nosuchprovider" in err


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_max_tokens_below_one_is_refused_before_anything_is_sent(capsys, value):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["ask", "What is 2 + 2?", "--max-tokens", value])
    assert stopped.value.code == 2
    assert "whole number of at least 1" in capsys.readouterr().err


# -- 15. cap_headroom checked when built ----------------------------------------------------
BAD_HEADROOMS = [math.nan, math.inf, 0, -1, 0.5]


@pytest.mark.parametrize("value", BAD_HEADROOMS)
def test_a_bad_cap_headroom_is_refused_by_every_entry_point_when_built(value):
    from llama_index.core.llms import MockLLM

    from langchain_tale.middleware import TaleBudgetMiddleware
    from llama_index_tale import TaleLLM, TaleQueryEngine

    with pytest.raises(ValueError, match="cap_headroom"):
        check_cap_headroom(value)
    with pytest.raises(ValueError, match="cap_headroom"):
        TalePipeline(ScriptedModel("[[8]]"), method="tale-fixed:40", cap_headroom=value)
    with pytest.raises(ValueError, match="cap_headroom"):
        TaleBudgetMiddleware(cap_headroom=value)
    with pytest.raises(ValueError):
        TaleRunnable(llm=UsageFakeChatModel(), cap_headroom=value)
    with pytest.raises(ValueError):
        TaleLLM(llm=MockLLM(), cap_headroom=value)
    with pytest.raises(ValueError, match="cap_headroom"):
        TaleQueryEngine(_engine(), cap_headroom=value)


def _engine():
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM

    index = VectorStoreIndex.from_documents(
        [Document(text="Tom has 3 apples.")], embed_model=MockEmbedding(embed_dim=8)
    )
    return index.as_query_engine(llm=MockLLM())


# -- 16. the calibration hint and Windows paths ---------------------------------------------
def test_ask_on_an_unmatched_served_model_says_the_command_that_works(monkeypatch, capsys):
    spec = "http://127.0.0.1:9/v1#weird-model-x"
    model = ScriptedModel("2 + 2 = 4 [[4]]", model_name="weird-model-x")
    monkeypatch.setattr(cli, "load_model", lambda *a, **k: model)
    assert cli.main(["ask", "What is 2 + 2?", "--model", spec]) == 0
    out = capsys.readouterr().out
    assert f"`tale calibrate --model {spec}`" in out
    assert "`tale calibrate --model weird-model-x`" not in out
    assert "URL#weird-model-x" in profile_for("weird-model-x").notes


def test_a_windows_path_finds_its_built_in_profile():
    path = r"C:\models\qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert model_identity(path) == model_identity("qwen2.5-coder-1.5b")
    assert profile_for(path).model == "local/qwen2.5-coder-1.5b"


def test_completions_still_validate_their_usage():
    with pytest.raises(ValueError):
        Completion(text="x", usage=TokenUsage(input_tokens=-1))


# -- 6. a LlamaIndex stream closed early keeps its cost -------------------------------------
def _word_stream_llm(**kwargs):
    """A LlamaIndex LLM that streams its answer word by word, as providers do: each chunk's
    content is the text so far, and no usage is reported until the last chunk."""
    from li_fakes import UsageMockLLM
    from llama_index.core.base.llms.types import (
        ChatMessage,
        ChatResponse,
        CompletionResponse,
        MessageRole,
    )
    from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback

    class WordStream(UsageMockLLM):
        def _chunks(self, messages):
            full = self._respond(messages)
            words = (full.message.content or "").split(" ")
            text = ""
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                text += piece
                last = i == len(words) - 1
                yield ChatResponse(
                    message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
                    delta=piece,
                    raw=full.raw if last else None,
                )

        @llm_chat_callback()
        def stream_chat(self, messages, **kw):
            return self._chunks(messages)

        @llm_chat_callback()
        async def astream_chat(self, messages, **kw):
            chunks = list(self._chunks(messages))

            async def gen():
                for chunk in chunks:
                    yield chunk

            return gen()

        def _completions(self, prompt):
            for chunk in self._chunks([ChatMessage(role=MessageRole.USER, content=prompt)]):
                yield CompletionResponse(
                    text=chunk.message.content or "", delta=chunk.delta, raw=chunk.raw
                )

        @llm_completion_callback()
        def stream_complete(self, prompt, formatted=False, **kw):
            return self._completions(prompt)

        @llm_completion_callback()
        async def astream_complete(self, prompt, formatted=False, **kw):
            chunks = list(self._completions(prompt))

            async def gen():
                for chunk in chunks:
                    yield chunk

            return gen()

    answer = " ".join(f"step{i}" for i in range(40)) + " [[8]]"
    return WordStream(answer=answer, **kwargs)


def test_a_bare_stream_closed_early_is_recorded_cut_short_with_what_streamed():
    from llama_index.core.base.llms.types import ChatMessage

    llm = _word_stream_llm()
    with TaleTracer_li() as tracer:
        for i, _ in enumerate(llm.stream_chat([ChatMessage(role="user", content="3 + 5?")])):
            if i == 4:
                break  # the temporary stream is closed here, as a disconnect closes it
        (record,) = tracer.records
    (call,) = record.calls
    assert call.cut_short and record.error is None and call.error is None
    assert call.usage.source == "counted" and 5 <= call.usage.output_tokens < 20


def test_a_query_stream_closed_early_keeps_its_call_and_budget():
    llm = _word_stream_llm()
    engine = TaleQueryEngine_li(
        _engine_with(llm, streaming=True), TaleQueryTransform_li(llm=llm, estimator="fixed:40")
    )
    with TaleTracer_li() as tracer:
        response = engine.query("How many apples does Tom have?")
        stream = response.response_gen
        for i, _ in enumerate(stream):
            if i == 3:
                break
        stream.close()  # what a server does when its client disconnects
        (record,) = tracer.records
    (call,) = record.calls
    assert record.budget == 40 and record.error is None and record.n_calls == 1
    assert call.cut_short and 0 < call.usage.output_tokens < 20


def test_a_query_stream_left_unread_is_recorded_at_detach_with_what_streamed():
    llm = _word_stream_llm()
    engine = _engine_with(llm, streaming=True)
    tracer = TaleTracer_li().attach()
    response = engine.query("How many apples does Tom have?")
    next(iter(response.response_gen))
    tracer.detach()  # the stream is still open: its call is kept, cut short
    (record,) = tracer.records
    (call,) = record.calls
    assert call.cut_short and call.usage.output_tokens > 0
    assert "still running" not in (record.error or "")


async def test_an_async_stream_closed_early_is_recorded_cut_short():
    from llama_index.core.base.llms.types import ChatMessage

    llm = _word_stream_llm()
    with TaleTracer_li() as tracer:
        stream = await llm.astream_chat([ChatMessage(role="user", content="3 + 5?")])
        async for i, _ in _aenumerate(stream):
            if i == 4:
                break
        await stream.aclose()
        (record,) = tracer.records
    (call,) = record.calls
    assert call.cut_short and 5 <= call.usage.output_tokens < 20


async def _aenumerate(stream):
    i = 0
    async for item in stream:
        yield i, item
        i += 1


# -- 11. the cap of a streamed aquery -------------------------------------------------------
async def test_a_streamed_aquery_with_cap_headroom_records_its_cap():
    llm = _word_stream_llm(max_tokens=256)
    engine = TaleQueryEngine_li(
        _engine_with(llm, streaming=True),
        TaleQueryTransform_li(llm=llm, estimator="fixed:40"),
        cap_headroom=1.5,
    )
    with TaleTracer_li() as tracer:
        response = await engine.aquery("How many apples does Tom have?")
        text = "".join([piece async for piece in response.async_response_gen()])
        (record,) = tracer.records
    assert text.endswith("[[8]]") and response.metadata["tale_cap"] == 60
    assert [c.cap for c in record.calls] == [60] and llm.max_tokens == 256


def _engine_with(llm, *, streaming: bool = False):
    from li_fakes import SpyEmbedding
    from llama_index.core import Document, VectorStoreIndex

    index = VectorStoreIndex.from_documents(
        [Document(text="Tom has 3 apples and buys 5 more.")], embed_model=SpyEmbedding(embed_dim=8)
    )
    return index.as_query_engine(llm=llm, streaming=streaming)


def test_a_streamed_querys_cap_does_not_leak_into_the_readers_context():
    from llama_index_tale.llm_adapter import current_call_cap

    llm = _word_stream_llm(max_tokens=256)
    engine = TaleQueryEngine_li(
        _engine_with(llm, streaming=True),
        TaleQueryTransform_li(llm=llm, estimator="fixed:40"),
        cap_headroom=1.5,
    )
    with TaleTracer_li() as tracer:
        stream = engine.query("How many apples does Tom have?").response_gen
        next(stream)
        assert current_call_cap() is None  # between steps the reader's context is its own
        rest = list(stream)
        (record,) = tracer.records
    assert rest and [c.cap for c in record.calls] == [60]
