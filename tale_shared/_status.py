"""A one-line status on stderr while something slow runs (model load, generation)."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


@contextmanager
def status(message: str, stream: TextIO | None = None) -> Iterator[None]:
    """Show ``message`` with a spinner and elapsed seconds until the block ends.

    On a terminal the line updates in place; elsewhere (CI, pipes) it prints the message once
    and then the time taken.
    """
    out = stream or sys.stderr
    start = time.perf_counter()
    if not out.isatty():
        out.write(f"{message} ...\n")
        out.flush()
        yield
        out.write(f"{message}: done in {time.perf_counter() - start:.1f}s\n")
        out.flush()
        return
    stop = threading.Event()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            if stop.wait(0.1):
                break
            out.write(f"\r{frame} {message} {time.perf_counter() - start:5.1f}s")
            out.flush()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        out.write(f"\r✓ {message} {time.perf_counter() - start:5.1f}s\n")
        out.flush()
