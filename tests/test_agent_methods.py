"""One TALE per model, whatever the entry point: the agent adapters take ``method=`` and
default to the model's profile method, as ``TaleRunnable`` does; forcing applies to the
final-answer step only."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from lc_fakes import ToolCallingFake

from langchain_tale.middleware import TaleBudgetMiddleware
from tale_shared.methods import FOLLOW_UP, load_exemplars
from tale_shared.profiles import method_for
from tale_shared.resolve import resolve_method

QWEN = "local/qwen2.5-coder-1.5b"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _call(i: int) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[{"name": "add", "args": {"a": i, "b": 1}, "id": f"c{i}", "type": "tool_call"}],
    )


def _agent(middleware, script, model_name=QWEN):
    model = ToolCallingFake(script=script, model_name=model_name)
    agent = create_agent(model, tools=[add], system_prompt="Use the tool.", middleware=[middleware])
    return model, agent, {"messages": [HumanMessage("What is 2 + 1?")]}


def test_the_step_method_defaults_to_the_models_profile_method():
    step = resolve_method(QWEN, agent=True)
    profile_method = method_for(QWEN)
    assert step.method.spec == profile_method.spec
    assert step.style.name == profile_method.style
    assert step.cap_headroom == profile_method.force
    assert len(step.exemplars) == profile_method.exemplars
    explicit = resolve_method(
        QWEN, agent=True, estimator="fixed:40", style="words", cap_headroom=2.0
    )
    assert (explicit.style.name, explicit.cap_headroom) == ("words", 2.0)
    assert explicit.slot.estimator is not None and explicit.slot.estimator.spec == "fixed:40"


@pytest.mark.parametrize("bad", ["tale-heuristic+exit", "oracle@system", "nonsense"])
def test_methods_that_cannot_run_an_agent_step_are_refused_at_construction(bad):
    with pytest.raises(ValueError):
        TaleBudgetMiddleware(method=bad)


def test_the_default_middleware_runs_the_profile_method_on_the_embedded_model():
    assert method_for(QWEN).spec == "vanilla+ex3"  # the rule's choice on dev data
    model, agent, inputs = _agent(TaleBudgetMiddleware(), [_call(2), AIMessage("[[3]]")])
    agent.invoke(inputs)
    messages, kwargs = model.seen[0]
    assert messages[0].text == "Use the tool."  # no budget sentence
    shots = [m for m in messages if any(m.text == s.reasoning for s in load_exemplars())]
    assert len(shots) == 3  # the profile's exemplars
    task = [m for m in messages if m.type == "human"][-1]
    assert task.text == "What is 2 + 1?" and messages.index(task) > 1  # exemplars come first
    assert "max_tokens" not in kwargs  # no budget, so no cap


def test_a_budgeted_step_method_states_the_budget_in_its_style_and_caps_the_step():
    middleware = TaleBudgetMiddleware(method="tale-heuristic@system+ex3+force1.5")
    model, agent, inputs = _agent(middleware, [_call(2), AIMessage("[[3]]")])
    agent.invoke(inputs)
    messages, kwargs = model.seen[0]
    assert "shorter than" in messages[0].text  # the system style
    shot = load_exemplars()[0]
    assert any(m.text == shot.reasoning for m in messages)
    task = [m for m in messages if m.type == "human"][-1]
    assert task.text == "What is 2 + 1?" and messages.index(task) > 1  # exemplars come first
    assert kwargs.get("max_tokens")  # +force1.5: a hard cap


def test_a_method_without_a_budget_leaves_the_steps_alone():
    model, agent, inputs = _agent(TaleBudgetMiddleware(method="vanilla"), [AIMessage("[[3]]")])
    agent.invoke(inputs)
    messages, kwargs = model.seen[0]
    assert [m.text for m in messages] == ["Use the tool.", "What is 2 + 1?"]
    assert "max_tokens" not in kwargs


def _cut(text: str) -> AIMessage:
    return AIMessage(content=text, additional_kwargs={"finish_reason": "length"})


def test_a_final_answer_step_the_cap_cut_gets_its_answer_forced_with_both_calls_counted():
    middleware = TaleBudgetMiddleware(method="tale-fixed:40@system+force1.5", total_tokens=10_000)
    script = [_call(2), _cut("Now 2 + 1 is"), AIMessage("[[3]]")]
    model, agent, inputs = _agent(middleware, script)
    result = agent.invoke(inputs)
    final = result["messages"][-1]
    assert final.text == "Now 2 + 1 is\n\n[[3]]"
    assert final.response_metadata["tale"]["forced"] is True
    follow_up, kwargs = model.seen[-1]
    assert follow_up[-1].text == FOLLOW_UP and follow_up[-2].text == "Now 2 + 1 is"
    assert kwargs["max_tokens"] == 12 and not kwargs.get("tools")
    # the merged reply carries both calls' tokens, so the run's total has them
    assert final.usage_metadata["output_tokens"] == 5 + 1  # "Now 2 + 1 is", then "[[3]]"


def test_a_tool_calling_step_is_never_forced():
    middleware = TaleBudgetMiddleware(method="tale-fixed:40@system+force1.5")
    cut_call = _call(2).model_copy(update={"additional_kwargs": {"finish_reason": "length"}})
    model, agent, inputs = _agent(middleware, [cut_call, AIMessage("[[3]]")])
    agent.invoke(inputs)
    assert len(model.seen) == 2  # the tool step and the answer: no follow-up call
    assert all(m[-1].text != FOLLOW_UP for m, _ in model.seen)


async def test_forcing_works_the_same_through_ainvoke():
    middleware = TaleBudgetMiddleware(method="tale-fixed:40@system+force1.5")
    _, agent, inputs = _agent(middleware, [_cut("It is"), AIMessage("[[3]]")])
    result = await agent.ainvoke(inputs)
    assert result["messages"][-1].text == "It is\n\n[[3]]"


# -- LlamaIndex: TaleLLM resolves the same method ----------------------------------------------
def _cutting_llm(model: str = "gpt-4o-mini"):
    from li_fakes import UsageMockLLM

    class CuttingLLM(UsageMockLLM):
        """Stops at its cap mid-reasoning; answers a follow-up with the bracketed answer."""

        def _respond(self, messages):
            response = super()._respond(messages)
            if messages[-1].content == FOLLOW_UP:
                response.message.content = "[[8]]"
                return response
            response.message.content = "First 3 + 5 is"
            response.raw = {**(response.raw or {}), "model": model, "finish_reason": "length"}
            return response

    return CuttingLLM()


def test_tale_llm_defaults_to_the_wrapped_models_profile_method():
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    from llama_index_tale import TaleLLM

    inner = _cutting_llm()
    inner.answer = "3 + 5 = 8. [[8]]"
    llm = TaleLLM(llm=inner)
    assert llm.step.method.spec == method_for("gpt-4o-mini").spec
    step = TaleLLM(llm=inner, method="tale-fixed:40@system+ex2")
    step.chat([ChatMessage(role=MessageRole.USER, content="What is 3 + 5?")])
    sent = inner.seen[-1]
    assert "shorter than 40 tokens" in sent[0].content
    assert sent[2].content == load_exemplars()[0].reasoning  # exemplars before the task
    assert sent[-1].content == "What is 3 + 5?"


def test_tale_llm_on_a_method_without_a_budget_still_sends_its_exemplars():
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    from llama_index_tale import TaleLLM

    inner = _cutting_llm()
    inner.answer = "3 + 5 = 8. [[8]]"
    TaleLLM(llm=inner, method="vanilla+ex2").chat(
        [
            ChatMessage(role=MessageRole.SYSTEM, content="Use the tool."),
            ChatMessage(role=MessageRole.USER, content="What is 3 + 5?"),
        ]
    )
    sent = inner.seen[-1]
    assert sent[0].content == "Use the tool."  # no budget sentence
    shots = load_exemplars()[:2]
    assert [m.content for m in sent[2:5:2]] == [shots[0].reasoning, shots[1].reasoning]
    assert sent[1].content.startswith(shots[0].question)  # asked as the method asks
    assert sent[-1].content == "What is 3 + 5?"


def test_an_estimator_given_to_a_method_without_a_budget_is_worded_as_the_profile_says():
    step = resolve_method(
        QWEN, agent=True, estimator="fixed:40"
    )  # the profile method states no budget
    assert step.style.name == "system" and step.has_budget
    assert (
        resolve_method(QWEN, agent=True).style.name == "vanilla"
        and not resolve_method(QWEN, agent=True).has_budget
    )


def test_tale_llm_forces_the_answer_of_a_cut_final_step_and_counts_both_calls():
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    from llama_index_tale import TaleLLM

    inner = _cutting_llm()
    llm = TaleLLM(llm=inner, method="tale-fixed:40@system+force1.5")
    reply = llm.chat([ChatMessage(role=MessageRole.USER, content="What is 3 + 5?")])
    assert reply.message.content == "First 3 + 5 is\n\n[[8]]"
    assert inner.seen[-1][-1].content == FOLLOW_UP
    assert llm.spent.steps == 2  # the step and its forced answer, both in the run's totals


async def test_tale_llm_forces_in_a_stream_too():
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    from llama_index_tale import TaleLLM

    llm = TaleLLM(llm=_cutting_llm(), method="tale-fixed:40@system+force1.5")
    stream = await llm.astream_chat([ChatMessage(role=MessageRole.USER, content="3 + 5?")])
    chunks = [c async for c in stream]
    assert chunks[-1].message.content.endswith("[[8]]") and chunks[-1].delta == "\n\n[[8]]"


def test_tale_llm_without_force_leaves_a_cut_reply_alone():
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    from llama_index_tale import TaleLLM

    inner = _cutting_llm()
    llm = TaleLLM(llm=inner, method="tale-fixed:40@system")
    reply = llm.chat([ChatMessage(role=MessageRole.USER, content="What is 3 + 5?")])
    assert reply.message.content == "First 3 + 5 is" and len(inner.seen) == 1
