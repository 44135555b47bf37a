"""A calculator for tool-using agents: arithmetic only, never code.

The expression is parsed with :mod:`ast` and only numbers, ``+ - * / // % **``, unary signs
and parentheses are evaluated; names, calls, attributes and everything else are refused with
a message the agent can read and act on. Exponents and results are bounded, so an agent
cannot hang the process with ``9 ** 9 ** 9``.

Example:
    >>> calculate("(12.5 + 7.5) * 3 / 4")
    '15'
    >>> calculate("2 ** 10 - 24")
    '1000'
    >>> calculate("__import__('os')")
    'error: only numbers and + - * / // % ** ( ) are allowed, not Call'
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from fractions import Fraction

MAX_EXPONENT = 64
"""The largest power the calculator computes (a bigger one is an agent's mistake)."""
MAX_DIGITS = 30
"""Results with more digits than this are refused."""

_BINARY: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: lambda a, b: Fraction(a // b),
    ast.Mod: operator.mod,
}


class CalculatorError(ValueError):
    """An expression the calculator will not evaluate; the message says why."""


def _number(text: str) -> Fraction:
    return Fraction(text.replace(",", "").replace("_", ""))


def _evaluate(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        value = _evaluate(node.operand)
        return value if isinstance(node.op, ast.UAdd) else -value
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            if right.denominator != 1 or abs(right) > MAX_EXPONENT:
                raise CalculatorError(f"exponents must be whole numbers up to {MAX_EXPONENT}")
            return left ** int(right)
        op = _BINARY.get(type(node.op))
        if op is not None:
            if right == 0 and isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod):
                raise CalculatorError("division by zero")
            return op(left, right)
    raise CalculatorError(
        f"only numbers and + - * / // % ** ( ) are allowed, not {type(node).__name__}"
    )


def _format(value: Fraction) -> str:
    text = str(value.numerator) if value.denominator == 1 else f"{float(value):.10g}"
    if len(text.lstrip("-").replace(".", "")) > MAX_DIGITS and "e" not in text:
        raise CalculatorError("the result is too large")
    return text


def evaluate(expression: str) -> str:
    """The value of an arithmetic expression, exactly (fractions) and formatted as a
    number; raises :class:`CalculatorError` for anything else. Thousands separators
    (``1,250``), currency signs, ``x``/``×``/``÷`` and a trailing ``=`` are accepted."""
    text = expression.strip().rstrip("=").strip()
    if not text:
        raise CalculatorError("empty expression")
    if len(text) > 500:
        raise CalculatorError("expression too long")
    text = text.replace("×", "*").replace("÷", "/").replace("^", "**")
    text = text.replace("$", "").replace("€", "").replace("£", "")
    text = _thousands(text)
    try:
        tree = ast.parse(text.replace("x", "*").replace("X", "*"), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"cannot read {expression!r}: {exc.msg}") from None
    value = _evaluate(tree)
    if not math.isfinite(float(value)):
        raise CalculatorError("the result is not a finite number")
    return _format(value)


def _thousands(text: str) -> str:
    """``1,250`` -> ``1250`` (a comma between digits with three after it)."""
    import re

    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)


def calculate(expression: str) -> str:
    """The agent-facing tool: the value, or ``error: ...`` (never an exception), so the
    agent reads what went wrong and can try again."""
    try:
        return evaluate(expression)
    except (CalculatorError, ArithmeticError, OverflowError) as exc:
        return f"error: {exc}"


__all__ = ["MAX_EXPONENT", "CalculatorError", "calculate", "evaluate"]
