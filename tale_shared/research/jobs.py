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
import contextlib
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
    with one thread, in finishing order with more).

    When a job raises or the run is interrupted (Ctrl-C, SIGTERM through the ``tale`` CLI),
    jobs not yet started are cancelled, and the jobs in flight — whose calls are made and
    paid — are waited for and their results written before the error goes on: nothing
    finished is run again on resume. A second Ctrl-C stops the wait."""
    with ResultSink(len(jobs), output or Output(), progress=progress) as sink:
        if concurrency <= 1:
            for job in jobs:
                sink.add(work(job))
            return sink.results
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures: list[Future[R]] = [pool.submit(work, job) for job in jobs]
            written: set[Future[R]] = set()
            try:
                for future in as_completed(futures):
                    result = future.result()
                    written.add(future)
                    sink.add(result)
            except BaseException:
                for future in futures:
                    future.cancel()
                _write_in_flight(futures, written, sink)
                raise
        return sink.results


def _write_in_flight(futures: Sequence[Future[R]], written: set[Future[R]], sink: Any) -> None:
    """After an error or an interrupt: wait for the jobs already running and write what each
    returned (a job that failed is left for the rerun)."""
    for future in futures:
        if future in written or future.cancelled():
            continue
        try:
            result = future.result()
        except Exception:
            continue
        written.add(future)
        sink.add(result)


async def _finished(task: asyncio.Future[Any]) -> None:
    """Wait until ``task`` is done, whatever cancels the waiter meanwhile (a run being
    cancelled cancels each of its jobs again); a second Ctrl-C under ``asyncio.run`` raises
    ``KeyboardInterrupt`` and ends the wait."""
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)


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
    each result is written. When the run is cancelled (Ctrl-C under ``asyncio.run``), jobs
    in flight are shielded from it: each is awaited and its result written, then the
    cancellation goes on; jobs not yet started never start."""
    semaphore = asyncio.Semaphore(max(1, concurrency))
    with ResultSink(len(jobs), output or Output(), progress=progress) as sink:

        async def one(job: J) -> None:
            async with semaphore:
                task = asyncio.ensure_future(work(job))
                try:
                    result = await asyncio.shield(task)
                except asyncio.CancelledError:
                    # the job's calls are in flight and paid: keep what they return
                    await _finished(task)
                    if not task.cancelled() and task.exception() is None:
                        sink.add(task.result())
                    raise
                sink.add(result)
            if on_result is not None:
                maybe = on_result(result)
                if maybe is not None:
                    await maybe

        tasks = [asyncio.ensure_future(one(job)) for job in jobs]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # cancelled, or a job failed: nothing new starts, and the jobs in flight finish
            # and are written before the error goes on
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return sink.results


def refuse_other_models(path: str | Path, found: Iterable[str | None], model_name: str) -> None:
    """Raise ``ValueError`` when a file to resume holds results from a model other than
    ``model_name``: its results and the new ones would be read as one model's (a base
    model's beside a fine-tune's, one LoRA adapter's beside another's)."""
    others = sorted({name for name in found if name and name != model_name})
    if others:
        raise ValueError(
            f"{path} holds results from {', '.join(others)}, not {model_name}: write this "
            "model's results to another --out (or remove that file to start over)"
        )


def write_all(
    results: Iterable[R], total: int, output: Output[R], *, progress: bool = True
) -> list[R]:
    """Put results that arrive from elsewhere (Ray's replicas) through the same sink."""
    with ResultSink(total, output, progress=progress) as sink:
        for result in results:
            sink.add(result)
        return sink.results
