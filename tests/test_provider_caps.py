"""The cap reaches the request body each real provider client sends (HTTP layer faked)."""

import json
import sys
import types

import httpx
import pytest

from langchain_tale import TaleRunnable
from langchain_tale._caps import cap_kwargs, with_cap

langchain_openai = pytest.importorskip("langchain_openai")
langchain_anthropic = pytest.importorskip("langchain_anthropic")

Q = "Tom has 3 apples and buys 5 more. How many apples does he have?"
OPENAI_REPLY = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "served-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "3 + 5 = 8 [[8]]"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49},
}
ANTHROPIC_REPLY = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-test-model",
    "content": [{"type": "text", "text": "3 + 5 = 8 [[8]]"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 40, "output_tokens": 9},
}


class Recorder:
    """An HTTP transport that records each request body and answers with ``reply``.
    ``http`` is the client library the SDK uses (openai: httpx, anthropic: httpx2)."""

    def __init__(self, reply, http=httpx):
        self.reply = reply
        self.http = http
        self.bodies: list[dict] = []

    def __call__(self, request):
        self.bodies.append(json.loads(request.content))
        return self.http.Response(200, json=self.reply)

    def client(self):
        return self.http.Client(transport=self.http.MockTransport(self))


def _openai(recorder, **kwargs):
    return langchain_openai.ChatOpenAI(
        model="served-model", api_key="sk-test", http_client=recorder.client(), **kwargs
    )


def test_openai_itself_gets_max_completion_tokens_only():
    rec = Recorder(OPENAI_REPLY)
    TaleRunnable(llm=_openai(rec), estimator="fixed:100", cap_headroom=1.5).invoke(Q)
    (body,) = rec.bodies
    assert body["max_completion_tokens"] == 150 and "max_tokens" not in body


def test_an_openai_compatible_server_also_gets_max_tokens_in_the_body():
    rec = Recorder(OPENAI_REPLY)
    llm = _openai(rec, base_url="http://127.0.0.1:8000/v1", extra_body={"top_k": 5})
    reply = TaleRunnable(llm=llm, estimator="fixed:100", cap_headroom=1.5).invoke(Q)
    (body,) = rec.bodies
    assert body["max_tokens"] == 150 and body["top_k"] == 5  # the model's extra_body kept
    assert reply.usage_metadata["output_tokens"] == 9


def test_a_tighter_cap_from_the_caller_wins_also_inside_extra_body():
    rec = Recorder(OPENAI_REPLY)
    llm = _openai(rec, base_url="http://localhost:8080/v1")
    runnable = TaleRunnable(llm=llm, estimator="fixed:100", cap_headroom=1.5)
    runnable.invoke(Q, max_tokens=20, extra_body={"max_tokens": 20, "seed": 1})
    (body,) = rec.bodies
    assert body["max_tokens"] == 20 and body["seed"] == 1
    assert with_cap({"max_tokens": 500}, llm, 150)["max_tokens"] == 150


def test_anthropic_gets_max_tokens_and_room_for_thinking(monkeypatch):
    import anthropic._base_client as base_client

    rec = Recorder(ANTHROPIC_REPLY, http=getattr(base_client, "httpx2", httpx))
    monkeypatch.setattr(
        langchain_anthropic.chat_models,
        "_get_default_httpx_client",
        lambda **kwargs: rec.client(),
    )
    llm = langchain_anthropic.ChatAnthropic(model="claude-test-model", api_key="sk-test")
    TaleRunnable(llm=llm, estimator="fixed:100", cap_headroom=1.5).invoke(Q)
    assert rec.bodies[-1]["max_tokens"] == 150
    thinking = {"type": "enabled", "budget_tokens": 2000}
    assert cap_kwargs(llm.model_copy(update={"thinking": thinking}), 90) == {"max_tokens": 2090}


def test_providers_are_told_apart_by_class_not_by_name(monkeypatch):
    class ChatAnthropic:  # a look-alike: same name, not the provider's class
        def __init__(self) -> None:
            self.thinking = {"type": "enabled", "budget_tokens": 2000}

    assert cap_kwargs(ChatAnthropic(), 90) == {"max_tokens": 90}

    # Gemini's package is not installed here: a module that stands in for it
    genai = types.ModuleType("langchain_google_genai")

    class ChatGoogleGenerativeAI:
        pass

    genai.ChatGoogleGenerativeAI = ChatGoogleGenerativeAI  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langchain_google_genai", genai)
    assert cap_kwargs(ChatGoogleGenerativeAI(), 90) == {"max_output_tokens": 90}
    assert cap_kwargs(ChatAnthropic(), None) == {}


TOOL_REPLY = {
    **OPENAI_REPLY,
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "Answer", "arguments": '{"value": 8}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
}


def test_bind_tools_and_structured_output_keep_the_budget():
    from pydantic import BaseModel

    class Answer(BaseModel):
        """The final answer."""

        value: int

    rec = Recorder(TOOL_REPLY)
    runnable = TaleRunnable(llm=_openai(rec), estimator="fixed:60", style="paper")
    reply = runnable.bind_tools([Answer], tool_choice="Answer").invoke(Q)
    body = rec.bodies[-1]
    assert body["tools"][0]["function"]["name"] == "Answer"
    assert "60 tokens" in body["messages"][-1]["content"]  # the budget is in the prompt
    assert reply.tool_calls[0]["args"] == {"value": 8}
    assert reply.response_metadata["tale"]["budget"] == 60

    structured = runnable.with_structured_output(Answer, method="function_calling")
    assert structured.invoke(Q) == Answer(value=8)
    assert "60 tokens" in rec.bodies[-1]["messages"][-1]["content"]
    raw = runnable.with_structured_output(Answer, method="function_calling", include_raw=True)
    out = raw.invoke(Q)
    assert out["parsed"] == Answer(value=8) and out["raw"].response_metadata["tale"]["budget"] == 60


def test_ollama_gets_num_predict_in_options_with_the_models_own_options():
    langchain_ollama = pytest.importorskip("langchain_ollama")
    bodies = []

    def reply(request):
        bodies.append(json.loads(request.content))
        line = {
            "model": "llama3.2",
            "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "3 + 5 = 8 [[8]]"},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 40,
            "eval_count": 9,
        }
        return httpx.Response(
            200, content=json.dumps(line) + "\n", headers={"content-type": "application/x-ndjson"}
        )

    llm = langchain_ollama.ChatOllama(
        model="llama3.2",
        temperature=0.2,
        num_ctx=4096,
        client_kwargs={"transport": httpx.MockTransport(reply)},
    )
    runnable = TaleRunnable(llm=llm, estimator="fixed:100", cap_headroom=1.5)
    out = runnable.invoke(Q, stop=["\n\n"])
    options = bodies[-1]["options"]
    assert options["num_predict"] == 150 and "max_tokens" not in bodies[-1]
    assert options["temperature"] == 0.2 and options["num_ctx"] == 4096  # the model's kept
    assert options["stop"] == ["\n\n"]  # the call's stop words too
    assert out.usage_metadata["output_tokens"] == 9


def test_gemini_gets_max_output_tokens_in_its_generation_config():
    genai = pytest.importorskip("langchain_google_genai")

    bodies = []
    gemini_reply = {
        "candidates": [
            {
                "content": {"parts": [{"text": "3 + 5 = 8 [[8]]"}], "role": "model"},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 40,
            "candidatesTokenCount": 9,
            "totalTokenCount": 49,
        },
        "modelVersion": "gemini-test",
    }

    def reply(request):
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=gemini_reply)

    llm = genai.ChatGoogleGenerativeAI(
        model="gemini-test",
        api_key="test-key",
        client_args={"transport": httpx.MockTransport(reply)},
    )
    out = TaleRunnable(llm=llm, estimator="fixed:100", cap_headroom=1.5).invoke(Q)
    assert bodies[-1]["generationConfig"]["maxOutputTokens"] == 150
    assert out.usage_metadata["output_tokens"] == 9
