"""Streaming a blocking generator into asyncio, the way both adapters need it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Generator
from typing import TypeVar

T = TypeVar("T")


async def iterate_in_thread(make: Callable[[], Generator[T, None, None]]) -> AsyncIterator[T]:
    """Run ``make()``'s generator in a worker thread and yield its items as they come.

    The generator runs from start to end in one thread (the local model holds its lock
    across yields). When the consumer stops early (break, cancel, an error), the worker
    stops at the next item and closes the generator, so a reply nobody reads is not
    generated to the end.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    done = object()
    abandoned = threading.Event()

    def produce() -> None:
        items = make()
        try:
            for item in items:
                if abandoned.is_set():
                    break
                loop.call_soon_threadsafe(queue.put_nowait, (item,))
        except BaseException as exc:  # handed to the consumer
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            items.close()
            loop.call_soon_threadsafe(queue.put_nowait, done)

    producer = asyncio.ensure_future(asyncio.to_thread(produce))
    try:
        while (got := await queue.get()) is not done:
            if isinstance(got, BaseException):
                raise got
            assert isinstance(got, tuple)
            yield got[0]
    finally:
        abandoned.set()
        await producer
