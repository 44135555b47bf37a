"""Input checks shared by every entry point."""

from __future__ import annotations


def require_question(question: object) -> str:
    """Return the question stripped, or raise ``ValueError`` for an empty or non-text one."""
    if not isinstance(question, str):
        raise TypeError(f"question must be a str, got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise ValueError("question is empty: give the text of the question to answer")
    return text


def one_line_error(exc: BaseException, *, limit: int = 3) -> str:
    """A pydantic ``ValidationError`` (or any error) as one line: each failing field with
    what is wrong, not the multi-line dump with its documentation links.

    >>> from pydantic import BaseModel
    >>> class Row(BaseModel):
    ...     n: int
    >>> try:
    ...     Row.model_validate({"n": "x"})
    ... except ValueError as exc:
    ...     print(one_line_error(exc))
    n: Input should be a valid integer, unable to parse string as an integer
    """
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            found = errors()
        except Exception:  # not pydantic's errors(): fall through to the text
            found = None
        if isinstance(found, list) and found:
            parts = []
            for error in found[:limit]:
                where = ".".join(str(p) for p in error.get("loc", ())) or "value"
                parts.append(f"{where}: {error.get('msg', 'invalid')}")
            more = f" (and {len(found) - limit} more)" if len(found) > limit else ""
            return "; ".join(parts) + more
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines) if lines else type(exc).__name__
