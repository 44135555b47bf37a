"""Budgets for LangChain agent steps (``langchain.agents.create_agent`` middleware).

Needs ``langchain`` 1.x: ``pip install 'tale[agents]'``.
"""

from __future__ import annotations

try:
    import langchain.agents.middleware  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "langchain_tale.middleware needs the langchain package (create_agent): "
        "pip install 'tale[agents]'"
    ) from exc

from langchain_tale.middleware.budget import (
    TaleBudgetExceededError,
    TaleBudgetMiddleware,
    TaleBudgetState,
)

__all__ = ["TaleBudgetExceededError", "TaleBudgetMiddleware", "TaleBudgetState"]
