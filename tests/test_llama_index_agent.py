import asyncio
import json
import warnings

import pytest
from li_fakes import UsageMockLLM
from llama_index.core.agent.workflow import AgentStream, FunctionAgent, ReActAgent, ToolCallResult
from llama_index.core.base.llms.types import (
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.llms import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool
from local_fakes import ADD_CALL, ScriptedLocal

from llama_index_tale import TaleBudgetExceededError, TaleLLM, TaleTracer
from tale_shared.estimators import FixedBudgetEstimator


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOLS = [FunctionTool.from_defaults(add)]


class Script:
    """Calls `add` n times, then answers; records every prompt it was sent."""

    def __init__(self, n_calls: int = 1) -> None:
        self.n_calls, self.prompts = n_calls, []

    def __call__(self, messages, **kwargs):
        self.prompts.append(list(messages))
        done = sum(1 for m in messages if m.role == MessageRole.TOOL)
        if done >= self.n_calls:
            return ChatMessage(role=MessageRole.ASSISTANT, content="The answer is [[3]].")
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            blocks=[
                ToolCallBlock(
                    tool_call_id=f"c{done}", tool_name="add", tool_kwargs={"a": 2, "b": 1}
                )
            ],
        )


def _agent(script, **tale):
    inner = MockFunctionCallingLLM(response_generator=script)
    llm = TaleLLM(llm=inner, **tale)
    return llm, FunctionAgent(tools=TOOLS, llm=llm, system_prompt="You are a calculator.")


async def test_function_agent_steps_get_budgets_and_totals_are_counted():
    script = Script(n_calls=1)
    llm, agent = _agent(script, estimator="fixed:80", style="system")
    result = await agent.run("What is 2 + 1? Use the tool.")
    assert "[[3]]" in str(result)
    assert len(script.prompts) == 2 and llm.spent.steps == 2 and llm.spent.tokens > 0
    for prompt in script.prompts:
        assert prompt[0].role == MessageRole.SYSTEM
        assert prompt[0].content.startswith("You are a calculator.")
        assert "shorter than 80 tokens" in prompt[0].content


async def test_total_budget_end_finishes_the_run_with_a_message():
    script = Script(n_calls=10)
    _, agent = _agent(script, total_tokens=30, exit_behavior="end")
    result = await agent.run("What is 2 + 1? Use the tool.")
    assert "token budget spent" in str(result)
    assert len(script.prompts) < 10


async def test_total_budget_error_raises():
    _, agent = _agent(Script(n_calls=10), total_tokens=30, exit_behavior="error")
    with pytest.raises(Exception) as info:
        await agent.run("What is 2 + 1? Use the tool.")
    chain = [info.value, info.value.__cause__, info.value.__context__]
    assert any(isinstance(e, TaleBudgetExceededError) for e in chain)


async def test_total_budget_warn_goes_on():
    _, agent = _agent(Script(n_calls=3), total_tokens=30, exit_behavior="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = await agent.run("What is 2 + 1? Use the tool.")
    assert "[[3]]" in str(result) and any("budget spent" in str(w.message) for w in caught)


async def test_stream_events_still_work_and_reset_starts_a_new_run():
    llm, agent = _agent(Script(n_calls=1), estimator="fixed:60")
    handler = agent.run("What is 2 + 1? Use the tool.")
    kinds = {type(ev) async for ev in handler.stream_events()}
    await handler
    assert AgentStream in kinds and ToolCallResult in kinds
    assert llm.spent.tokens > 0
    llm.reset()
    assert (llm.spent.tokens, llm.spent.steps, llm.spent.cost_usd) == (0, 0, 0.0)


async def test_react_agent_with_a_plain_llm_and_usage_from_the_provider():
    inner = UsageMockLLM(answer="Thought: I can answer.\nAnswer: [[3]]")
    llm = TaleLLM(llm=inner, estimator="fixed:70", style="system", total_tokens=10_000)
    agent = ReActAgent(tools=TOOLS, llm=llm)
    with TaleTracer() as tracer:
        result = await agent.run("What is 2 + 1?")
    assert "[[3]]" in str(result)
    assert any("shorter than 70 tokens" in m.content for m in inner.seen[0] if m.content)
    assert llm.spent.tokens == sum(r.usage.total_tokens for r in tracer.records)
    assert llm.spent.cost_usd is not None and llm.spent.cost_usd > 0


def test_usable_anywhere_an_llm_is_and_bad_settings_refused():
    inner = UsageMockLLM()
    llm = TaleLLM(llm=inner, estimator="fixed:30", style="words")
    assert llm.complete("What is 3 + 5?").text == "3 + 5 = 8. [[8]]"
    assert "at most 23 words" in inner.seen[-1][-1].content
    assert llm.metadata == inner.metadata
    with pytest.raises(ValueError):
        TaleLLM(llm=inner, style="nope")
    with pytest.raises(ValueError):
        TaleLLM(llm=inner, total_tokens=0)
    with pytest.raises(TypeError, match="tool calling"):
        llm.get_tool_calls_from_response(None)


def test_the_budget_keeps_a_messages_other_blocks_and_kwargs():
    inner = UsageMockLLM()
    llm = TaleLLM(llm=inner, estimator="fixed:30", style="words")
    image = ImageBlock(url="https://example.com/chart.png")
    asked = ChatMessage(
        role=MessageRole.USER,
        blocks=[TextBlock(text="What does the chart add up to?"), image],
        additional_kwargs={"name": "ann"},
    )
    llm.chat([asked])
    sent = inner.seen[-1][-1]
    assert sent.blocks[:2] == asked.blocks and sent.additional_kwargs == {"name": "ann"}
    assert "at most 23 words" in sent.blocks[2].text
    assert asked.blocks == [TextBlock(text="What does the chart add up to?"), image]  # untouched


async def test_an_agent_run_is_one_traced_query():
    llm, agent = _agent(Script(n_calls=2), estimator="fixed:60")
    with TaleTracer() as tracer:
        await agent.run("What is 2 + 1? Use the tool.")
        await agent.run("And 5 + 1? Use the tool.")
    first, second = tracer.records
    assert first.n_calls == 3 and second.n_calls == 3
    assert first.usage.total_tokens + second.usage.total_tokens == llm.spent.tokens


async def test_agent_workflow_takes_tale_llm_too():
    from llama_index.core.agent.workflow import AgentWorkflow

    script = Script(n_calls=1)
    inner = MockFunctionCallingLLM(response_generator=script)
    llm = TaleLLM(llm=inner, estimator="fixed:90", style="system")
    workflow = AgentWorkflow.from_tools_or_functions(
        [add], llm=llm, system_prompt="You are a calculator."
    )
    result = await workflow.run(user_msg="What is 2 + 1? Use the tool.")
    assert "[[3]]" in str(result) and llm.spent.steps == 2
    assert all("shorter than 90 tokens" in p[0].content for p in script.prompts)


class _SlowEstimator(FixedBudgetEstimator):
    """Takes 0.3 s: blocking in estimate(), awaiting in aestimate()."""

    def estimate(self, question):  # type: ignore[no-untyped-def]
        import time

        time.sleep(0.3)
        return super().estimate(question)

    async def aestimate(self, question):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.3)
        return super().estimate(question)


async def test_async_steps_await_the_estimator_and_never_block_the_loop():
    llm = TaleLLM(llm=UsageMockLLM(), estimator=_SlowEstimator(50))
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    await llm.achat([ChatMessage(role=MessageRole.USER, content="What is 3 + 5?")])
    await llm.acomplete("What is 3 + 5?")
    task.cancel()
    assert ticks >= 8  # two 0.3 s estimates awaited, not slept through


def test_the_estimators_cap_reaches_a_llama_index_llm():
    from llama_index_tale.llm_adapter import LlamaIndexModel
    from tale_shared.prompts import Message

    caps = []

    class CapSpy(UsageMockLLM):
        def chat(self, messages, **kwargs):  # type: ignore[no-untyped-def]
            caps.append(self.max_tokens)
            return super().chat(messages, **kwargs)

    model = LlamaIndexModel(CapSpy(max_tokens=512))
    model.complete([Message("user", "hi")], max_tokens=48)
    model.complete([Message("user", "hi")])
    assert caps == [48, 512]


def test_tale_llm_serialises_with_its_estimator_spec():
    data = TaleLLM(llm=UsageMockLLM(), estimator=FixedBudgetEstimator(40)).to_dict()
    assert data["estimator"] == "fixed:40" and data["class_name"] == "TaleLLM"
    rebuilt = TaleLLM(llm=UsageMockLLM(), estimator=data["estimator"])  # the spec rebuilds it
    assert rebuilt._estimator().estimate("What is 2 + 2?").tokens == 40
    assert TaleLLM(llm=UsageMockLLM(), estimator="heuristic").to_json()


async def test_concurrent_runs_each_spend_from_their_own_ledger():
    single, agent = _agent(Script(n_calls=1), estimator="fixed:80")
    await agent.run("What is 2 + 1? Use the tool.")
    one_run = single.spent.tokens

    def two_agents():
        llm, a = _agent(Script(n_calls=1), estimator="fixed:80", total_tokens=one_run * 3 // 2)
        b = FunctionAgent(tools=TOOLS, llm=llm, system_prompt="You are a calculator.")
        return llm, a, b

    async def in_a_run(llm, agent):
        with llm.run() as ledger:
            result = await agent.run("What is 2 + 1? Use the tool.")
        return str(result), ledger.spent

    llm, a, b = two_agents()
    (ra, sa), (rb, sb) = await asyncio.gather(in_a_run(llm, a), in_a_run(llm, b))
    assert "[[3]]" in ra and "[[3]]" in rb
    assert sa.tokens == sb.tokens == one_run and sa.steps == sb.steps == 2
    assert llm.spent.tokens == 0  # the instance's ledger was not touched

    # the same two runs sharing the instance's ledger spend one budget between them, and
    # both checks pass before either has spent: together they overshoot it
    llm, a, b = two_agents()
    await asyncio.gather(*(x.run("What is 2 + 1? Use the tool.") for x in (a, b)))
    assert llm.spent.tokens == 2 * one_run > llm.total_tokens


def test_zero_shot_asks_the_wrapped_llm_and_its_tokens_are_part_of_the_run():
    inner = UsageMockLLM(estimate_reply="Budget: [[70]]")
    llm = TaleLLM(llm=inner, estimator="zero-shot", style="system")
    llm.chat([ChatMessage(role=MessageRole.USER, content="What is 3 + 5?")])
    estimate, answer = inner.seen
    assert "estimate the minimum number of tokens" in estimate[-1].content
    assert "shorter than 70 tokens" in answer[0].content
    words = sum(len((m.content or "").split()) for m in [*estimate, *answer])
    assert llm.spent.tokens == words + len(inner.estimate_reply.split()) + len(inner.answer.split())
    assert llm.spent.steps == 1  # the estimator's call is not a step of its own


def test_the_embedded_llm_runs_a_function_agent_in_the_layout_chat_local_llama_uses():
    """``LocalLlamaLLM`` is a function-calling LLM: ``FunctionAgent`` runs on it, the tools
    go in Qwen's layout, the call is read from the reply and the result goes back — the same
    core messages ``ChatLocalLlama`` sends for the same conversation."""
    import asyncio

    from langchain_core.messages import AIMessage as LcAI
    from langchain_core.messages import HumanMessage as LcHuman
    from langchain_core.messages import SystemMessage as LcSystem
    from langchain_core.messages import ToolMessage as LcTool
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.tools import FunctionTool

    from langchain_tale._tools import with_tools
    from llama_index_tale import LocalLlamaLLM

    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    local = ScriptedLocal(
        [
            'Let me add.\n<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 1}}\n'
            "</tool_call>",
            "The answer is [[3]].",
        ]
    )
    llm = LocalLlamaLLM(model="qwen2.5-coder-1.5b")
    llm._local = local
    assert llm.metadata.is_function_calling_model
    tool = FunctionTool.from_defaults(fn=add)
    agent = FunctionAgent(tools=[tool], llm=llm, system_prompt="You are a calculator.")

    async def run() -> object:
        return await agent.run(user_msg="What is 2 + 1? Use the tool.")

    result = asyncio.run(run())
    assert "[[3]]" in str(result)
    first, second = local.prompts
    assert first[0].content.startswith("You are a calculator.") and "<tools>" in first[0].content
    assert second[-1].content == "<tool_response>\n3\n</tool_response>"
    # the same conversation through ChatLocalLlama's layout gives the same core messages
    schema = tool.metadata.to_openai_tool()
    lc = with_tools(
        [
            LcSystem("You are a calculator."),
            LcHuman("What is 2 + 1? Use the tool."),
            LcAI(
                content="Let me add.",
                tool_calls=[{"name": "add", "args": {"a": 2, "b": 1}, "id": "c1"}],
            ),
            LcTool(content="3", tool_call_id="c1"),
        ],
        [schema],
    )
    assert [(m.role, m.content) for m in lc] == [(m.role, m.content) for m in second]
    assert convert_to_openai_tool(add)["function"]["name"] == schema["function"]["name"]


def test_tool_first_makes_the_embedded_llm_call_until_a_tool_has_answered():
    from llama_index.core.tools import FunctionTool

    from llama_index_tale import LocalLlamaLLM

    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    tool = FunctionTool.from_defaults(fn=add)
    plain = LocalLlamaLLM(model="qwen2.5-coder-1.5b")
    plain._local = seen = ScriptedLocal(then=ADD_CALL)
    plain.chat_with_tools([tool], "What is 1 + 2?")
    assert "json_schema" not in seen.kwargs[-1]  # the model chooses
    first = LocalLlamaLLM(model="qwen2.5-coder-1.5b", tool_first=True)
    first._local = seen
    response = first.chat_with_tools([tool], "What is 1 + 2?")
    assert "json_schema" in seen.kwargs[-1]  # no tool has answered yet: a call is forced
    (call,) = first.get_tool_calls_from_response(response)
    answered = [
        ChatMessage(role=MessageRole.USER, content="What is 1 + 2?"),
        response.message,
        ChatMessage(
            role=MessageRole.TOOL, content="3", additional_kwargs={"tool_call_id": call.tool_id}
        ),
    ]
    first.chat_with_tools([tool], chat_history=answered)
    assert "json_schema" not in seen.kwargs[-1]  # the model may answer now


def test_plan_calls_makes_a_required_call_plan_first_and_keeps_the_plan_as_text():
    from llama_index.core.tools import FunctionTool

    from llama_index_tale import LocalLlamaLLM

    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    planned = json.dumps({"plan": "1 + 2 needs the add tool.", "calls": [json.loads(ADD_CALL)]})
    llm = LocalLlamaLLM(model="qwen2.5-coder-1.5b", tool_required=True, plan_calls=True)
    llm._local = seen = ScriptedLocal(then=planned)
    response = llm.chat_with_tools([FunctionTool.from_defaults(fn=add)], "What is 1 + 2?")
    assert seen.kwargs[-1]["json_schema"]["required"] == ["plan", "calls"]
    assert response.message.content == "1 + 2 needs the add tool."
    (call,) = llm.get_tool_calls_from_response(response)
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 1, "b": 2})
