"""Optional dependencies, imported when first needed."""

from __future__ import annotations

import importlib
import sys
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


def is_instance_of(obj: Any, module: str, name: str) -> bool:
    """Whether ``obj`` is an instance of ``module.name`` — without importing ``module``: a
    class that was never imported has no instances (how the adapters tell provider classes
    apart without making their packages dependencies).

    >>> is_instance_of({}, "builtins", "dict"), is_instance_of({}, "not.imported", "X")
    (True, False)
    """
    cls = getattr(sys.modules.get(module), name, None)
    return isinstance(cls, type) and isinstance(obj, cls)
