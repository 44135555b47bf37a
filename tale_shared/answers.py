"""Final-answer extraction, normalisation and grading — one grader for everything.

Example:
    >>> extract_answer("5 + 7 = 12, so [[12]]")
    '12'
    >>> is_correct("The total is $1,200.00", "1200")
    True
"""

from __future__ import annotations

import logging
import re
import threading
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

_BRACKETS = re.compile(r"\[\[\s*(.+?)\s*\]\]", re.S)
_HASHES = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*\$?\s*([-+]?[\d,]*\.?\d+)", re.I
)
_NUMBER = re.compile(r"[-+]?\$?\s?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")


def _boxed_contents(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` / ``\\fbox{...}``, with nested braces balanced."""
    found = []
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    found.append(text[start:i].strip())
                    break
    return found


def bracketed_answer(text: str | None) -> str | None:
    """The last ``[[...]]`` answer in ``text``, or ``None`` (a reply with one needs no forced
    answer).

    >>> bracketed_answer("3 + 5 = 8 [[8]]"), bracketed_answer("3 + 5 = 8")
    ('8', None)
    """
    found = _BRACKETS.findall(text or "")
    return found[-1] if found else None


def extract_answer(text: str | None) -> str | None:
    """The final answer in a model's reply, or ``None`` when there is none.

    Looks, in order, for the last ``[[...]]``, the last ``\\boxed{...}``, text after
    ``####``, "the answer is X", and finally the last number in the text.
    """
    if not text:
        return None
    for finder in (
        lambda t: _BRACKETS.findall(t),
        _boxed_contents,
        lambda t: _HASHES.findall(t),
        lambda t: _ANSWER_IS.findall(t),
    ):
        hits = [h.strip() for h in finder(text) if h.strip()]
        if hits:
            return hits[-1]
    numbers = _NUMBER.findall(text)
    return numbers[-1].strip() if numbers else None


def normalize_number(value: str) -> Decimal | None:
    """Parse ``"$1,200.00"``, ``"72.0"``, ``"50%"``, ``"3/4"`` or ``"\\frac{3}{4}"`` to a number."""
    text = value.strip()
    text = re.sub(r"^\\text\{(.*)\}$", r"\1", text)
    text = text.replace("\\$", "").replace("$", "").replace(",", "").replace("\\%", "")
    text = text.replace("%", "").replace("\\!", "").strip()
    text = re.sub(r"\s*(?:dollars?|units?|cents?)\.?$", "", text, flags=re.I).rstrip(".").strip()
    frac = re.fullmatch(r"\\d?frac\{(-?\d+)\}\{(-?\d+)\}|(-?\d+)\s*/\s*(-?\d+)", text)
    try:
        if frac:
            num, den = (g for g in frac.groups() if g is not None)
            return Decimal(num) / Decimal(den) if Decimal(den) != 0 else None
        return Decimal(text)
    except (InvalidOperation, ValueError):
        return None


def normalize_answer(value: str | None) -> str | None:
    """A canonical string for an answer: numbers as plain decimals (``72.0`` -> ``72``)."""
    if value is None:
        return None
    number = normalize_number(value)
    if number is not None:
        if number == number.to_integral_value():
            return str(int(number))
        return format(number.normalize(), "f")
    return re.sub(r"\s+", "", value).strip("$. ").lower() or None


class _DropTimeoutNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


@lru_cache(maxsize=1)
def _math_verify() -> tuple[Any, Any] | None:
    try:
        from math_verify import parse, verify
    except Exception:  # pragma: no cover - math-verify is a core dependency
        return None
    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_DropTimeoutNotice())
    return parse, verify


def _latex_equal(predicted: str, gold: str) -> bool:
    funcs = _math_verify()
    if funcs is None:
        return False
    parse, verify = funcs
    # math-verify's timeouts use SIGALRM, which works only in the main thread; elsewhere
    # (worker threads of batches and async runs) parse without one.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=timeout)
        pred_parsed = parse(f"${predicted}$", parsing_timeout=timeout)
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))
    except Exception:
        return False


def answers_match(predicted: str | None, gold: str | None, *, rel_tol: float = 1e-6) -> bool:
    """Compare two extracted answers: numerically when both are numbers, else LaTeX-aware."""
    if predicted is None or gold is None:
        return False
    p_num, g_num = normalize_number(predicted), normalize_number(gold)
    if p_num is not None and g_num is not None:
        return abs(p_num - g_num) <= Decimal(str(rel_tol)) * max(Decimal(1), abs(g_num))
    if normalize_answer(predicted) == normalize_answer(gold):
        return True
    return _latex_equal(predicted, gold)


def is_correct(reply: str | None, gold: str) -> bool:
    """Whether a model's whole reply carries the gold answer as its final answer."""
    return answers_match(extract_answer(reply), gold)
