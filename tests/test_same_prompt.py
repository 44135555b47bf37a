"""One method, one prompt: every entry point sends the same messages for the same input.

The rule (:func:`tale_shared.prompts.conversation_prompt`): the style's sentence where its
placement says, the exemplar turns after the system message. The pipeline asks a bare
benchmark question, so its last user message also carries the chain-of-thought cue and the
answer-format line; everything before it is the same as the adapters'.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents.middleware import ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from llama_index.core.llms import ChatMessage, MessageRole

from langchain_tale import TaleRunnable
from langchain_tale.middleware import TaleBudgetMiddleware
from llama_index_tale import TaleLLM, TaleQueryTransform
from tale_shared.methods import load_exemplars
from tale_shared.pipeline import TalePipeline
from tale_shared.prompts import COT_CUE, get_style
from tests.lc_fakes import UsageFakeChatModel
from tests.li_fakes import UsageMockLLM

Q = "Tom has 3 apples and buys 5 more. How many apples does he have?"
SYSTEM = "You are a careful assistant."
METHODS = [
    "tale-fixed:40@system+ex2",
    "tale-fixed:40@words+ex1",
    "tale-fixed:40@concise+ex2",
    "tale-fixed:40@paper",
    "chain-of-draft+ex1",
    "vanilla+ex3",
]
Turn = tuple[str, str]
EARLIER = [("user", "What is 2 + 2?"), ("assistant", "2 + 2 = 4. [[4]]")]
"""An earlier exchange in the conversation: the exemplars still go after the system message."""
KINDS = ["bare", "system", "history"]


def _lc(messages: list[BaseMessage]) -> list[Turn]:
    role = {"system": "system", "human": "user", "ai": "assistant"}
    return [(role[m.type], m.text) for m in messages]


def _li(messages: list[ChatMessage]) -> list[Turn]:
    return [(str(m.role.value), m.content or "") for m in messages]


def _lc_history(kind: str) -> list[BaseMessage]:
    made = {"user": HumanMessage, "assistant": AIMessage}
    return [made[role](text) for role, text in EARLIER] if kind == "history" else []


def through_runnable(method: str, kind: str) -> list[Turn]:
    llm = UsageFakeChatModel()
    conversation: list[BaseMessage] = [SystemMessage(SYSTEM)] if kind != "bare" else []
    conversation += _lc_history(kind)
    TaleRunnable(llm=llm, method=method).invoke([*conversation, HumanMessage(Q)])
    return _lc(llm.seen[-1][0])


def through_middleware(method: str, kind: str) -> list[Turn]:
    seen: list[ModelRequest[Any]] = []

    def handler(request: ModelRequest[Any]) -> ModelResponse[Any]:
        seen.append(request)
        return ModelResponse(result=[AIMessage("[[8]]")])

    request = ModelRequest(
        model=UsageFakeChatModel(),
        messages=[*_lc_history(kind), HumanMessage(Q)],
        system_message=SystemMessage(SYSTEM) if kind != "bare" else None,
        state={"messages": []},  # type: ignore[typeddict-item]
    )
    TaleBudgetMiddleware(method=method).wrap_model_call(request, handler)
    sent = seen[-1]
    head = [sent.system_message] if sent.system_message else []
    return _lc([*head, *sent.messages])


def through_tale_llm(method: str, kind: str) -> list[Turn]:
    inner = UsageMockLLM()
    conversation = [ChatMessage(role=MessageRole.SYSTEM, content=SYSTEM)] if kind != "bare" else []
    if kind == "history":
        conversation += [ChatMessage(role=MessageRole(r), content=t) for r, t in EARLIER]
    TaleLLM(llm=inner, method=method).chat(
        [*conversation, ChatMessage(role=MessageRole.USER, content=Q)]
    )
    return _li(inner.seen[-1])


ADAPTERS = [through_runnable, through_middleware, through_tale_llm]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_adapter_sends_one_prompt_for_one_method(method: str, kind: str) -> None:
    sent = {adapter.__name__: adapter(method, kind) for adapter in ADAPTERS}
    first = sent["through_runnable"]
    for name, messages in sent.items():
        assert messages == first, name
    # and it is the rule: exemplars after the system message, the question last
    k = int(method.rpartition("+ex")[2]) if "+ex" in method else 0
    shots = load_exemplars()[:k]
    answers = [text for role, text in first if role == "assistant"]
    earlier = [EARLIER[1][1]] if kind == "history" else []
    assert answers == [ex.reasoning for ex in shots] + earlier
    assert first[-1][0] == "user" and first[-1][1].startswith(Q)
    lead = 1 if first[0][0] == "system" else 0
    assert first[lead : lead + 2 * k : 2] == [
        ("user", m[1]) for m in first[lead : lead + 2 * k : 2]
    ]
    if kind != "bare":
        assert first[0][1].startswith(SYSTEM)
    if kind == "history":  # the earlier exchange stays whole, right before the question
        assert first[-3:-1] == EARLIER


@pytest.mark.parametrize("method", METHODS)
def test_the_pipeline_asks_the_same_prompt_around_a_bare_question(method: str) -> None:
    """The pipeline's prompt is the adapters' for the question alone, except that its
    question also carries the benchmark's cue and answer line."""
    adapters = through_runnable(method, "bare")
    pipeline = TalePipeline(UsageFakeModelForPipeline(), method=method)
    budget = pipeline.estimator.estimate(Q) if pipeline.estimator else None
    core = [(m.role, m.content) for m in pipeline.messages(Q, budget)]
    assert core[:-1] == adapters[:-1]  # system message and exemplar turns, to the letter
    assert core[-1][0] == adapters[-1][0] == "user"
    style = pipeline.style
    if style.uses_budget and style.placement == "user":
        assert style.instruction(40) in core[-1][1] and style.instruction(40) in adapters[-1][1]
    assert core[-1][1].startswith(Q) and adapters[-1][1].startswith(Q)
    if style.name in ("vanilla", "system"):
        assert COT_CUE in core[-1][1] and COT_CUE not in adapters[-1][1]


@pytest.mark.parametrize(
    "method", ["tale-fixed:40@words", "tale-fixed:40@system", "tale-fixed:40@concise"]
)
def test_the_query_transform_words_a_query_as_the_adapters_do(method: str) -> None:
    """A query string has no system message: what the style puts there leads the query."""
    adapters = through_runnable(method, "bare")
    query = TaleQueryTransform(llm=UsageMockLLM(), method=method).run(Q).query_str
    assert query == "\n\n".join(text for _, text in adapters)
    style = get_style(method.partition("@")[2])
    assert style.instruction(40) in query


class UsageFakeModelForPipeline:
    """The least a pipeline needs to build its prompt (no call is made)."""

    model_name = "gpt-4o-mini"

    def complete(self, messages: Any, *, max_tokens: int | None = None) -> Any:
        raise AssertionError("no call expected")

    async def acomplete(self, messages: Any, *, max_tokens: int | None = None) -> Any:
        raise AssertionError("no call expected")
