"""Worked tool-use examples and agents whose every reply is a call: the levers that make the
embedded model use its tools (issue 40), in the core and both frameworks."""

from __future__ import annotations

import json

import pytest
from local_fakes import ScriptedLocal

from tale_shared.local import tool_layout
from tale_shared.research.agent_bench import load_agent_rows, parse_agent_config, run_agent_bench
from tale_shared.research.agent_tasks import (
    CATALOGUE,
    DEMOS,
    TOOL_SYSTEM_PROMPT,
    generate_tasks,
    lookup_price,
    search_documents,
    tool_system_prompt,
    towns,
)
from tale_shared.tool_demo import ANSWER_TOOL, ToolCall, ToolDemo, answer_text

DEMO = ToolDemo(
    question="Tom buys 3 Flimdor cups. How many dollars does he pay?",
    steps=(
        (
            ToolCall("lookup_price", {"product": "Flimdor cup"}, "Flimdor cup: $4.25 each"),
            ToolCall("lookup_price", {"product": "Gastrel pen"}, "Gastrel pen: $1.00 each"),
        ),
        (ToolCall("calculator", {"expression": "3 * 4.25"}, "12.75"),),
    ),
    answer="12.75",
)
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
    },
}


# -- the core ------------------------------------------------------------------------------------
def test_a_demo_says_what_it_calls_and_refuses_to_be_empty():
    assert DEMO.tool_names == ("lookup_price", "calculator") and DEMO.calls_made == 3
    assert [[i for i, _ in step] for step in DEMO.steps_with_ids()] == [
        ["demo_1", "demo_2"],
        ["demo_3"],
    ]
    assert DEMO.final_text == "[[12.75]]" and DEMO.answer_arguments() == {"answer": 12.75}
    eight = ToolDemo("q?", ((ToolCall("calculator", {}, "8"),),), "8")
    assert eight.answer_arguments() == {"answer": 8}  # a whole number stays whole
    assert ToolDemo("q?", DEMO.steps, "n/a").answer_arguments() == {"answer": "n/a"}
    with pytest.raises(ValueError, match="question"):
        ToolDemo(" ", DEMO.steps, "1")
    with pytest.raises(ValueError, match="at least one call"):
        ToolDemo("q?", ((),), "1")
    with pytest.raises(ValueError, match="final answer"):
        ToolDemo("q?", DEMO.steps, "")
    DEMO.check_tools(["calculator", "lookup_price", "other"])
    with pytest.raises(ValueError, match=r"calls \['lookup_price'\].*agent's own tools"):
        DEMO.check_tools(["calculator"])
    assert answer_text(183.25) == "[[183.25]]" and answer_text(18.0) == "[[18]]"


def test_the_benchmarks_demos_use_each_familys_tools_and_facts_in_no_source():
    for family, demo in DEMOS.items():
        task = next(t for t in generate_tasks("dev", per_template=1, seed=0) if t.family == family)
        demo.check_tools(task.tools)
        assert demo.calls_made >= 3
        for step in demo.steps:
            for call in step:
                if call.name == "lookup_price":  # a made-up product: the catalogue knows none
                    assert "no product" in lookup_price(call.arguments["product"])
                if call.name == "search_documents":
                    town = call.arguments["query"].split()[0]
                    assert town not in {t.name for t in towns()}
                    assert town not in search_documents(call.arguments["query"])
    assert not any(p.name.split()[0] in str(DEMOS) for p in CATALOGUE)
    assert tool_system_prompt() == TOOL_SYSTEM_PROMPT
    assert tool_system_prompt(answer_tool=True).endswith(f"give it with the {ANSWER_TOOL} tool.")


def test_several_calls_in_one_forced_reply_and_the_first_reply_of_a_turn():
    schema = tool_layout.call_schema([ADD], several=True)
    assert schema["type"] == "array" and schema["minItems"] == 1
    assert schema["items"] == tool_layout.call_schema([ADD])
    two = '[{"name": "add", "arguments": {"a": 1}}, {"name": "add", "arguments": {"a": 2}}]'
    assert tool_layout.parse_tool_calls(two, ["add"]) == (
        "",
        [("add", {"a": 1}), ("add", {"a": 2})],
    )
    # an array with one unknown tool is not read as calls: nothing is silently dropped
    bad = '[{"name": "add", "arguments": {}}, {"name": "rm", "arguments": {}}]'
    assert tool_layout.parse_tool_calls(bad, ["add"]) == (bad, [])
    # a reply cut off by its token limit keeps the calls it completed; the rest stays text
    cut = '[{"name": "add", "arguments": {"a": 1}}, {"name": "add", "argu'
    assert tool_layout.parse_tool_calls(cut, ["add"]) == (
        '{"name": "add", "argu',
        [("add", {"a": 1})],
    )
    assert tool_layout.first_reply_of_turn(["system", "user", "assistant", "tool", "user"])
    assert not tool_layout.first_reply_of_turn(["user", "assistant", "tool", "assistant"])


def test_a_planned_forced_reply_says_its_plan_then_calls():
    import json

    from llama_cpp import LlamaGrammar

    schema = tool_layout.call_schema([ADD], several=True, plan=True)
    assert list(schema["properties"]) == ["plan", "calls"]  # the plan is written first
    assert schema["properties"]["plan"]["maxLength"] == tool_layout.PLAN_CHARS
    assert schema["properties"]["calls"]["maxItems"] == tool_layout.MAX_CALLS_PER_REPLY
    assert tool_layout.call_schema([ADD], plan=True)["properties"]["calls"]["maxItems"] == 1
    LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)  # llama.cpp reads it
    call = {"name": "add", "arguments": {"a": 1}}
    reply = json.dumps({"plan": "Kaldale has 9772 residents; now subtract.", "calls": [call]})
    assert tool_layout.parse_tool_calls(reply, ["add"]) == (
        "Kaldale has 9772 residents; now subtract.",
        [("add", {"a": 1})],
    )
    # a plan with a call to an unknown tool, or cut off, is not read as calls: it stays text
    unknown = '{"plan": "p", "calls": [{"name": "rm", "arguments": {}}]}'
    assert tool_layout.parse_tool_calls(unknown, ["add"]) == (unknown, [])
    cut = '{"plan": "I will add the two numbers and'
    assert tool_layout.parse_tool_calls(cut, ["add"]) == (cut, [])


# -- LangChain -----------------------------------------------------------------------------------
def _call(name: str, **args) -> dict:
    return {"name": name, "arguments": args}


def test_langchain_demo_messages_are_an_earlier_exchange_with_tool_calls():
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    from langchain_tale import tool_demo_messages

    plain = tool_demo_messages(DEMO)
    assert [type(m) for m in plain] == [
        HumanMessage,
        AIMessage,
        ToolMessage,
        ToolMessage,
        AIMessage,
        ToolMessage,
        AIMessage,
    ]
    assert [c["name"] for c in plain[1].tool_calls] == ["lookup_price", "lookup_price"]
    assert [m.tool_call_id for m in plain if isinstance(m, ToolMessage)] == [
        "demo_1",
        "demo_2",
        "demo_3",
    ]
    assert plain[-1].text == "[[12.75]]"
    answered = tool_demo_messages(DEMO, answer_tool="final_answer")
    assert answered[-2].tool_calls[0]["name"] == "final_answer"
    assert answered[-2].tool_calls[0]["args"] == {"answer": 12.75}
    assert isinstance(answered[-1], ToolMessage)


def test_chat_local_llama_reads_a_demo_in_its_layout_and_forces_the_new_turns_first_call():
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import tool

    from langchain_tale import ChatLocalLlama, tool_demo_messages

    @tool
    def lookup_price(product: str) -> str:
        """Look up a price."""
        return "x"

    @tool
    def calculator(expression: str) -> str:
        """Evaluate arithmetic."""
        return "x"

    llm = ChatLocalLlama(model="qwen2.5-coder-1.5b", tool_first=True)
    two = json.dumps([_call("lookup_price", product="A"), _call("lookup_price", product="B")])
    llm._local = local = ScriptedLocal([two, two])
    bound = llm.bind_tools([lookup_price, calculator])
    reply = bound.invoke([*tool_demo_messages(DEMO), HumanMessage("What do 2 A cost?")])
    assert [c["args"]["product"] for c in reply.tool_calls] == ["A", "B"]
    sent, options = local.calls[-1]
    # the demo's tool results do not count: the new question's first reply is forced ...
    assert options["json_schema"]["type"] == "array"
    # ... and the demo reaches the model as the calls and responses it was trained on
    text = "\n".join(m.content for m in sent if m.role != "system")
    assert text.count("<tool_call>") == 3 and text.count("<tool_response>") == 3
    # one call a reply when the caller says so
    llm.bind_tools([lookup_price], parallel_tool_calls=False).invoke("What do 2 A cost?")
    assert "anyOf" in local.calls[-1][1]["json_schema"]


def test_the_langchain_runner_with_demo_and_answer_tool_forces_every_reply_and_grades(tmp_path):
    from langchain_tale import ChatLocalLlama
    from langchain_tale.research.agent_runner import LangChainAgentRunner

    task = generate_tasks("dev", per_template=1, seed=2)[0]
    names = [p.name for p in CATALOGUE if p.name in task.question]
    replies = [
        json.dumps([_call("lookup_price", product=n) for n in names]),
        json.dumps([_call("calculator", expression="1 + 1")]),
        json.dumps([_call(ANSWER_TOOL, answer=float(task.answer))]),
    ]
    runner = LangChainAgentRunner.__new__(LangChainAgentRunner)
    runner.recursion_limit, runner.model_name = 12, "local/fake"
    runner.chat = ChatLocalLlama(model="qwen2.5-coder-1.5b")
    runner.chat._local = local = ScriptedLocal(replies)
    out = tmp_path / "rows.jsonl"
    config = parse_agent_config("demo&answer-tool")
    assert run_agent_bench(runner, [task], [config], out, progress=False) == 1
    (row,) = load_agent_rows(out)
    assert row.error is None and row.correct, row
    assert row.tool_calls == 3 and row.steps == 3  # the answer call is not a tool call
    # the step table counts the answer call's step as the final answer
    assert [s.tool_calls for s in row.step_log] == [2, 1, 0]
    assert all("json_schema" in kw for _, kw in local.calls)  # every reply is a call
    first = local.calls[0][0]
    assert first[0].content.startswith(tool_system_prompt(answer_tool=True))
    assert DEMOS["catalogue"].question in first[1].content  # the demo, then the question
    assert first[-1].content == task.question


# -- LlamaIndex ----------------------------------------------------------------------------------
def test_llama_index_demo_history_renders_in_the_embedded_llms_layout():
    from llama_index.core.base.llms.types import MessageRole, ToolCallBlock
    from llama_index.core.tools import FunctionTool

    from llama_index_tale import LocalLlamaLLM, tool_demo_history

    history = tool_demo_history(DEMO, answer_tool=ANSWER_TOOL)
    assert [m.role for m in history[:4]] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.TOOL,
        MessageRole.TOOL,
    ]
    calls = [b for b in history[1].blocks if isinstance(b, ToolCallBlock)]
    assert [b.tool_call_id for b in calls] == ["demo_1", "demo_2"]
    assert history[-1].content == "[[12.75]]"
    assert tool_demo_history(DEMO)[-1].content == "[[12.75]]"

    def lookup_price(product: str) -> str:
        """Look up a price."""
        return "x"

    llm = LocalLlamaLLM(model="qwen2.5-coder-1.5b", tool_required=True)
    llm._local = local = ScriptedLocal([json.dumps([_call("lookup_price", product="A")])] * 2)
    response = llm.chat_with_tools(
        [FunctionTool.from_defaults(fn=lookup_price)], "What is A?", chat_history=history
    )
    assert llm.get_tool_calls_from_response(response)[0].tool_kwargs == {"product": "A"}
    sent, options = local.calls[-1]
    assert "json_schema" in options
    text = "\n".join(m.content for m in sent if m.role != "system")
    assert text.count("<tool_call>") == 4 and '"final_answer"' in text


def test_the_llama_index_runner_finishes_through_the_answer_tool(tmp_path):
    from llama_index_tale import LocalLlamaLLM
    from llama_index_tale.research.agent_runner import LlamaIndexAgentRunner

    task = next(t for t in generate_tasks("dev", per_template=1, seed=2) if t.family == "documents")
    replies = [
        json.dumps([_call("search_documents", query="a"), _call("search_documents", query="b")]),
        json.dumps([_call(ANSWER_TOOL, answer=float(task.answer))]),
    ]
    runner = LlamaIndexAgentRunner.__new__(LlamaIndexAgentRunner)
    runner.llm = LocalLlamaLLM(model="qwen2.5-coder-1.5b")
    runner.llm._local = local = ScriptedLocal(replies)
    runner.model_name, runner.max_iterations, runner.agent = "local/fake", 6, "function"
    out = tmp_path / "rows.jsonl"
    config = parse_agent_config("demo&answer-tool")
    assert run_agent_bench(runner, [task], [config], out, progress=False) == 1
    (row,) = load_agent_rows(out)
    assert row.error is None and row.correct and row.text == answer_text(float(task.answer))
    assert row.tool_calls == 2  # the two searches; the answer call ends the run
    assert row.step_log[-1].tool_calls == 0  # the answer call's step is the final answer
    assert all("json_schema" in kw for _, kw in local.calls)
    assert DEMOS["documents"].question in "\n".join(m.content for m in local.calls[0][0])
    runner.agent = "react"  # ReAct's text protocol has no forced calls: said at once
    react = tmp_path / "react.jsonl"
    run_agent_bench(runner, [task], [config], react, progress=False)
    assert "--llama-agent function" in (load_agent_rows(react)[0].error or "")
