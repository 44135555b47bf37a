"""Budget forcing is decided in one place: a reply cut at its cap, in any provider's words,
gets its final answer forced through every entry point that runs a method."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_chat_callback
from pydantic import Field

from langchain_tale import TaleRunnable
from langchain_tale.model_adapter import LangChainModel
from llama_index_tale.llm_adapter import LlamaIndexModel
from tale_shared.pipeline import TalePipeline

METHOD = "tale-fixed:40@paper+force1.5"
CUT = "Let me work it out step by step: first 3 plus"

# how each provider says "cut by the cap", as LangChain chat models report it
LANGCHAIN_REASONS = {
    "openai": {"finish_reason": "length"},
    "anthropic": {"stop_reason": "max_tokens"},
    "gemini": {"finish_reason": "MAX_TOKENS"},
    "bedrock": {"stopReason": "max_tokens"},
    "ollama": {"done_reason": "length"},
}


class StreamingFake(GenericFakeChatModel):
    """Streams each reply as one chunk that keeps its metadata, as providers send the
    finish reason with the last chunk."""

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        message = next(self.messages)
        chunk = AIMessageChunk(content=message.content, response_metadata=message.response_metadata)
        yield ChatGenerationChunk(message=chunk)


def _lc_model(metadata: dict[str, Any]) -> GenericFakeChatModel:
    cut = AIMessage(content=CUT, response_metadata=metadata)
    return StreamingFake(messages=iter([cut, AIMessage(content="[[8]]")]))


@pytest.mark.parametrize("provider", LANGCHAIN_REASONS)
def test_tale_pipeline_on_a_langchain_model_forces(provider):
    model = LangChainModel(_lc_model(LANGCHAIN_REASONS[provider]))
    result = TalePipeline(model, method=METHOD).solve("What is 3 + 5?")
    assert result.cut and result.forced and result.answer == "8"
    assert [c.role for c in result.record.calls] == ["answer", "forced"]


@pytest.mark.parametrize("provider", LANGCHAIN_REASONS)
def test_tale_runnable_forces_on_invoke_and_stream(provider):
    runnable = TaleRunnable(llm=_lc_model(LANGCHAIN_REASONS[provider]), method=METHOD)
    reply = runnable.invoke("What is 3 + 5?")
    assert reply.response_metadata["tale"]["forced"] and reply.text.endswith("[[8]]")
    runnable = TaleRunnable(llm=_lc_model(LANGCHAIN_REASONS[provider]), method=METHOD)
    streamed = "".join(chunk.text for chunk in runnable.stream("What is 3 + 5?"))
    assert streamed.endswith("[[8]]")


def test_a_reply_that_ended_on_its_own_is_not_forced():
    model = LangChainModel(_lc_model({"finish_reason": "stop"}))
    result = TalePipeline(model, method=METHOD).solve("What is 3 + 5?")
    assert not result.forced and len(result.record.calls) == 1


class CutLlamaIndexLLM(MockLLM):
    """A LlamaIndex LLM whose first reply is cut, said in its raw response."""

    raw_reason: dict[str, Any] = Field(default_factory=dict)
    replies: list[str] = Field(default_factory=list)

    def __init__(self, **kwargs: Any) -> None:  # MockLLM's own init takes only its fields
        mine = {k: kwargs.pop(k) for k in ("raw_reason", "replies") if k in kwargs}
        super().__init__(**kwargs)
        for key, value in mine.items():
            setattr(self, key, value)

    @llm_chat_callback()
    def chat(self, messages, **kwargs: Any) -> ChatResponse:
        text = self.replies.pop(0)
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
            raw=self.raw_reason if text == CUT else {},
        )

    @llm_chat_callback()
    def stream_chat(self, messages, **kwargs: Any):
        text = self.replies.pop(0)
        message = ChatMessage(role=MessageRole.ASSISTANT, content=text)
        raw = self.raw_reason if text == CUT else {}

        def chunks():
            yield ChatResponse(message=message, delta=text, raw=raw)

        return chunks()


@pytest.mark.parametrize(
    "raw",
    [
        {"choices": [{"finish_reason": "length"}]},  # OpenAI-like
        {"stop_reason": "max_tokens"},  # Anthropic
        {"candidates": [], "finish_reason": "MAX_TOKENS"},  # Gemini
    ],
    ids=["openai", "anthropic", "gemini"],
)
def test_tale_pipeline_on_a_llamaindex_llm_forces(raw):
    llm = CutLlamaIndexLLM(raw_reason=raw, replies=[CUT, "[[8]]"])
    result = TalePipeline(LlamaIndexModel(llm), method=METHOD).solve("What is 3 + 5?")
    assert result.cut and result.forced and result.answer == "8"


def test_tale_llm_complete_is_a_chat_step_forced_and_logged():
    from llama_index_tale import TaleLLM

    raw = {"choices": [{"finish_reason": "length"}]}
    tale = TaleLLM(llm=CutLlamaIndexLLM(raw_reason=raw, replies=[CUT, "[[8]]"]), method=METHOD)
    with tale.run() as ledger:
        reply = tale.complete("What is 3 + 5?")
    assert reply.text.endswith("[[8]]") and reply.additional_kwargs["tale"]["forced"]
    assert len(ledger.steps) == 1 and ledger.steps[0].budget == 40  # the step is logged
    streamed = TaleLLM(llm=CutLlamaIndexLLM(raw_reason=raw, replies=[CUT, "[[8]]"]), method=METHOD)
    assert list(streamed.stream_complete("What is 3 + 5?"))[-1].text.endswith("[[8]]")
