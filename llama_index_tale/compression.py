"""Compressed context for LlamaIndex: retrieved nodes and agent chat history, to a ratio."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from tale_shared.compression import ContextCompressor, ImportanceScorer, rule_scorer


def _text(message: ChatMessage) -> str | None:
    """Plain-text content only: a message with other blocks (images, tool calls) passes."""
    if any(type(b).__name__ != "TextBlock" for b in message.blocks):
        return None
    return message.content or None


def compressed_history(
    messages: Sequence[ChatMessage], compressor: ContextCompressor
) -> list[ChatMessage]:
    """An agent's chat history with its older assistant, tool and user texts compressed (see
    :class:`~tale_shared.compression.ContextCompressor` for what is never touched)."""
    roles = [m.role.value for m in messages]
    texts = [_text(m) for m in messages]
    out = list(messages)
    for i in compressor.compressible(roles, texts):
        text = texts[i]
        assert text is not None  # compressible() only picks plain text
        out[i] = messages[i].model_copy(update={"blocks": []})
        out[i].content = compressor.compress(text)
    return out


class CompressingNodePostprocessor(BaseNodePostprocessor):
    """Compresses each retrieved node's text to ``context_ratio`` of its tokens before
    synthesis, with no model call (TokenSkip-style token dropping; numbers and equations are
    kept whole). Nodes that are not text, or shorter than ``min_tokens``, pass through; the
    index is not changed (each node is a copy).

    Example:
        .. code-block:: python

            engine = index.as_query_engine(
                llm=llm, node_postprocessors=[CompressingNodePostprocessor(context_ratio=0.6)]
            )
    """

    context_ratio: float = Field(
        default=0.5, gt=0, le=1, description="the share of each node's tokens kept"
    )
    min_tokens: int = Field(default=32, ge=0)
    scorer: Any = Field(default=rule_scorer, exclude=True)
    _compressor: ContextCompressor = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        scorer: ImportanceScorer = self.scorer
        self._compressor = ContextCompressor(
            self.context_ratio, scorer=scorer, min_tokens=self.min_tokens, keep_recent=0
        )

    @classmethod
    def class_name(cls) -> str:
        return "CompressingNodePostprocessor"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        out = []
        for item in nodes:
            node = item.node
            if isinstance(node, TextNode) and self._compressor.compressible(["tool"], [node.text]):
                node = node.model_copy(update={"text": self._compressor.compress(node.text)})
            out.append(NodeWithScore(node=node, score=item.score))
        return out
