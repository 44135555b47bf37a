"""ServedModel: an OpenAI-compatible endpoint for the research tools (HTTP faked here; the
real server is in tests/test_openai_server.py)."""

import asyncio
import json

import httpx
import pytest

from tale_shared.loading import load_model
from tale_shared.models import ModelCallError
from tale_shared.prompts import Message
from tale_shared.served import ServedModel

OK = {
    "model": "served-qwen",
    "choices": [{"message": {"role": "assistant", "content": "[[5]]"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3},
}


class Server:
    """Answers /models and /chat/completions; ``failures`` replies come first."""

    def __init__(self, failures=()):
        self.failures = list(failures)
        self.bodies = []

    def __call__(self, request):
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "served-qwen"}]})
        self.bodies.append(json.loads(request.content))
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return failure
        return httpx.Response(200, json=OK)


def _model(server, **kwargs):
    return ServedModel(
        "http://127.0.0.1:9/v1",
        transport=httpx.MockTransport(server),
        async_transport=httpx.MockTransport(server),
        backoff_s=0.001,
        **kwargs,
    )


def test_asks_the_server_for_its_model_and_sends_max_tokens():
    server = Server()
    model = _model(server)
    reply = model.complete([Message("user", "2 + 3?")], max_tokens=32)
    assert model.model_name == "served-qwen" and server.bodies[0]["max_tokens"] == 32
    assert reply.text == "[[5]]" and reply.usage.output_tokens == 3
    assert reply.usage.source == "provider" and reply.finish_reason == "stop"


def test_retries_429_and_5xx_and_connection_errors_then_succeeds():
    server = Server(
        [
            httpx.Response(429, headers={"retry-after": "0"}),
            httpx.Response(503),
            httpx.ConnectError("refused"),
        ]
    )
    assert _model(server).complete([Message("user", "q")]).text == "[[5]]"
    assert len(server.bodies) == 4
    server = Server([httpx.Response(500), httpx.Response(502)])
    reply = asyncio.run(_model(server).acomplete([Message("user", "q")], max_tokens=8))
    assert reply.usage.input_tokens == 12 and len(server.bodies) == 3


def test_a_client_error_is_not_retried_and_exhausted_retries_say_so():
    server = Server([httpx.Response(400, text="bad model")])
    with pytest.raises(ModelCallError, match="bad model"):
        _model(server).complete([Message("user", "q")])
    assert len(server.bodies) == 1
    server = Server([httpx.Response(503)] * 10)
    with pytest.raises(ModelCallError, match="after 2 retries"):
        _model(server, max_retries=2).complete([Message("user", "q")])


def test_load_model_takes_a_url_with_the_model_after_a_hash(monkeypatch):
    model = load_model("http://127.0.0.1:9/v1#my-model")
    assert isinstance(model, ServedModel) and model.model_name == "my-model"


def test_one_retry_layer_a_failing_server_gets_max_retries_plus_one_requests_per_item(tmp_path):
    from tale_shared.research.datasets import Item
    from tale_shared.research.search import BudgetSearch, load_results, search_dataset

    server = Server([httpx.Response(503)] * 100)
    model = _model(server, max_retries=2)
    out = tmp_path / "search.jsonl"
    item = Item(id="1", question="What is 2 + 3?", answer="5")
    asyncio.run(search_dataset(BudgetSearch(model, style="words"), [item], out, progress=False))
    # the model's policy retried the first call twice; the search did not retry it again
    assert len(server.bodies) == 3
    (result,) = load_results(out)
    assert "still failing after 2 retries" in (result.error or "")


def test_async_calls_share_one_pooled_client_per_loop():
    server = Server()
    model = _model(server)

    async def many():
        await asyncio.gather(*(model.acomplete([Message("user", "q")]) for _ in range(10)))
        return len(model._aclients)

    assert asyncio.run(many()) == 1 and len(server.bodies) == 10
