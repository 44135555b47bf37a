"""LangChain's standard test suites for ``ChatLocalLlama``: the unit tests (construction,
serialisation, binding tools, structured output, init from env), and on the real embedded
test model the integration tests that apply to a small local model (each skip says why)."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_tests")

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_tale import ChatLocalLlama


class TestChatLocalLlamaUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatLocalLlama]:
        return ChatLocalLlama

    @property
    def chat_model_params(self) -> dict:
        return {"model": "smollm2-135m", "n_threads": 1}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True


from langchain_tests.integration_tests import ChatModelIntegrationTests  # noqa: E402

NO_TOOLS = (
    "SmolLM2-135M, the 93 MB model CI runs, does not follow a tool or JSON schema (it writes "
    "prose); ChatLocalLlama's tool and structured-output bindings pass the unit suite above, "
    "and tool use on the default 1.5B model is measured by tale agent-bench"
)


@pytest.mark.real_model
class TestChatLocalLlamaIntegration(ChatModelIntegrationTests):
    """On the real SmolLM2-135M test model (a few seconds a call on 2 cores): invoke, stream,
    batch, async, usage metadata, stop words, message histories. Tool calling and structured
    output are skipped with the reason in :data:`NO_TOOLS`; the suite's own skips (images,
    audio, PDFs, JSON mode, a second model to override with, VCR) name theirs."""

    @property
    def chat_model_class(self) -> type[ChatLocalLlama]:
        return ChatLocalLlama

    @property
    def chat_model_params(self) -> dict:
        return {"model": "smollm2-135m", "n_threads": 2, "max_tokens": 24}

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def has_tool_calling(self) -> bool:
        return False  # see NO_TOOLS

    @property
    def has_structured_output(self) -> bool:
        return False  # see NO_TOOLS


for _name in dir(ChatModelIntegrationTests):
    media = any(part in _name for part in ("image", "pdf", "audio"))  # the suite's own skips
    if (
        _name.startswith("test_")
        and not media
        and any(part in _name for part in ("tool", "structured_output", "agent_loop"))
    ):
        setattr(
            TestChatLocalLlamaIntegration,
            _name,
            pytest.mark.skip(reason=NO_TOOLS)(getattr(ChatModelIntegrationTests, _name)),
        )


# -- LlamaIndex's LLM contract for LocalLlamaLLM (LlamaIndex ships no standard suite) ---------
@pytest.mark.real_model
async def test_local_llama_llm_meets_llama_indexs_llm_contract():
    from llama_index.core.base.llms.types import (
        ChatMessage,
        ChatResponse,
        CompletionResponse,
        LLMMetadata,
    )

    from llama_index_tale import LocalLlamaLLM

    llm = LocalLlamaLLM(model="smollm2-135m", max_tokens=12)
    meta = llm.metadata
    assert isinstance(meta, LLMMetadata) and meta.is_chat_model and meta.num_output == 12
    assert meta.context_window > 0 and meta.model_name
    messages = [ChatMessage(role="user", content="Say hello.")]

    def usage_of(response):
        usage = (response.raw or {}).get("usage") or response.additional_kwargs
        return usage.get("completion_tokens") or usage.get("output_tokens")

    chat = llm.chat(messages)
    assert isinstance(chat, ChatResponse) and chat.message.content and usage_of(chat)
    done = llm.complete("Say hello.")
    assert isinstance(done, CompletionResponse) and done.text
    assert (await llm.achat(messages)).message.content == chat.message.content  # greedy
    assert (await llm.acomplete("Say hello.")).text == done.text
    pieces = list(llm.stream_chat(messages))
    assert pieces and pieces[-1].message.content == chat.message.content
    assert "".join(p.delta or "" for p in pieces) == chat.message.content
    streamed = list(llm.stream_complete("Say hello."))
    assert streamed and streamed[-1].text == done.text
    apieces = [p async for p in await llm.astream_chat(messages)]
    assert apieces[-1].message.content == chat.message.content
    acompleted = [p async for p in await llm.astream_complete("Say hello.")]
    assert acompleted[-1].text == done.text
