"""``TokenSkipQueryTransform``: a query in TokenSkip's layout for a TokenSkip-tuned LLM."""

from __future__ import annotations

import dataclasses
from typing import Any

from llama_index.core.indices.query.query_transform.base import BaseQueryTransform
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.prompts.mixin import PromptDictType
from llama_index.core.schema import QueryBundle, QueryType

from llama_index_tale.query_transform import TaleBudgetEvent
from tale_shared._validation import require_question
from tale_shared.compression import RATIOS, check_trained_ratio
from tale_shared.methods import TOKENSKIP_STYLE, Method

dispatcher = get_dispatcher(__name__)


class TokenSkipQueryTransform(BaseQueryTransform):
    """Word the query as TokenSkip's training data did (question, separator, ``gamma``,
    separator; :func:`~tale_shared.compression.tokenskip_prompt`, the one formatter the
    export uses too), for an LLM tuned with ``tale export tokenskip`` data. Retrieval still
    embeds the original question. ``gamma`` must be one of ``trained_ratios``.

    Use it in a ``TransformQueryEngine`` (or ``TaleQueryEngine``); the query's metadata gets
    ``metadata["tale"]`` (``method``, ``gamma``), and :class:`~llama_index_tale.TaleTracer`
    records the query like a TALE one.

    Example:
        .. code-block:: python

            engine = TransformQueryEngine(
                index.as_query_engine(llm=tokenskip_llm), TokenSkipQueryTransform(gamma=0.6)
            )
    """

    def __init__(self, gamma: float = 0.5, trained_ratios: tuple[float, ...] = RATIOS) -> None:
        super().__init__()
        self.gamma = check_trained_ratio(gamma, trained_ratios)
        self.trained_ratios = tuple(trained_ratios)

    @classmethod
    def class_name(cls) -> str:
        return "TokenSkipQueryTransform"

    def _get_prompts(self) -> PromptDictType:
        return {}

    def _update_prompts(self, prompts: PromptDictType) -> None:
        pass

    def run(
        self, query_bundle_or_str: QueryType, metadata: dict[str, Any] | None = None
    ) -> QueryBundle:
        if isinstance(query_bundle_or_str, str):
            bundle = QueryBundle(query_str=query_bundle_or_str)
        elif isinstance(query_bundle_or_str, QueryBundle):
            bundle = query_bundle_or_str
        else:
            raise TypeError("TokenSkipQueryTransform takes a query string or a QueryBundle")
        return self._run(bundle, metadata if metadata is not None else {})

    def _run(self, query_bundle: QueryBundle, metadata: dict[str, Any]) -> QueryBundle:
        require_question(query_bundle.query_str)
        tokenskip = Method(style=TOKENSKIP_STYLE, gamma=self.gamma)
        method = tokenskip.spec
        metadata["tale"] = {"method": method, "gamma": self.gamma, "style": TOKENSKIP_STYLE}
        dispatcher.event(
            TaleBudgetEvent(
                question=query_bundle.query_str,
                budget=None,
                estimator=None,
                style=TOKENSKIP_STYLE,
                method=method,
            )
        )
        return dataclasses.replace(
            query_bundle,
            query_str=tokenskip.question_text(query_bundle.query_str),
            custom_embedding_strs=list(query_bundle.embedding_strs),
        )
