"""``TaleQueryEngine``: a ``TransformQueryEngine`` whose async path awaits the estimator."""

from __future__ import annotations

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.response.schema import RESPONSE_TYPE
from llama_index.core.query_engine import TransformQueryEngine
from llama_index.core.schema import QueryBundle

from llama_index_tale.query_transform import TaleQueryTransform


class TaleQueryEngine(TransformQueryEngine):
    """Wraps any query engine with a :class:`TaleQueryTransform`.

    The stock ``TransformQueryEngine.aquery`` calls the transform synchronously, which blocks
    the event loop for as long as the zero-shot estimator's model call takes; this engine
    awaits ``TaleQueryTransform.arun`` instead. Sync queries behave the same.

    Example:
        .. code-block:: python

            engine = TaleQueryEngine(index.as_query_engine(llm=llm), TaleQueryTransform(llm=llm))
            response = await engine.aquery("...")
            response.metadata["tale_budget"]
    """

    def __init__(
        self, query_engine: BaseQueryEngine, query_transform: TaleQueryTransform | None = None
    ) -> None:
        super().__init__(query_engine, query_transform or TaleQueryTransform())
        self._tale = self._query_transform

    @classmethod
    def class_name(cls) -> str:
        return "TaleQueryEngine"

    def _with_budget(self, response: RESPONSE_TYPE, metadata: dict[str, object]) -> RESPONSE_TYPE:
        response.metadata = {**(response.metadata or {}), **metadata}
        return response

    def _query(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        metadata: dict[str, object] = {}
        budgeted = self._query_transform.run(query_bundle, metadata=metadata)
        return self._with_budget(self._query_engine.query(budgeted), metadata)

    async def _aquery(self, query_bundle: QueryBundle) -> RESPONSE_TYPE:
        metadata: dict[str, object] = {}
        assert isinstance(self._query_transform, TaleQueryTransform)
        budgeted = await self._query_transform.arun(query_bundle, metadata=metadata)
        return self._with_budget(await self._query_engine.aquery(budgeted), metadata)
