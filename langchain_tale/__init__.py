"""tale for LangChain: token-budget-aware reasoning as a drop-in runnable, plus cost tracing.

    from langchain_tale import TaleRunnable, TaleTracer

    chain = prompt | TaleRunnable(llm=model) | StrOutputParser()
    with TaleTracer() as tracer:
        chain.invoke({"question": "..."})
    print(tracer.summary())

Needs ``langchain-core``: ``pip install 'tale-reasoning[langchain]'``. Agent budgets live in
``langchain_tale.middleware`` (``pip install 'tale-reasoning[agents]'``).
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "langchain_tale needs langchain-core: pip install 'tale-reasoning[langchain]'"
    ) from exc

from langchain_tale.callbacks import TaleTracer
from langchain_tale.chat_models import ChatLocalLlama
from langchain_tale.model_adapter import LangChainModel, usage_from_message
from langchain_tale.runnable import TaleRunnable
from langchain_tale.tokenskip import TokenSkipRunnable

__all__ = [
    "ChatLocalLlama",
    "LangChainModel",
    "TaleRunnable",
    "TaleTracer",
    "TokenSkipRunnable",
    "usage_from_message",
]
