import asyncio

import pytest
from conftest import FakeLocal
from langchain_core.load import dumpd
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from lc_fakes import ESTIMATOR_MARK, UsageFakeChatModel

from langchain_tale import LangChainModel, TaleRunnable, TaleTracer
from langchain_tale._caps import cap_kwargs
from tale_shared.estimators import FixedBudgetEstimator, HeuristicEstimator, ZeroShotEstimator

Q = "Tom has 3 apples and buys 5 more. How many apples does he have?"
PROMPT = ChatPromptTemplate.from_messages(
    [("system", "You are a careful tutor."), ("human", "Solve this problem:\n{question}")]
)


def _answer_prompt(llm):
    return [msgs for msgs, _ in llm.seen if ESTIMATOR_MARK not in msgs[-1].text][-1]


def test_lcel_chain_just_works():
    llm = UsageFakeChatModel()
    chain = PROMPT | TaleRunnable(llm=llm, estimator="zero-shot") | StrOutputParser()
    assert chain.invoke({"question": Q}) == "3 + 5 = 8. [[8]]"
    sent = _answer_prompt(llm)
    assert sent[0].text == "You are a careful tutor."
    assert sent[-1].text.endswith("Let's think step by step and use less than 120 tokens.")


@pytest.mark.parametrize(
    "value",
    [
        Q,
        [HumanMessage(Q)],
        [("system", "Be brief."), ("human", Q)],
        {"question": Q},
        PROMPT.invoke({"question": Q}),
    ],
)
def test_every_input_form_is_budgeted(value):
    llm = UsageFakeChatModel()
    reply = TaleRunnable(llm=llm, estimator="fixed:90").invoke(value)
    assert reply.response_metadata["tale"]["budget"] == 90
    assert "use less than 90 tokens" in _answer_prompt(llm)[-1].text


def test_the_estimator_sees_the_question_not_the_template():
    llm = UsageFakeChatModel()
    TaleRunnable(llm=llm, prompt=PROMPT, estimator="zero-shot").invoke({"question": Q})
    estimator_prompt = llm.seen[0][0][-1].text
    assert ESTIMATOR_MARK in estimator_prompt and f'Question: "{Q}"' in estimator_prompt
    assert "Solve this problem" not in estimator_prompt
    assert "Solve this problem" in _answer_prompt(llm)[-1].text


def test_response_metadata_carries_the_budget():
    reply = TaleRunnable(llm=UsageFakeChatModel(), estimator="zero-shot").invoke(Q)
    tale = reply.response_metadata["tale"]
    assert tale["budget"] == 120 and tale["estimator"] == "zero-shot" and tale["style"] == "paper"
    assert tale["estimator_usage"]["output_tokens"] == 2 and tale["fallback_reason"] is None
    assert reply.response_metadata["model_name"] == "gpt-4o-mini"


def test_system_style_goes_into_the_system_message():
    llm = UsageFakeChatModel()
    TaleRunnable(llm=llm, estimator=FixedBudgetEstimator(70), style="system").invoke(
        [SystemMessage("Be exact."), HumanMessage(Q)]
    )
    sent = _answer_prompt(llm)
    assert sent[0].type == "system" and "70 tokens" in sent[0].text and sent[-1].text == Q


def test_an_unparseable_estimate_falls_back_and_says_so():
    llm = UsageFakeChatModel(estimate_reply="I am not sure.")
    tale = TaleRunnable(llm=llm, estimator="zero-shot").invoke(Q).response_metadata["tale"]
    assert tale["budget"] == 256 and "no number" in tale["fallback_reason"]


def test_any_core_estimator_and_the_string_specs():
    llm = UsageFakeChatModel()
    assert (
        TaleRunnable(llm=llm, estimator=HeuristicEstimator())
        .invoke(Q)
        .response_metadata["tale"]["estimator"]
        == "heuristic"
    )
    assert len(llm.seen) == 1  # no estimator call
    other = UsageFakeChatModel(estimate_reply="[[33]]")
    est = ZeroShotEstimator(LangChainModel(other))
    assert TaleRunnable(llm=llm, estimator=est).invoke(Q).response_metadata["tale"]["budget"] == 33
    with pytest.raises(ValueError):
        TaleRunnable(llm=llm, style="loud", estimator="zero-shot")


def test_empty_question_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        TaleRunnable(llm=UsageFakeChatModel(), estimator="zero-shot").invoke("   ")
    with pytest.raises(ValueError, match="'question' key"):
        TaleRunnable(llm=UsageFakeChatModel(), estimator="zero-shot").invoke({"q": Q})


async def test_ainvoke_batch_abatch():
    llm = UsageFakeChatModel()
    tale = TaleRunnable(llm=llm, estimator="zero-shot")
    assert (await tale.ainvoke(Q)).response_metadata["tale"]["budget"] == 120
    assert [m.text for m in tale.batch([Q, Q])] == ["3 + 5 = 8. [[8]]"] * 2
    assert len(await tale.abatch([Q, Q, Q])) == 3


def test_stream_passes_chunks_through_with_metadata_first():
    llm = UsageFakeChatModel(responses=["one two three [[3]]"])
    chunks = list(TaleRunnable(llm=llm, estimator="zero-shot").stream(Q))
    assert len(chunks) >= 4 and chunks[0].response_metadata["tale"]["budget"] == 120
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.text == "one two three [[3]]" and total.usage_metadata["output_tokens"] == 4


async def test_astream_and_the_custom_event():
    llm = UsageFakeChatModel(responses=["a b [[2]]"])
    chunks = [c async for c in TaleRunnable(llm=llm, estimator="zero-shot").astream(Q)]
    assert "".join(c.text for c in chunks) == "a b [[2]]"
    events = [
        e
        async for e in TaleRunnable(llm=llm, estimator="zero-shot").astream_events(Q, version="v2")
    ]
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert [e["name"] for e in custom] == ["tale_budget"] and custom[0]["data"]["budget"] == 120
    streamed = [e for e in events if e["event"] == "on_chat_model_stream"]
    assert streamed


def test_config_propagates_to_child_runs():
    collector = RunCollectorCallbackHandler()
    TaleRunnable(llm=UsageFakeChatModel(), estimator="zero-shot").invoke(
        Q,
        config={
            "callbacks": [collector],
            "tags": ["mine"],
            "metadata": {"user": "u1"},
            "run_name": "budgeted",
        },
    )
    (root,) = collector.traced_runs
    assert root.name == "budgeted" and "mine" in root.tags
    llm_runs = [r for r in root.child_runs if r.run_type == "llm"]
    assert len(llm_runs) == 2
    estimator, answer = sorted(llm_runs, key=lambda r: r.start_time)
    assert "tale:estimator" in estimator.tags and estimator.name == "tale_estimator"
    assert "tale:answer" in answer.tags and "mine" in answer.tags
    assert answer.extra["metadata"]["user"] == "u1"
    assert answer.extra["metadata"]["tale"]["budget"] == 120


def test_hard_cap_uses_each_providers_parameter():
    llm = UsageFakeChatModel()
    TaleRunnable(llm=llm, estimator="fixed:100", cap_headroom=1.5).invoke(Q)
    assert llm.seen[-1][1]["max_tokens"] == 150
    TaleRunnable(llm=llm, estimator="fixed:100").invoke(Q)
    assert "max_tokens" not in llm.seen[-1][1]  # off by default
    assert cap_kwargs(llm, None) == {}  # each provider's own: tests/test_provider_caps.py


def test_serializable_with_string_estimators():
    data = dumpd(TaleRunnable(llm=UsageFakeChatModel(), estimator="fixed:100", style="words"))
    assert data["id"] == ["langchain_tale", "runnable", "TaleRunnable"]
    assert data["kwargs"]["estimator"] == "fixed:100" and data["kwargs"]["style"] == "words"


def test_default_is_the_models_profile_method_with_no_estimator_call():
    llm = UsageFakeChatModel()
    reply = TaleRunnable(llm=llm).invoke(Q)
    tale = reply.response_metadata["tale"]
    assert (
        tale["method"] == "tale (tale-heuristic@paper; no profile)"
        and tale["estimator"] == "heuristic"
    )
    assert len(llm.seen) == 1  # the answer only: the default spends nothing on estimating


def test_methods_run_in_the_runnable():
    llm = UsageFakeChatModel()
    reply = TaleRunnable(llm=llm, method="tale-fixed:60@system+ex2+force1.5").invoke(Q)
    (messages, kwargs) = llm.seen[0]
    assert [m.type for m in messages] == ["system", "human", "ai", "human", "ai", "human"]
    assert "shorter than 60 tokens" in messages[0].text and kwargs["max_tokens"] == 90
    assert reply.response_metadata["tale"]["method"] == "tale-fixed:60@system+ex2+force1.5"
    vanilla = TaleRunnable(llm=llm, method="vanilla").invoke(Q)
    assert vanilla.response_metadata["tale"]["budget"] is None
    assert llm.seen[-1][0][-1].text == Q  # the baseline sends the user's words as written
    with pytest.raises(ValueError, match="early exit"):
        TaleRunnable(llm=llm, method="vanilla+exit")


class _CutFake(UsageFakeChatModel):
    """Stops at the cap (finish_reason "length") unless asked for the final answer."""

    def _reply(self, messages, kwargs):  # type: ignore[no-untyped-def]
        self.seen.append((messages, kwargs))
        return "[[8]]" if "final answer" in messages[-1].text else "Tom starts with 3 and"

    def _message_kwargs(self, messages, text):  # type: ignore[no-untyped-def]
        out = super()._message_kwargs(messages, text)
        reason = "stop" if text.startswith("[[") else "length"
        out["response_metadata"] = {**out.get("response_metadata", {}), "finish_reason": reason}
        return out


async def test_force_asks_for_the_answer_when_the_cap_cut_the_reply():
    llm = _CutFake()
    runnable = TaleRunnable(llm=llm, method="tale-fixed:20@words+force1.0")
    tracer = TaleTracer()
    reply = runnable.invoke(Q, config={"callbacks": [tracer]})
    assert reply.text.endswith("[[8]]") and reply.response_metadata["tale"]["forced"]
    (record,) = tracer.records
    assert record.n_calls == 2 and record.usage.output_tokens == 5 + 1
    assert llm.seen[1][1]["max_tokens"] == 12  # the forced answer is short
    chunks = [c async for c in runnable.astream(Q)]
    assert "".join(c.text for c in chunks).endswith("[[8]]")
    plain = TaleRunnable(llm=_CutFake(), method="tale-fixed:20@words").invoke(Q)
    assert not plain.text.endswith("[[8]]")  # no +force: the cut reply stays as it is


async def test_call_kwargs_reach_the_model_in_every_mode():
    llm = UsageFakeChatModel()
    runnable = TaleRunnable(llm=llm, estimator="fixed:60", cap_headroom=1.5)
    runnable.invoke(Q, stop=["\n"])
    await runnable.ainvoke(Q, stop=["\n"])
    list(runnable.stream(Q, stop=["\n"]))
    [c async for c in runnable.astream(Q, stop=["\n"])]
    runnable.bind(stop=["###"], max_tokens=40).invoke(Q)
    stops = [kwargs.get("stop") for _, kwargs in llm.seen]
    assert stops == [["\n"]] * 4 + [["###"]]
    assert [kwargs["max_tokens"] for _, kwargs in llm.seen] == [90] * 4 + [40]  # the smaller cap


async def test_local_chat_model_passes_stop_and_stops_generating_when_the_reader_leaves():
    from langchain_tale import ChatLocalLlama

    llm = ChatLocalLlama(model="smollm2-135m")
    fake = FakeLocal()
    llm._local = fake
    llm.invoke("hi", stop=["\n"], temperature=0.7)
    assert fake.kwargs == {"stop": ["\n"], "temperature": 0.7}
    stream = llm.astream("hi", stop=["END"])
    async for _ in stream:
        break
    await stream.aclose()  # what the event loop does when a left stream is collected
    import gc

    gc.collect()
    for _ in range(50):  # the inner generators close on the loop's next turns
        if fake.closed:
            break
        await asyncio.sleep(0.02)
    assert fake.kwargs["stop"] == ["END"]
    assert fake.closed and fake.made < 50  # not all 200: generation stopped


def test_estimator_objects_serialise_as_their_spec(tmp_path):
    from tale_shared.estimators import RegressionEstimator

    fixed = dumpd(TaleRunnable(llm=UsageFakeChatModel(), estimator=FixedBudgetEstimator(70)))
    assert fixed["kwargs"]["estimator"] == "fixed:70"
    fitted = RegressionEstimator().fit(["What is 2+2?", "A long question"] * 5, [40, 200] * 5)
    path = fitted.save(tmp_path / "est.json")
    data = dumpd(TaleRunnable(llm=UsageFakeChatModel(), estimator=fitted))
    assert data["kwargs"]["estimator"] == f"regression:{path}"


def test_structured_output_without_a_model_binding_says_what_to_do():
    from langchain_core.runnables import RunnableLambda

    class Unbound(UsageFakeChatModel):
        def with_structured_output(self, schema, **kwargs):  # type: ignore[no-untyped-def]
            return RunnableLambda(lambda x: x)

    with pytest.raises(NotImplementedError, match=r"prompt \| TaleRunnable"):
        TaleRunnable(llm=Unbound(), estimator="fixed:50").with_structured_output(dict)
