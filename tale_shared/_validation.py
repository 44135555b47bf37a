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
