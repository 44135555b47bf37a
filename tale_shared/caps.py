"""Output caps: how big a hard cap is, which call parameters carry one, and what to do when a
provider returns more output tokens than the cap allowed.

A budget in the prompt is advice; a cap (``max_tokens`` and its relatives) is a limit only if
the provider reads the parameter it was sent in. Many OpenAI-compatible servers ignore
``max_completion_tokens``, some gateways drop unknown fields: the only proof is the provider's
own usage. Both tracers compare it with the cap after every capped call and mark the record;
:func:`warn_cap_exceeded` says so once per model.

Example:
    >>> hard_cap(100, 1.5)
    150
    >>> cap_from_params({"max_tokens": 512, "extra_body": {"max_tokens": 90}})
    90
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Mapping
from typing import Any

CAP_PARAMETERS = (
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "max_new_tokens",
    "num_predict",
)
"""Call parameters that cap output, by provider: OpenAI and most (``max_tokens``), OpenAI's
newer name, Gemini, Hugging Face, Ollama."""


class CapExceededWarning(UserWarning):
    """A provider returned more output tokens than the call's cap allowed."""


def check_cap_headroom(value: float | None) -> float | None:
    """``value`` if it is a usable cap headroom (a finite number of at least 1.0) or ``None``;
    ``ValueError`` otherwise — raised when an entry point is built, never at query time.

    >>> check_cap_headroom(1.5), check_cap_headroom(None)
    (1.5, None)
    >>> check_cap_headroom(float("nan"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: cap_headroom must be a finite number of at least 1.0 ... got nan
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"cap_headroom must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 1:
        raise ValueError(
            "cap_headroom must be a finite number of at least 1.0 (the cap is "
            f"ceil(budget * headroom)), got {value}"
        )
    return float(value)


def hard_cap(budget: int, headroom: float) -> int:
    """``max_tokens = ceil(budget * headroom)``: a cap with room above the prompted budget."""
    checked = check_cap_headroom(headroom)
    assert checked is not None
    return max(1, math.ceil(budget * checked))


def cap_from_params(*sources: Mapping[str, Any] | None) -> int | None:
    """The tightest output cap named in call parameters (a request's kwargs, a model's own
    settings, an ``extra_body``), or ``None`` when none caps the output."""
    caps: list[int] = []
    for params in sources:
        if not isinstance(params, Mapping):
            continue
        for key in CAP_PARAMETERS:
            value = params.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                caps.append(value)
        for nested in ("extra_body", "options", "generation_config"):
            inner = cap_from_params(params.get(nested))
            if inner is not None:
                caps.append(inner)
    return min(caps) if caps else None


_warned: set[str] = set()
_warned_lock = threading.Lock()


def cap_held(model: str | None, cap: int | None, output_tokens: int | None) -> bool:
    """Whether a call kept to its cap: ``False`` (and a :class:`CapExceededWarning`, once
    per model) when the provider reported more output tokens than ``cap``; ``True`` when it
    did not, or when there is no cap or no reported count to compare. Every entry point
    checks its calls through this one function."""
    if cap is None or output_tokens is None or output_tokens <= cap:
        return True
    warn_cap_exceeded(model, cap, output_tokens)
    return False


def warn_cap_exceeded(model: str | None, cap: int, output_tokens: int) -> None:
    """Warn, once per model, that its provider did not honour the cap."""
    name = model or "unknown model"
    with _warned_lock:
        if name in _warned:
            return
        _warned.add(name)
    warnings.warn(
        f"{name} returned {output_tokens} output tokens with a cap of {cap}: the provider "
        "ignored the cap parameter, so budgets are prompts only and cost is not bounded. "
        "Send the cap in the field the server reads (for an OpenAI-compatible server behind "
        "ChatOpenAI tale already adds max_tokens to the body; otherwise .bind(max_tokens=...) "
        "or the model's extra_body), or use a provider that honours it. Records carry "
        "cap_exceeded; summary() counts them.",
        CapExceededWarning,
        stacklevel=2,
    )
