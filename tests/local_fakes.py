"""The embedded model's stand-in for the framework wrappers (``ChatLocalLlama._local``,
``LocalLlamaLLM._local``): records every call and replies from a script."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tale_shared.models import Completion

ADD_CALL = '{"name": "add", "arguments": {"a": 1, "b": 2}}'
"""A bare call line, as llama.cpp writes Qwen's tool call without its special tokens."""


class ScriptedLocal:
    """Replies ``replies`` in turn, then ``then`` on every later call (a call past the script
    with no ``then`` fails the test) — or, with a function, ``replies(k)`` for the k-th call.
    ``calls`` holds each call's messages and options.

    >>> local = ScriptedLocal(["a"], then="b")
    >>> [local.complete([]).text for _ in range(3)]
    ['a', 'b', 'b']
    """

    model_name = "local/fake"

    def __init__(
        self, replies: Sequence[str] | Callable[[int], str] = (), then: str | None = None
    ) -> None:
        self.script = replies
        self.then = then
        self.calls: list[tuple[list[Any], dict[str, Any]]] = []

    @property
    def prompts(self) -> list[list[Any]]:
        return [messages for messages, _ in self.calls]

    @property
    def kwargs(self) -> list[dict[str, Any]]:
        return [options for _, options in self.calls]

    def complete(self, messages: Sequence[Any], **kwargs: Any) -> Completion:
        k = len(self.calls)
        self.calls.append((list(messages), kwargs))
        if callable(self.script):
            text = self.script(k)
        elif k < len(self.script):
            text = self.script[k]
        elif self.then is not None:
            text = self.then
        else:
            raise AssertionError(f"the script has {len(self.script)} replies; call {k + 1} came")
        return Completion(text=text, model=self.model_name)
