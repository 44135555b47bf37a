"""Optional dependencies, imported when first needed."""

from __future__ import annotations

import importlib
from typing import Any


def require(module: str, message: str) -> Any:
    """``module``, imported; or an ImportError with ``message`` (what to install).

    >>> require("json", "never shown").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(message) from exc
