"""Tool-necessary agent tasks: generated from split templates, answerable only with the tools."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from langchain_core.messages import AIMessage
from lc_fakes import ToolCallingFake
from local_fakes import ScriptedLocal

from tale_shared import cli
from tale_shared.answers import is_correct
from tale_shared.research.agent_bench import (
    AgentRun,
    load_agent_rows,
    parse_agent_config,
    run_agent_bench,
)
from tale_shared.research.agent_tasks import (
    CATALOGUE,
    TOOL_SYSTEM_PROMPT,
    AgentTask,
    ToolSpec,
    generate_tasks,
    lookup_price,
    make_towns,
    search_documents,
    templates,
    towns,
)
from tale_shared.usage import CallRecord, QueryRecord, TokenUsage


def test_dev_and_heldout_tasks_come_from_disjoint_templates():
    dev, held = generate_tasks("dev", seed=3), generate_tasks("heldout", seed=3)
    assert {t.template for t in dev}.isdisjoint({t.template for t in held})
    assert len(held) >= 100 and len({t.id for t in held}) == len(held)
    assert {t.family for t in held} == {"catalogue", "documents"}
    assert generate_tasks("heldout", seed=3) == held  # seeded
    assert generate_tasks("heldout", seed=4) != held
    assert all(2 <= t.min_tool_calls <= 4 for t in dev + held)
    with pytest.raises(ValueError, match="split"):
        templates("test")  # type: ignore[arg-type]


def test_the_shipped_documents_are_the_generators():
    assert [t.text for t in towns()] == [t.text for t in make_towns()]


def _solve_with_tools(task: AgentTask) -> Decimal:
    """Answer ``task`` from tool outputs only, as an agent must: every number the question
    does not state comes from a look-up."""
    q = task.question
    if task.family == "catalogue":
        prices = {}
        for product in CATALOGUE:
            if product.name in q:
                line = lookup_price(product.name)
                prices[product.name] = Decimal(re.search(r"\$([\d.]+)", line)[1])  # type: ignore[index]
        assert prices, q
        return Decimal(len(prices))  # the number of look-ups this task needs
    found = {}
    for town in towns():
        if re.search(rf"\b{town.name}\b", q):
            doc = search_documents(f"{town.name} residents schools library bridges")
            assert doc.startswith(town.name)  # the town's own document comes first
            found[town.name] = doc
    assert found, q
    return Decimal(len(found))


@pytest.mark.parametrize("split", ["dev", "heldout"])
def test_every_fact_a_task_needs_is_only_in_a_tool(split):
    for task in generate_tasks(split, per_template=5, seed=1):
        lookups = _solve_with_tools(task)
        assert lookups + 1 >= task.min_tool_calls  # the look-ups and the arithmetic
        for product in CATALOGUE:  # no price is in the question
            if product.name in task.question:
                assert f"${product.price}" not in task.question
        for town in towns():
            if town.name in task.question:
                assert str(town.residents) not in task.question


def test_the_tools_answer_as_an_agent_asks_and_say_what_went_wrong():
    product = CATALOGUE[0]
    assert lookup_price(product.name.lower() + "s").startswith(product.name)  # plural, case
    assert lookup_price("a unicorn").startswith("no product")
    assert search_documents("zzz qqq") == "no document matches the query"


def test_a_catalogue_task_solved_through_the_langchain_runner_calls_its_own_tools(tmp_path):
    from langchain_tale.research.agent_runner import LangChainAgentRunner

    task = generate_tasks("dev", per_template=1, seed=2)[0]
    assert task.template == "buy-two"
    names = [p.name for p in CATALOGUE if p.name in task.question]
    calls = [
        AIMessage(
            content="",
            tool_calls=[
                {"name": "lookup_price", "args": {"product": n}, "id": f"c{i}", "type": "tool_call"}
            ],
        )
        for i, n in enumerate(names)
    ]
    runner = LangChainAgentRunner.__new__(LangChainAgentRunner)
    runner.recursion_limit = 12
    runner.model_name = "gpt-4o-mini"
    runner.chat = ToolCallingFake(script=[*calls, AIMessage(f"[[{task.answer}]]")])
    out = tmp_path / "rows.jsonl"
    assert run_agent_bench(runner, [task], [parse_agent_config("none")], out, progress=False) == 1
    (row,) = load_agent_rows(out)
    assert row.error is None and row.correct and row.tool_calls == 2
    assert row.template == "buy-two"
    assert [t.split("(")[0] for t in row.tool_trace] == ["lookup_price", "lookup_price"]
    assert all(f"-> {n}:" in t for t, n in zip(row.tool_trace, names, strict=True))
    prompts = runner.chat.seen
    assert prompts[0][0][0].text == TOOL_SYSTEM_PROMPT
    tool_results = [m.text for m in prompts[-1][0] if m.type == "tool"]
    assert [r.split(":")[0] for r in tool_results] == names  # the catalogue answered


class TaskRunner:
    """Records what each run was given; calls a tool on half the tasks."""

    framework = "fake"
    model_name = "local/fake"

    def __init__(self) -> None:
        self.given: list[tuple[str, list[str], str | None]] = []

    def run(self, config, question, tools=None, system_prompt=None, demo=None) -> AgentRun:
        self.given.append((question, [t.name for t in tools or []], system_prompt))
        assert all(isinstance(t, ToolSpec) for t in tools or [])
        usage = TokenUsage(input_tokens=10, output_tokens=5, source="provider")
        record = QueryRecord(question=question, calls=[CallRecord(role="answer", usage=usage)])
        called = len(self.given) % 2
        return AgentRun("[[0]]", record, steps=1 + called, tool_calls=called, seconds=0.01)


def test_the_cli_runs_heldout_tasks_and_reports_how_many_runs_called_a_tool(tmp_path, monkeypatch):
    from tale_shared.research import agent_bench

    runner = TaskRunner()
    options: list[dict] = []

    def make(framework, model, **kw):
        options.append({"framework": framework, **kw})
        return runner

    monkeypatch.setattr(agent_bench, "agent_runner", make)
    out, table = tmp_path / "heldout.jsonl", tmp_path / "heldout.md"
    argv = ["agent-bench", "--tasks", "heldout", "--per-template", "2", "--configs", "none"]
    assert cli.main([*argv, "--out", str(out), "--table", str(table)]) == 0
    assert len(runner.given) == 2 * len(templates("heldout"))
    assert {tuple(tools) for _, tools, _ in runner.given} == {
        ("lookup_price", "calculator"),
        ("search_documents", "calculator"),
    }
    assert {prompt for _, _, prompt in runner.given} == {TOOL_SYSTEM_PROMPT}
    assert "| 50% |" in table.read_text()  # runs with a tool call
    rows = load_agent_rows(out)
    assert {r.template for r in rows} == {t.name for t in templates("heldout")}
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "a", "question": "q?", "answer": "1"}) + "\n")
    assert cli.main([*argv, "--data", str(data), "--out", str(out)]) == 2  # one or the other
    assert "agent" not in options[0]  # LangChain's runner takes no --llama-agent
    li = ["--framework", "llama-index", "--llama-agent", "function", "--summary-only"]
    assert cli.main([*argv, *li, "--out", str(out)]) == 0
    run_li = ["--framework", "llama-index", "--llama-agent", "function"]
    run_li += ["--configs", "tool-first", "--baseline", "tool-first"]
    assert cli.main([*argv[:-2], *run_li, "--out", str(tmp_path / "li.jsonl")]) == 0
    assert options[-1]["framework"] == "llama-index" and options[-1]["agent"] == "function"


def test_gold_answers_read_as_the_grader_reads_them():
    for task in generate_tasks("heldout", per_template=10, seed=0):
        assert is_correct(f"So the answer is [[{task.answer}]].", task.answer)
        assert "." not in task.answer or not task.answer.endswith("0")


def test_a_documents_task_runs_through_llama_index_function_agent_on_the_embedded_llm(tmp_path):
    """``--llama-agent function``: FunctionAgent on LocalLlamaLLM, the task's own tools."""
    from llama_index_tale import LocalLlamaLLM
    from llama_index_tale.research.agent_runner import LlamaIndexAgentRunner

    task = next(t for t in generate_tasks("dev", per_template=1, seed=2) if t.family == "documents")
    names = [t.name for t in towns() if re.search(rf"\b{t.name}\b", task.question)]

    def reply(k: int) -> str:
        if k < len(names):
            call = {"name": "search_documents", "arguments": {"query": names[k]}}
            return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"
        return f"The answer is [[{task.answer}]]."

    local = ScriptedLocal(reply)
    runner = LlamaIndexAgentRunner.__new__(LlamaIndexAgentRunner)
    runner.llm = LocalLlamaLLM(model="qwen2.5-coder-1.5b")
    runner.llm._local = local
    runner.model_name, runner.max_iterations, runner.agent = "local/fake", 6, "function"
    out = tmp_path / "rows.jsonl"
    assert run_agent_bench(runner, [task], [parse_agent_config("none")], out, progress=False) == 1
    (row,) = load_agent_rows(out)
    assert row.error is None and row.correct and row.tool_calls == len(names) == 2
    assert [t.split(" -> ")[0] for t in row.tool_trace] == [
        f"search_documents({{'query': '{n}'}})" for n in names
    ]
    responses = [m.content for m in local.prompts[-1] if "<tool_response>" in m.content]
    assert [r.split("\n")[1].split(" is a town")[0] for r in responses] == names
    assert local.prompts[0][0].content.startswith(TOOL_SYSTEM_PROMPT)


def test_second_round_templates_answer_from_the_tools_own_numbers():
    from tale_shared.research.agent_tasks import FRESH_HELDOUT

    assert set(FRESH_HELDOUT) <= {t.name for t in templates("heldout")}
    tasks = generate_tasks("dev", per_template=3, seed=5) + generate_tasks(
        "heldout", per_template=3, seed=5
    )
    price = {p.name: p.price for p in CATALOGUE}
    town = {t.name: t for t in towns()}
    checked = 0
    for task in tasks:
        nums = [Decimal(n) for n in re.findall(r"\d+(?:\.\d+)?", task.question)]
        named = [n for n in price if n in task.question]
        named.sort(key=task.question.index)
        places = sorted((n for n in town if n in task.question), key=task.question.index)
        if task.template == "gift-boxes":  # one A and k Bs a box, n boxes
            expected = nums[1] * (price[named[0]] + nums[0] * price[named[1]])
        elif task.template == "teachers":
            expected = nums[0] * sum(town[p].schools for p in places)
        elif task.template == "refund":  # bought n, returned m, one B
            expected = (nums[0] - nums[1]) * price[named[0]] + price[named[1]]
        elif task.template == "bridge-lamps":
            expected = nums[0] * town[places[0]].bridges + nums[1] * town[places[1]].bridges
        else:
            continue
        checked += 1
        assert Decimal(task.answer) == expected, task.question
    assert checked == 12
