"""tale for LlamaIndex: a budget-injecting query transform, per-query cost tracing through the
instrumentation module, and a budget-aware LLM wrapper for agents.

    from llama_index_tale import TaleQueryEngine, TaleQueryTransform, TaleTracer

    transform = TaleQueryTransform(llm=llm)
    engine = TaleQueryEngine(index.as_query_engine(llm=llm), transform)
    with TaleTracer() as tracer:
        engine.query("...")
    print(tracer.summary())

Needs ``llama-index-core``: ``pip install 'tale-reasoning[llama-index]'``.
"""

from __future__ import annotations

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "llama_index_tale needs llama-index-core: pip install 'tale-reasoning[llama-index]'"
    ) from exc

from llama_index_tale.agents import TaleLLM
from llama_index_tale.compression import CompressingNodePostprocessor
from llama_index_tale.llm_adapter import (
    LlamaIndexModel,
    model_name_of,
    token_counter_for,
    usage_from_reply,
)
from llama_index_tale.llms import LocalLlamaLLM
from llama_index_tale.query_engine import TaleQueryEngine
from llama_index_tale.query_transform import TaleBudgetEvent, TaleQueryTransform
from llama_index_tale.tokenskip import TokenSkipQueryTransform
from llama_index_tale.tool_demo import tool_demo_history
from llama_index_tale.tracing import TaleTracer
from tale_shared.run_budget import TaleBudgetExceededError

__all__ = [
    "CompressingNodePostprocessor",
    "LlamaIndexModel",
    "LocalLlamaLLM",
    "TaleBudgetEvent",
    "TaleBudgetExceededError",
    "TaleLLM",
    "TaleQueryEngine",
    "TaleQueryTransform",
    "TaleTracer",
    "TokenSkipQueryTransform",
    "model_name_of",
    "token_counter_for",
    "tool_demo_history",
    "usage_from_reply",
]
