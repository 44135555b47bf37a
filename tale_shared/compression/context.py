"""Compressed context for agent loops: which messages of a history to compress, and the
compression itself, cached and safe.

Every agent step re-sends the run so far as input: earlier reasoning and long tool
observations. :class:`ContextCompressor` shrinks that history to a ratio with no extra model
call. The adapters (``langchain_tale.middleware.TaleContextCompressionMiddleware``,
``llama_index_tale``'s ``TaleLLM(context_ratio=...)`` and ``CompressingNodePostprocessor``)
only map their message types onto ``(role, text)`` pairs.

What is never compressed: the system prompt, the latest user message, the ``keep_recent``
latest tool results (what the model is about to read), texts shorter than ``min_tokens``, and
anything that is not plain text (content blocks, tool-call arguments: passed through as they
are). A scorer that fails leaves the text whole and warns once: a prompt is never broken.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence

from tale_shared.compression.core import ScorerError, check_ratio, compress
from tale_shared.compression.scorers import ImportanceScorer, rule_scorer

COMPRESSIBLE_ROLES = ("assistant", "tool", "user")


class ContextCompressor:
    """Compress the older parts of an agent's history to ``ratio`` of their tokens.

    Example:
        >>> c = ContextCompressor(ratio=0.5, min_tokens=1)
        >>> roles = ["system", "user", "assistant", "tool", "tool"]
        >>> c.compressible(roles, ["sys", "task", "long reasoning ...", "old result", "new"])
        [2, 3]
    """

    def __init__(
        self,
        ratio: float = 0.5,
        *,
        scorer: ImportanceScorer = rule_scorer,
        min_tokens: int = 64,
        keep_recent: int = 1,
        count: Callable[[str], int] | None = None,
        cache_size: int = 512,
    ) -> None:
        self.ratio = check_ratio(ratio)
        self.scorer = scorer
        self.min_tokens = min_tokens
        self.keep_recent = keep_recent
        self.count = count
        self.cache_size = cache_size
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._warned = False

    def _tokens(self, text: str) -> int:
        if self.count is not None:
            return self.count(text)
        from tale_shared.tokens import count_tokens

        return count_tokens(text)

    def compressible(self, roles: Sequence[str], texts: Sequence[str | None]) -> list[int]:
        """Indices of the messages to compress (``texts[i]`` is None for non-text content)."""
        last_user = max((i for i, r in enumerate(roles) if r == "user"), default=-1)
        tool_indices = [i for i, r in enumerate(roles) if r == "tool"]
        recent_tools = set(tool_indices[-self.keep_recent :]) if self.keep_recent else set()
        picked = []
        for i, (role, text) in enumerate(zip(roles, texts, strict=True)):
            if role not in COMPRESSIBLE_ROLES or text is None or i == last_user:
                continue
            if i in recent_tools:
                continue
            # the user's own words after the latest one are not ours to cut either
            if role == "user" and i > last_user:
                continue
            if self._tokens(text) >= self.min_tokens:
                picked.append(i)
        return picked

    def compress(self, text: str) -> str:
        """``text`` at the ratio (cached per text); the text whole if the scorer fails."""
        with self._lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
        try:
            out = compress(text, self.ratio, self.scorer, count=self.count)
        except ScorerError as exc:
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"context compression skipped, the scorer failed: {exc}", stacklevel=2
                )
            return text
        with self._lock:
            self._cache[text] = out
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out
