"""tale for LangChain: token-budget-aware reasoning as a drop-in runnable, plus cost tracing.

    from langchain_tale import TaleRunnable, TaleTracer

    chain = prompt | TaleRunnable(llm=model) | StrOutputParser()
    with TaleTracer() as tracer:
        chain.invoke({"question": "..."})
    print(tracer.summary())

Needs ``langchain-core``: ``pip install 'tale-reasoning[langchain]'``. The agent middleware
(``TaleBudgetMiddleware``, ``TaleContextCompressionMiddleware``) is importable from here too,
loaded on first use: it needs ``langchain`` (``pip install 'tale-reasoning[agents]'``).
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
from langchain_tale.model_adapter import (
    LangChainModel,
    model_name_of,
    token_counter_for,
    usage_from_reply,
)
from langchain_tale.runnable import TaleRunnable
from langchain_tale.tokenskip import TokenSkipRunnable
from langchain_tale.tool_demo import tool_demo_messages

_MIDDLEWARE = (
    "TaleBudgetExceededError",
    "TaleBudgetMiddleware",
    "TaleBudgetState",
    "TaleContextCompressionMiddleware",
)


def __getattr__(name: str) -> object:
    """The agent middleware, imported when first asked for (it needs ``langchain``; the
    ImportError says which extra to install)."""
    if name in _MIDDLEWARE:
        import langchain_tale.middleware as middleware

        return getattr(middleware, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ChatLocalLlama",
    "LangChainModel",
    "TaleBudgetExceededError",
    "TaleBudgetMiddleware",
    "TaleBudgetState",
    "TaleContextCompressionMiddleware",
    "TaleRunnable",
    "TaleTracer",
    "TokenSkipRunnable",
    "model_name_of",
    "token_counter_for",
    "tool_demo_messages",
    "usage_from_reply",
]
