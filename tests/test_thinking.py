"""Reasoning models: the estimated budget reaches each provider's thinking knob, through the
real client classes, with their HTTP answered on loopback; thinking is counted apart from the
visible answer; a cap the provider ignored is flagged."""

from __future__ import annotations

import pytest
from loopback import Loopback

from langchain_tale import TaleRunnable, TaleTracer
from tale_shared.methods import parse_method
from tale_shared.thinking import thinking_settings

Q = "Tom has 3 apples and buys 5 more. How many apples does he have?"
THOUGHT = "Three apples, then five more: three plus five is eight. " * 4

OPENAI_CHAT = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "o4-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "3 + 5 = 8 [[8]]"},
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 40,
        "completion_tokens": 90,
        "total_tokens": 130,
        "completion_tokens_details": {"reasoning_tokens": 80},
    },
}
OPENAI_RESPONSES = {
    "id": "resp_1",
    "object": "response",
    "created_at": 0,
    "model": "o4-mini",
    "status": "completed",
    "incomplete_details": None,
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {
            "type": "message",
            "id": "m1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "3 + 5 = 8 [[8]]", "annotations": []}],
        },
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {
        "input_tokens": 30,
        "output_tokens": 90,
        "total_tokens": 120,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 80},
    },
}
ANTHROPIC = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": THOUGHT, "signature": "sig"},
        {"type": "text", "text": "3 + 5 = 8 [[8]]"},
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 40, "output_tokens": 120},
}
GEMINI = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [{"text": "thinking", "thought": True}, {"text": "3 + 5 = 8 [[8]]"}],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 40,
        "candidatesTokenCount": 10,
        "thoughtsTokenCount": 80,
        "totalTokenCount": 130,
    },
    "modelVersion": "gemini-2.5-flash",
}
BEDROCK = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": THOUGHT, "signature": "s"}}},
                {"text": "3 + 5 = 8 [[8]]"},
            ],
        }
    },
    "stopReason": "end_turn",
    "usage": {"inputTokens": 40, "outputTokens": 120, "totalTokens": 160},
    "metrics": {"latencyMs": 10},
}
OLLAMA = {
    "model": "qwen3",
    "created_at": "2026-01-01T00:00:00Z",
    "message": {"role": "assistant", "content": "3 + 5 = 8 [[8]]", "thinking": THOUGHT},
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 40,
    "eval_count": 120,
}


def _anthropic(url):
    from langchain_anthropic import ChatAnthropic

    thinking = {"type": "enabled", "budget_tokens": 5000}
    return ChatAnthropic(model="claude-sonnet-4-5", api_key="k", base_url=url, thinking=thinking)


def _openai(url, **kwargs):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="o4-mini", api_key="k", base_url=f"{url}/v1", **kwargs)


def _gemini(url, model="gemini-2.5-flash"):
    from langchain_google_genai import ChatGoogleGenerativeAI

    return ChatGoogleGenerativeAI(model=model, api_key="k", base_url=url)


def _bedrock(url):
    from langchain_aws import ChatBedrockConverse

    return ChatBedrockConverse(
        model="anthropic.claude-sonnet-4-5-v1:0",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="a",
        aws_secret_access_key="b",
        additional_model_request_fields={"thinking": {"type": "enabled", "budget_tokens": 4000}},
    )


def _ollama(url):
    from langchain_ollama import ChatOllama

    return ChatOllama(model="qwen3", base_url=url, reasoning=True)


def _gen_config(body):
    return body["generationConfig"]


# (client, reply, where the knob is in the body, what it must be for a budget of 300,
#  where the output cap is)
KNOBS = {
    "anthropic": (
        _anthropic,
        ANTHROPIC,
        lambda b: b["thinking"],
        {"type": "enabled", "budget_tokens": 1024},
        lambda b: b["max_tokens"],
    ),
    "openai-chat": (
        _openai,
        OPENAI_CHAT,
        lambda b: b["reasoning_effort"],
        "low",
        lambda b: b["max_completion_tokens"],
    ),
    "openai-responses": (
        lambda url: _openai(url, use_responses_api=True),
        OPENAI_RESPONSES,
        lambda b: b["reasoning"]["effort"],
        "low",
        lambda b: b["max_output_tokens"],
    ),
    "gemini-2.5": (
        _gemini,
        GEMINI,
        lambda b: _gen_config(b)["thinkingConfig"]["thinking_budget"],
        300,
        lambda b: _gen_config(b)["maxOutputTokens"],
    ),
    "gemini-3": (
        lambda url: _gemini(url, "gemini-3-pro-preview"),
        GEMINI,
        lambda b: str(_gen_config(b)["thinkingConfig"]["thinking_level"]).lower(),
        "low",
        lambda b: _gen_config(b)["maxOutputTokens"],
    ),
    "bedrock": (
        _bedrock,
        BEDROCK,
        lambda b: b["additionalModelRequestFields"]["thinking"],
        {"type": "enabled", "budget_tokens": 1024},
        lambda b: b["inferenceConfig"]["maxTokens"],
    ),
    "ollama": (
        _ollama,
        OLLAMA,
        lambda b: b["think"],
        True,
        lambda b: b["options"]["num_predict"],
    ),
}


@pytest.mark.parametrize("client", KNOBS)
def test_the_estimated_budget_sets_each_providers_thinking_knob(client):
    make, reply, knob, expected, cap_of = KNOBS[client]
    with Loopback(lambda method, path, body: reply) as server:
        llm = make(server.url)
        runnable = TaleRunnable(llm=llm, estimator="fixed:300")
        assert runnable.resolved_method.think  # chosen for a reasoning model by itself
        with TaleTracer() as tracer:
            answer = runnable.invoke(Q)
        (body,) = server.bodies
    assert knob(body) == expected
    provider = {"openai-chat": "openai", "openai-responses": "openai"}.get(client, client)
    provider = provider.split("-")[0]
    settings = thinking_settings(provider, 300, model=getattr(llm, "model", None))
    assert cap_of(body) == settings.max_output_tokens
    assert answer.response_metadata["tale"]["thinking"]["budget"] == 300
    (record,) = tracer.records
    (call,) = record.calls
    usage = call.usage
    assert usage.reasoning_tokens > 0 and usage.visible_output_tokens > 0
    assert usage.reasoning_tokens + usage.visible_output_tokens == usage.output_tokens
    assert call.cap == settings.max_output_tokens and not call.cap_exceeded
    assert tracer.summary().reasoning_tokens == usage.reasoning_tokens


def test_a_model_that_is_not_a_reasoning_model_gets_no_knob():
    with Loopback(lambda method, path, body: OPENAI_CHAT) as server:
        from langchain_openai import ChatOpenAI

        llm = ChatOpenAI(model="gpt-4o-mini", api_key="k", base_url=f"{server.url}/v1")
        TaleRunnable(llm=llm, estimator="fixed:300").invoke(Q)
        (body,) = server.bodies
    assert "reasoning_effort" not in body


def test_think_asked_for_by_spec_on_any_known_client_and_refused_without_a_knob():
    from langchain_core.language_models import FakeListChatModel

    with Loopback(lambda method, path, body: OPENAI_CHAT) as server:
        from langchain_openai import ChatOpenAI

        llm = ChatOpenAI(model="gpt-4o-mini", api_key="k", base_url=f"{server.url}/v1")
        TaleRunnable(llm=llm, method="tale-fixed:2000@vanilla+think").invoke(Q)
        (body,) = server.bodies
    assert body["reasoning_effort"] == "medium" and body["max_completion_tokens"] == 3024
    with pytest.raises(ValueError, match="no thinking knob"):
        TaleRunnable(llm=FakeListChatModel(responses=["x"]), method="tale-fixed:300+think")
    assert parse_method("tale-fixed:300@vanilla+think").spec == "tale-fixed:300@vanilla+think"
    with pytest.raises(ValueError, match="needs an estimator"):
        parse_method("vanilla+think")


def test_a_cap_the_provider_ignored_is_flagged():
    over = {**OPENAI_CHAT, "usage": {**OPENAI_CHAT["usage"], "completion_tokens": 5000}}
    with (
        Loopback(lambda method, path, body: over) as server,
        TaleTracer() as tracer,
        pytest.warns(UserWarning, match="cap"),
    ):
        TaleRunnable(llm=_openai(server.url), estimator="fixed:300").invoke(Q)
    (record,) = tracer.records
    assert record.cap_exceeded and tracer.summary().cap_exceeded_calls == 1


# -- the agent middleware: each step's budget -------------------------------------------------
@pytest.mark.parametrize("client", ["anthropic", "openai-chat", "gemini-2.5"])
def test_each_agent_step_sends_its_budget_through_the_knob(client):
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage

    from langchain_tale.middleware import TaleBudgetMiddleware

    make, reply, knob, expected, cap_of = KNOBS[client]
    with Loopback(lambda method, path, body: reply) as server:
        middleware = TaleBudgetMiddleware(estimator="fixed:300")
        agent = create_agent(make(server.url), tools=[], middleware=[middleware])
        result = agent.invoke({"messages": [HumanMessage(Q)]})
        (body,) = server.bodies
    assert knob(body) == expected and cap_of(body) > 300
    assert "[[8]]" in result["messages"][-1].text


# -- LlamaIndex: TaleLLM and the query engine ----------------------------------------------
def _li_anthropic(url):
    from llama_index.llms.anthropic import Anthropic

    thinking = {"type": "enabled", "budget_tokens": 5000}
    return Anthropic(model="claude-sonnet-4-5", api_key="k", base_url=url, thinking_dict=thinking)


def _li_openai(url):
    from llama_index.llms.openai import OpenAI

    return OpenAI(model="o4-mini", api_key="k", api_base=f"{url}/v1")


def _li_gemini(url):
    from llama_index.llms.google_genai import GoogleGenAI

    return GoogleGenAI(
        model="gemini-2.5-flash", api_key="k", http_options={"base_url": url}, max_tokens=512
    )


def _li_cap(body):
    return body.get("max_completion_tokens") or body.get("max_tokens")


LI_KNOBS = {
    "anthropic": (
        _li_anthropic,
        ANTHROPIC,
        lambda b: b["thinking"],
        {"type": "enabled", "budget_tokens": 1024},
        _li_cap,
    ),
    "openai": (_li_openai, OPENAI_CHAT, lambda b: b["reasoning_effort"], "low", _li_cap),
    "gemini": (
        _li_gemini,
        GEMINI,
        lambda b: _gen_config(b)["thinkingConfig"]["thinking_budget"],
        300,
        lambda b: _gen_config(b)["maxOutputTokens"],
    ),
}


@pytest.mark.parametrize("client", LI_KNOBS)
def test_tale_llm_sends_each_steps_budget_through_the_knob(client):
    from llama_index.core.base.llms.types import ChatMessage

    from llama_index_tale import TaleLLM
    from llama_index_tale import TaleTracer as LlamaIndexTracer

    make, reply, knob, expected, cap_of = LI_KNOBS[client]
    with Loopback(lambda method, path, body: reply) as server:
        llm = make(server.url)
        tale = TaleLLM(llm=llm, estimator="fixed:300")
        assert tale.step.method.think
        with LlamaIndexTracer() as tracer:
            answer = tale.chat([ChatMessage(role="user", content=Q)])
        (body,) = server.bodies
    assert knob(body) == expected and "[[8]]" in (answer.message.content or "")
    provider = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini"}[client]
    settings = thinking_settings(provider, 300, model=llm.model)
    assert cap_of(body) == settings.max_output_tokens
    (record,) = tracer.records
    (call,) = record.calls
    assert call.usage.reasoning_tokens > 0
    assert (
        call.usage.reasoning_tokens + call.usage.visible_output_tokens == call.usage.output_tokens
    )
    assert call.cap == settings.max_output_tokens


def test_the_query_engine_sends_the_budget_through_the_answer_llms_knob():
    from li_fakes import SpyEmbedding
    from llama_index.core import Document, VectorStoreIndex

    from llama_index_tale import TaleQueryEngine, TaleQueryTransform

    with Loopback(lambda method, path, body: OPENAI_CHAT) as server:
        llm = _li_openai(server.url)
        index = VectorStoreIndex.from_documents(
            [Document(text="Tom has 3 apples.")], embed_model=SpyEmbedding(embed_dim=8)
        )
        transform = TaleQueryTransform(llm=llm, estimator="fixed:2000")
        engine = TaleQueryEngine(index.as_query_engine(llm=llm), transform)
        response = engine.query(Q)
        (body,) = server.bodies
    assert transform.resolved_method.think and body["reasoning_effort"] == "medium"
    assert response.metadata["tale"]["thinking"]["effort"] == "medium"
    assert llm.reasoning_effort is None  # the user's LLM is untouched: a copy was set


# -- the core pipeline: a knob model through an adapter, a llama.cpp <think> model -----------
def test_the_pipeline_sends_the_budget_through_an_adapters_knob():
    from langchain_tale.model_adapter import LangChainModel
    from tale_shared.pipeline import TalePipeline

    with Loopback(lambda method, path, body: OPENAI_CHAT) as server:
        model = LangChainModel(_openai(server.url))
        result = TalePipeline(model, method="tale-fixed:300@paper+think").solve(Q)
        (body,) = server.bodies
    assert body["reasoning_effort"] == "low" and body["max_completion_tokens"] == 300 + 512
    (call,) = result.record.calls
    assert call.cap == 812 and call.usage.reasoning_tokens == 80 and result.answer == "8"


class ThinkingLlama:
    """A llama.cpp-like reasoning model: it thinks in <think> tags for as long as it may,
    and continues a reply from a prefix (what budget forcing needs)."""

    model_name = "local/thinker"
    think_close = "</think>"

    def __init__(self, thought_words: int = 400) -> None:
        self.thought = " ".join(f"w{i}" for i in range(thought_words))
        self.requests: list[tuple[str | None, int | None]] = []

    def _reply(self, partial, max_tokens):
        from tale_shared.models import Completion
        from tale_shared.usage import TokenUsage

        self.requests.append((partial, max_tokens))
        if partial is None:
            words = ("<think> " + self.thought + " </think> [[8]]").split()
            cut = max_tokens is not None and len(words) > max_tokens
            text = " ".join(words[:max_tokens] if cut else words)
            reason = "length" if cut else "stop"
        else:
            text, reason = ("8]]", "stop") if partial.endswith("[[") else ("more", "length")
        usage = TokenUsage(input_tokens=20, output_tokens=len(text.split()), source="provider")
        return Completion(text=text, usage=usage, model=self.model_name, finish_reason=reason)

    def complete(self, messages, *, max_tokens=None):
        return self._reply(None, max_tokens)

    async def acomplete(self, messages, *, max_tokens=None):
        return self._reply(None, max_tokens)

    def continue_reply(self, messages, partial, *, max_tokens):
        return self._reply(partial, max_tokens)

    async def acontinue_reply(self, messages, partial, *, max_tokens):
        return self._reply(partial, max_tokens)


def test_a_llama_cpp_reasoning_model_has_its_thinking_cut_at_the_budget_and_closed():
    from tale_shared.pipeline import TalePipeline

    model = ThinkingLlama()
    result = TalePipeline(model, method="tale-fixed:100@vanilla+think").solve(Q)
    first_cap, forced = model.requests[0][1], model.requests[1][0]
    assert first_cap == 100  # the thinking stops at the budget...
    assert forced.endswith("</think>\n\nTherefore, the final answer is [[")  # ...is closed
    assert result.forced and result.answer == "8"
    assert [c.role for c in result.record.calls] == ["answer", "forced"]


async def test_early_exit_on_a_reasoning_model_probes_with_the_thinking_closed():
    from tale_shared.pipeline import TalePipeline

    model = ThinkingLlama()
    pipeline = TalePipeline(model, method="tale-fixed:300@vanilla+think+exit32x2")
    result = await pipeline.asolve(Q)
    probes = [p for p, _ in model.requests if p is not None and p.endswith("[[")]
    assert len(probes) == 2 and all("</think>" in p for p in probes)
    assert result.stopped_early and result.answer == "8"
    roles = [c.role for c in result.record.calls]
    assert roles.count("probe") == 2 and len(result.record.calls) == len(model.requests)


def test_think_on_a_model_without_a_knob_is_refused_when_built():
    from conftest import ScriptedModel

    from tale_shared.pipeline import TalePipeline

    with pytest.raises(ValueError, match="has none"):
        TalePipeline(ScriptedModel("[[8]]"), method="tale-fixed:100+think")
