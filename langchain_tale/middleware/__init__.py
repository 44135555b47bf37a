"""Budgets and compressed context for LangChain agent steps (``create_agent`` middleware).

Needs ``langchain`` 1.x: ``pip install 'tale-reasoning[agents]'``.
"""

from __future__ import annotations

try:
    import langchain.agents.middleware  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "langchain_tale.middleware needs the langchain package (create_agent): "
        "pip install 'tale-reasoning[agents]'"
    ) from exc

from langchain_tale.middleware.budget import (
    TaleBudgetExceededError,
    TaleBudgetMiddleware,
    TaleBudgetState,
)
from langchain_tale.middleware.compression import TaleContextCompressionMiddleware

__all__ = [
    "TaleBudgetExceededError",
    "TaleBudgetMiddleware",
    "TaleBudgetState",
    "TaleContextCompressionMiddleware",
]
