"""One job runner for the long research jobs: ``tale bench``, ``tale search``, ``tale calibrate``.

A job list is what is left to do (the caller drops what its output file already holds, so a
rerun resumes); the runner runs each job — in this thread, on ``concurrency`` threads, or as
``concurrency`` asyncio tasks — and hands each result to one :class:`ResultSink` as it
finishes: appended to the output file (one JSON line, fsynced), counted on the progress bar,
kept for the caller. Ray's runner (:mod:`tale_shared.research.distributed`) streams its
replicas' results into the same sink.

Example:
    >>> run_jobs([1, 2, 3], lambda n: n * n, progress=False)
    [1, 4, 9]
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from tale_shared._io import JsonlAppender

J = TypeVar("J")
R = TypeVar("R")


@dataclass(frozen=True)
class Output(Generic[R]):
    """Where a job list's results go: ``path`` (a JSON line each, by ``to_line``; none: kept
    only) and how the progress bar names them."""

    path: str | Path | None = None
    to_line: Callable[[R], str] | None = None
    desc: str = "jobs"
    unit: str = "job"


class ResultSink(Generic[R]):
    """Where finished results go: the output file (a JSON line each, fsynced), the progress
    bar, and :attr:`results`. Use it as a context manager."""

    def __init__(self, total: int, output: Output[R], *, progress: bool = True) -> None:
        if output.path is not None and output.to_line is None:
            raise ValueError("a sink that writes needs to_line")
        self.results: list[R] = []
        self._to_line = output.to_line
        self._appender = JsonlAppender(Path(output.path)) if output.path is not None else None
        self._bar: Any = None
        if progress:
            from tqdm.auto import tqdm

            leave = output.path is not None
            self._bar = tqdm(total=total, desc=output.desc, unit=output.unit, leave=leave)

    def add(self, result: R) -> R:
        if self._appender is not None and self._to_line is not None:
            self._appender.write_line(self._to_line(result))
        self.results.append(result)
        if self._bar is not None:
            self._bar.update(1)
        return result

    def close(self) -> None:
        if self._appender is not None:
            self._appender.close()
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> ResultSink[R]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_jobs(
    jobs: Sequence[J],
    work: Callable[[J], R],
    output: Output[R] | None = None,
    *,
    concurrency: int = 1,
    progress: bool = True,
) -> list[R]:
    """Run ``work`` on each job, one at a time or on ``concurrency`` threads (a served model
    keeps that many requests in flight), each result to the sink as it finishes (in job order
    with one thread, in finishing order with more). Jobs not yet started when a job raises
    are cancelled; the results already written stay."""
    with ResultSink(len(jobs), output or Output(), progress=progress) as sink:
        if concurrency <= 1:
            for job in jobs:
                sink.add(work(job))
            return sink.results
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures: list[Future[R]] = [pool.submit(work, job) for job in jobs]
            try:
                for future in as_completed(futures):
                    sink.add(future.result())
            finally:
                for future in futures:
                    future.cancel()
        return sink.results


async def arun_jobs(
    jobs: Sequence[J],
    work: Callable[[J], Awaitable[R]],
    output: Output[R] | None = None,
    *,
    concurrency: int = 1,
    progress: bool = True,
    on_result: Callable[[R], Awaitable[None] | None] | None = None,
) -> list[R]:
    """:func:`run_jobs` for async work: ``concurrency`` jobs in flight as tasks on the
    running loop; ``on_result`` is called (and awaited if it returns an awaitable) after
    each result is written."""
    semaphore = asyncio.Semaphore(max(1, concurrency))
    with ResultSink(len(jobs), output or Output(), progress=progress) as sink:

        async def one(job: J) -> None:
            async with semaphore:
                result = sink.add(await work(job))
            if on_result is not None:
                maybe = on_result(result)
                if maybe is not None:
                    await maybe

        await asyncio.gather(*(one(job) for job in jobs))
        return sink.results


def write_all(
    results: Iterable[R], total: int, output: Output[R], *, progress: bool = True
) -> list[R]:
    """Put results that arrive from elsewhere (Ray's replicas) through the same sink."""
    with ResultSink(total, output, progress=progress) as sink:
        for result in results:
            sink.add(result)
        return sink.results
