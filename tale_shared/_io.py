"""File writing that loses nothing: atomic replacement, fsynced appends, checked paths.

Every file tale writes for a user goes through here: exports and ledgers are written to a
temporary file beside the target and renamed over it (a failure leaves the old file as it
was), and long jobs append one fsynced JSON line per finished item (a crash cuts at most the
line being written, and the next run starts on a fresh line).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (also through links or ``..``)."""
    pa, pb = Path(a), Path(b)
    if pa.exists() and pb.exists():
        return os.path.samefile(pa, pb)
    return pa.resolve() == pb.resolve()


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file, read in 4 MiB chunks (model weights do not fit in memory)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def check_writable(path: str | Path) -> Path:
    """Fail early (``OSError``) when ``path`` could not be written: made before a long job
    runs, so that its result is not lost at the end. Creates the parent folders."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
    os.close(fd)
    os.unlink(probe)
    return path


def _umask() -> int:
    """The process's umask, read without changing it where the OS shows it (Linux), else by
    the set-and-restore that is the only portable way."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_beside(path: Path) -> tuple[int, str]:
    """A new temporary file beside ``path`` with the mode a plain ``open(path, "w")`` would
    give it (``mkstemp`` makes it 0600, which the rename would carry over)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that opens the file itself (a GGUF
    writer): fsynced and renamed over ``path`` when the block succeeds, removed when it
    fails — never a half-written ``path`` or a leftover partial file."""
    target = Path(path)
    fd, tmp = _temp_beside(target)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _atomic(path: str | Path, mode: str, **open_kwargs: Any) -> Iterator[IO[Any]]:
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as fh:
        yield fh


@contextlib.contextmanager
def atomic_binary_writer(path: str | Path) -> Iterator[IO[bytes]]:
    """:func:`atomic_writer` for bytes written piece by piece (a joined model file)."""
    with _atomic(path, "wb") as fh:
        yield fh


@contextlib.contextmanager
def atomic_writer(path: str | Path, *, newline: str | None = None) -> Iterator[IO[str]]:
    """Open a temporary file beside ``path``; on success it is fsynced and renamed over
    ``path``, on any error it is removed and ``path`` is left untouched."""
    with _atomic(path, "w", encoding="utf-8", newline=newline) as fh:
        yield fh


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as :func:`atomic_writer` does (whole or not at all)."""
    with _atomic(path, "wb") as fh:
        fh.write(data)


def write_jsonl(rows: Iterable[Any], out: str | Path) -> int:
    """Write one JSON object per line to ``out`` atomically; returns the count."""
    n = 0
    with atomic_writer(out) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


class JsonlAppender:
    """Appends JSON lines, each flushed and fsynced before :meth:`write` returns.

    A line cut by a crash is closed off first, so it cannot swallow the next record (readers
    skip it). Thread-safe; use it as a context manager.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cut = self._ends_mid_line(self.path)
        self._fh = self.path.open("a", encoding="utf-8")
        if cut:
            self._fh.write("\n")
        self._lock = threading.Lock()

    @staticmethod
    def _ends_mid_line(path: Path) -> bool:
        if not path.exists() or path.stat().st_size == 0:
            return False
        with path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"

    def write_line(self, line: str) -> None:
        if "\n" in line:
            raise ValueError("a JSONL record must be one line")
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def write(self, row: Any) -> None:
        self.write_line(json.dumps(row, ensure_ascii=False))

    def close(self) -> None:
        with self._lock:
            self._fh.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, Any | None, str | None]]:
    """``(line number, value, problem)`` for each non-blank line of a JSONL file: the parsed
    value, or ``None`` and why it is not JSON (a line cut by a crash, or a malformed file)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a JSONL file")
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line), None
            except json.JSONDecodeError as exc:
                yield n, None, f"not valid JSON ({exc.msg})"
