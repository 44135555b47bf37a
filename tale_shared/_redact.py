"""Credentials never reach a message, a row, a trace or a log.

A served model's URL may carry a user and password (``http://user:KEY@host/v1``) or a key in
its query (``?api_key=...``), and an HTTP library's error repeats the URL. Everything tale
writes for a user that may hold a URL or an error text goes through :func:`redact`.

Example:
    >>> redact("POST http://me:sk-123@host:8000/v1/chat failed")
    'POST http://***@host:8000/v1/chat failed'
    >>> redact("https://host/v1?api_key=sk-1&x=2#m")
    'https://host/v1?api_key=***&x=2#m'
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/\s@?#'\"]+)@", re.I)
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:api[_-]?key|apikey|key|token|access[_-]?token|secret|password|sig|"
    r"signature)=)(?P<value>[^&#\s'\"]+)",
    re.I,
)
_BEARER = re.compile(r"(?P<key>\bBearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{6,})")


def redact(text: str) -> str:
    """``text`` with URL userinfo, secret query parameters (``api_key``, ``key``, ``token``,
    ``access_token``, ``secret``, ``password``, ``sig``) and bearer tokens replaced by
    ``***``."""
    if not text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['scheme']}***@", text)
    text = _SECRET_PARAM.sub(lambda m: f"{m['key']}***", text)
    return _BEARER.sub(lambda m: f"{m['key']}***", text)


def redact_optional(text: str | None) -> str | None:
    """:func:`redact` that passes ``None`` through (for optional record fields)."""
    return None if text is None else redact(text)
