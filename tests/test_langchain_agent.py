import json
import warnings

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from lc_fakes import ToolCallingFake
from local_fakes import ADD_CALL, ScriptedLocal

from langchain_tale.middleware import TaleBudgetExceededError, TaleBudgetMiddleware


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _script(n_tool_calls: int) -> list[AIMessage]:
    calls = [
        AIMessage(
            content="",
            tool_calls=[
                {"name": "add", "args": {"a": i, "b": 1}, "id": f"c{i}", "type": "tool_call"}
            ],
        )
        for i in range(n_tool_calls)
    ]
    return [*calls, AIMessage(content="The answer is [[3]].")]


def _run(middleware, n_tool_calls=1, ainvoke=False):
    model = ToolCallingFake(script=_script(n_tool_calls))
    agent = create_agent(
        model, tools=[add], system_prompt="You are a calculator.", middleware=[middleware]
    )
    inputs = {"messages": [HumanMessage("What is 2 + 1? Use the tool.")]}
    return model, agent, inputs


def test_each_step_gets_a_budget_in_the_system_message():
    model, agent, inputs = _run(TaleBudgetMiddleware(estimator="fixed:80", style="system"))
    result = agent.invoke(inputs)
    assert result["messages"][-1].text == "The answer is [[3]]."
    assert len(model.seen) == 2
    for messages, _ in model.seen:
        assert messages[0].type == "system"
        assert messages[0].text.startswith("You are a calculator.")
        assert "shorter than 80 tokens" in messages[0].text


def test_a_model_with_no_profile_gets_the_papers_wording_in_the_task_as_tale_runnable_does():
    model, agent, inputs = _run(TaleBudgetMiddleware(estimator="fixed:80"))
    agent.invoke(inputs)
    for messages, _ in model.seen:
        assert messages[0].text == "You are a calculator."
        task = next(m for m in messages if m.type == "human")
        assert task.text.endswith("Let's think step by step and use less than 80 tokens.")


def test_step_budget_shrinks_to_the_tokens_left_and_caps_max_tokens():
    model, agent, inputs = _run(
        TaleBudgetMiddleware(
            estimator="fixed:500", total_tokens=10_000, cap_headroom=1.2, style="system"
        )
    )
    agent.invoke(inputs)
    (first, k1), (_, k2) = model.seen
    assert "shorter than 500 tokens" in first[0].text and k1["max_tokens"] == 600
    assert k2["max_tokens"] == 600


def test_total_budget_end_stops_with_a_message():
    model, agent, inputs = _run(
        TaleBudgetMiddleware(estimator="fixed:50", total_tokens=20), n_tool_calls=5
    )
    result = agent.invoke(inputs)
    assert "token budget spent" in result["messages"][-1].text
    assert len(model.seen) == 1  # the first call spent more than 20 tokens


def test_total_budget_error_raises_the_specific_exception():
    _, agent, inputs = _run(TaleBudgetMiddleware(total_tokens=20, exit_behavior="error"), 5)
    with pytest.raises(TaleBudgetExceededError) as info:
        agent.invoke(inputs)
    assert info.value.tokens > 20


def test_total_budget_warn_goes_on():
    _, agent, inputs = _run(TaleBudgetMiddleware(total_tokens=20, exit_behavior="warn"), 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = agent.invoke(inputs)
    assert result["messages"][-1].text == "The answer is [[3]]."
    assert any("token budget spent" in str(w.message) for w in caught)


def test_usd_budget_counts_real_cost():
    model, agent, inputs = _run(TaleBudgetMiddleware(total_usd=1e-9), 3)
    result = agent.invoke(inputs)
    assert "USD budget spent" in result["messages"][-1].text and len(model.seen) == 1


async def test_async_agent():
    _, agent, inputs = _run(TaleBudgetMiddleware(estimator="heuristic", total_tokens=20), 5)
    result = await agent.ainvoke(inputs)
    assert "token budget spent" in result["messages"][-1].text


async def test_stream_events_still_work():
    _, agent, inputs = _run(TaleBudgetMiddleware(estimator="fixed:60"))
    kinds = {e["event"] async for e in agent.astream_events(inputs, version="v2")}
    assert {"on_chat_model_start", "on_tool_start"} <= kinds


def test_zero_shot_uses_the_agents_model_and_bad_settings_are_refused():
    model, agent, inputs = _run(TaleBudgetMiddleware(estimator="zero-shot"))
    agent.invoke(inputs)
    assert any("estimate the minimum number of tokens" in m[-1].text for m, _ in model.seen)
    with pytest.raises(ValueError):
        TaleBudgetMiddleware(exit_behavior="explode")
    with pytest.raises(ValueError):
        TaleBudgetMiddleware(total_tokens=0)


def test_a_user_placed_style_goes_into_the_last_human_message():
    model, agent, inputs = _run(TaleBudgetMiddleware(estimator="fixed:80", style="words"))
    agent.invoke(inputs)
    for messages, _ in model.seen:
        assert "at most 60 words" not in messages[0].text  # not the system message
        humans = [m for m in messages if m.type == "human"]
        assert humans[-1].text.endswith("in at most 60 words.")


def test_nested_tale_usage_blocks_both_see_the_inner_queries():
    from lc_fakes import UsageFakeChatModel

    from langchain_tale import TaleRunnable, TaleTracer

    runnable = TaleRunnable(llm=UsageFakeChatModel(), estimator="fixed:50")
    with TaleTracer() as outer:
        runnable.invoke("What is 1 + 1?")
        with TaleTracer() as inner:
            runnable.invoke("What is 2 + 2?")
    assert len(inner.records) == 1 and len(outer.records) == 2


def test_the_embedded_chat_model_calls_tools_in_qwens_layout():
    from langchain_tale import ChatLocalLlama
    from langchain_tale._tools import parse_tool_calls

    local = ScriptedLocal(
        [
            "Let me add.\n<tool_call>\n"
            '{"name": "add", "arguments": {"a": 2, "b": 1}}\n</tool_call>',
            "The answer is [[3]].",
        ]
    )
    llm = ChatLocalLlama(model="qwen2.5-coder-1.5b")
    llm._local = local
    agent = create_agent(llm, tools=[add], system_prompt="You are a calculator.")
    result = agent.invoke({"messages": [HumanMessage("What is 2 + 1? Use the tool.")]})
    assert result["messages"][-1].text == "The answer is [[3]]."
    call = result["messages"][1]
    assert call.tool_calls[0]["name"] == "add" and call.tool_calls[0]["args"] == {"a": 2, "b": 1}
    assert result["messages"][2].text == "3"  # the tool ran
    first, second = local.prompts
    assert first[0].role == "system" and first[0].content.startswith("You are a calculator.")
    assert '"name": "add"' in first[0].content and "<tools>" in first[0].content
    assert (
        second[-1].role == "user" and second[-1].content == "<tool_response>\n3\n</tool_response>"
    )
    assert "<tool_call>" in second[-2].content  # the earlier call, as the model wrote it
    # an unreadable block stays in the text rather than vanish
    text, calls = parse_tool_calls("<tool_call>{not json}</tool_call>")
    assert calls == [] and text == "<tool_call>{not json}</tool_call>"
    # llama.cpp drops Qwen's <tool_call> special tokens: a bare call line of a known tool
    text, calls = parse_tool_calls('{"name": "add", "arguments": {"a": 1, "b": 2}}', ["add"])
    assert text == "" and calls[0]["args"] == {"a": 1, "b": 2}
    assert parse_tool_calls('{"name": "rm", "arguments": {}}', ["add"])[1] == []
    fenced = 'Sure.\n```json\n{\n  "name": "add",\n  "arguments": {"a": 4, "b": 5}\n}\n```'
    text, calls = parse_tool_calls(fenced, ["add"])
    assert text == "Sure." and calls[0]["args"] == {"a": 4, "b": 5}


def test_tool_choice_reaches_the_embedded_model_as_a_grammar_only_when_forced():
    from langchain_tale import ChatLocalLlama

    llm = ChatLocalLlama(model="qwen2.5-coder-1.5b")
    llm._local = local = ScriptedLocal(then=ADD_CALL)
    assert llm.bind_tools([add], tool_choice="required").invoke("Hi").tool_calls[0]["name"] == "add"
    schema = local.kwargs[-1]["json_schema"]["items"]  # one call or several (an array)
    assert [b["properties"]["name"] for b in schema["anyOf"]] == [{"const": "add"}]
    llm.bind_tools([add]).invoke("Hi")  # auto: the model chooses, no grammar
    assert "json_schema" not in local.kwargs[-1]
    plain = llm.bind_tools([add], tool_choice="none").invoke("Hi")  # no tools sent at all
    assert "json_schema" not in local.kwargs[-1] and plain.tool_calls == []
    with pytest.raises(ValueError, match="no tool named 'sub'"):
        llm.bind_tools([add], tool_choice="sub")


def test_tool_first_forces_a_call_until_a_tool_has_answered():
    from langchain_core.messages import AIMessage, ToolMessage

    from langchain_tale import ChatLocalLlama

    llm = ChatLocalLlama(model="qwen2.5-coder-1.5b", tool_first=True)
    llm._local = local = ScriptedLocal(then=ADD_CALL)
    bound = llm.bind_tools([add])
    bound.invoke("What is 1 + 2?")
    assert "json_schema" in local.kwargs[-1]  # no tool has answered yet: a call is forced
    call = {"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}
    bound.invoke(
        [
            HumanMessage("What is 1 + 2?"),
            AIMessage("", tool_calls=[call]),
            ToolMessage("3", tool_call_id="c1"),
        ]
    )
    assert "json_schema" not in local.kwargs[-1]  # the model may answer now


def test_plan_calls_makes_a_forced_reply_plan_first_and_keeps_the_plan_as_text():
    from langchain_tale import ChatLocalLlama

    planned = json.dumps({"plan": "1 + 2 needs the add tool.", "calls": [json.loads(ADD_CALL)]})
    llm = ChatLocalLlama(model="qwen2.5-coder-1.5b", plan_calls=True)
    llm._local = local = ScriptedLocal(then=planned)
    reply = llm.bind_tools([add], tool_choice="any").invoke("What is 1 + 2?")
    assert local.kwargs[-1]["json_schema"]["required"] == ["plan", "calls"]
    assert reply.text == "1 + 2 needs the add tool."
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("add", {"a": 1, "b": 2})]
    llm.bind_tools([add]).invoke("What is 1 + 2?")  # not forced: no grammar, no plan
    assert "json_schema" not in local.kwargs[-1]
