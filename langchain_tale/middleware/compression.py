"""``TaleContextCompressionMiddleware``: an agent's history, compressed before each model call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AnyMessage, BaseMessage

from tale_shared.compression import ContextCompressor, ImportanceScorer, rule_scorer

_ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}


def _text(message: BaseMessage) -> str | None:
    """The message's text when its content is plain text, else None (passed through)."""
    return message.content if isinstance(message.content, str) and message.content else None


class TaleContextCompressionMiddleware(AgentMiddleware):
    """Compresses what each agent step re-sends — earlier reasoning and long tool results — to
    ``context_ratio`` of its tokens, with no extra model call (TokenSkip-style token dropping, see
    :class:`~tale_shared.compression.ContextCompressor`).

    The system prompt, the latest human message and the ``keep_recent`` latest tool results
    are sent whole; an AI message keeps its tool calls (only its text is compressed) and a tool
    message its ``tool_call_id``, so the tool-call structure stays valid. Content blocks other
    than plain text pass through. The agent's state is not changed: only what the model is
    sent.

    Example:
        .. code-block:: python

            from langchain.agents import create_agent
            from langchain_tale.middleware import TaleContextCompressionMiddleware

            agent = create_agent(
                model, tools=[search],
                middleware=[TaleContextCompressionMiddleware(context_ratio=0.5)],
            )
    """

    def __init__(
        self,
        *,
        context_ratio: float = 0.5,
        scorer: ImportanceScorer = rule_scorer,
        min_tokens: int = 64,
        keep_recent: int = 1,
    ) -> None:
        super().__init__()
        self.compressor = ContextCompressor(
            context_ratio, scorer=scorer, min_tokens=min_tokens, keep_recent=keep_recent
        )

    def compressed(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        """The messages as the model will get them."""
        roles = [_ROLES.get(m.type, m.type) for m in messages]
        texts = [_text(m) for m in messages]
        out = list(messages)
        for i in self.compressor.compressible(roles, texts):
            text = texts[i]
            assert text is not None  # compressible() only picks plain text
            out[i] = messages[i].model_copy(update={"content": self.compressor.compress(text)})
        return out

    def _request(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        messages: list[AnyMessage] = self.compressed(list(request.messages))  # type: ignore[assignment]
        return request.override(messages=messages)

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        return handler(self._request(request))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        return await handler(self._request(request))
