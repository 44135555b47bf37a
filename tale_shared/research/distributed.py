"""The benchmark and the budget search on a Ray cluster: one actor per model replica, results
streamed back to the driver's one resumable output file.

Each actor loads the model once (an embedded model, or a client for an endpoint) and works
through what it is handed — (method, item) pairs for the benchmark, items for the search; the
driver hands out work as replicas free up and appends each result as it arrives, so nothing is
written twice. A replica that dies is restarted and its work run again
(``max_restarts``/``max_task_retries``); work that still fails is recorded with its error and
run again on the next run, as in process. Extra ``ray``.

Example:
    .. code-block:: python

        run_bench_on_ray("qwen2.5-coder-1.5b", items, ["vanilla", "tale"], "runs.jsonl",
                         address="ray://head:10001", replicas=8)
        # or: tale bench|search|calibrate ... --ray ray://head:10001 --replicas 8
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tale_shared._optional import require
from tale_shared.models import Completion
from tale_shared.prompts import Message
from tale_shared.research.bench import (
    BenchRow,
    OracleEstimator,
    bench_pipelines,
    bench_row,
    done_pairs,
)
from tale_shared.research.datasets import Item
from tale_shared.research.jobs import Output, write_all
from tale_shared.research.search import SearchResult, finished_ids

RAY_INSTALL = "pip install 'tale-reasoning[ray]'"


def _ray() -> Any:
    return require("ray", f"--ray needs Ray: {RAY_INSTALL}")


class _Replica:
    """One model replica (a Ray actor): loads the model once, then benchmarks or searches."""

    def __init__(self, model_spec: str, threads: int | None, job: dict[str, Any]) -> None:
        from tale_shared.loading import load_model

        self.model = load_model(model_spec, threads)
        self.job = job
        if job["kind"] == "model":
            return
        if job["kind"] == "bench":
            self.pipelines = bench_pipelines(
                self.model, job["methods"], max_tokens=job["max_tokens"], oracle=job["oracle"]
            )
        else:
            from tale_shared.research.search import BudgetSearch

            self.searcher = BudgetSearch(
                self.model, style=job["style"], max_tokens=job["max_tokens"]
            )

    def model_name(self) -> str:
        return self.model.model_name

    def complete(self, messages: list[Message], max_tokens: int | None) -> str:
        return self.model.complete(messages, max_tokens=max_tokens).model_dump_json()

    def run(self, payload: dict[str, Any]) -> str:
        item = Item(**payload["item"])
        if self.job["kind"] == "bench":
            method = payload["method"]
            row = bench_row(self.pipelines[method], method, item, self.model.model_name)
            return row.model_dump_json()
        try:
            return self.searcher.search(item).model_dump_json()
        except Exception as exc:
            return self.searcher.new_result(item, error=repr(exc)).model_dump_json()


class RayModel:
    """A core ``ChatModel`` whose calls go to model replicas on Ray (round robin), for work
    that is a stream of single calls — ``tale calibrate --ray`` with ``--concurrency N``.

    Example:
        .. code-block:: python

            model = RayModel("qwen2.5-coder-1.5b", replicas=4)
            calibrate(model, items, concurrency=4)
            model.close()
    """

    def __init__(
        self,
        model_spec: str,
        *,
        address: str | None = None,
        replicas: int | None = None,
        threads_per_replica: int = 1,
    ) -> None:
        self._ray = _connect(address)
        self._actors = _start_replicas(
            self._ray, model_spec, threads_per_replica, {"kind": "model"}, replicas, most=10**6
        )
        self._turn = itertools.cycle(self._actors)
        self._lock = threading.Lock()
        self._name: str = self._ray.get(self._actors[0].model_name.remote())

    @property
    def model_name(self) -> str:
        return self._name

    def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None) -> Completion:
        with self._lock:
            actor = next(self._turn)
        line = self._ray.get(actor.complete.remote(list(messages), max_tokens))
        return Completion.model_validate_json(line)

    async def acomplete(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> Completion:
        return await asyncio.to_thread(self.complete, messages, max_tokens=max_tokens)

    def close(self) -> None:
        for a in self._actors:
            self._ray.kill(a)


def _start_replicas(
    ray: Any, model_spec: str, threads: int, job: dict[str, Any], replicas: int | None, most: int
) -> list[Any]:
    """``replicas`` actors (default: the cluster's CPUs / ``threads``, at most ``most``),
    restarted and their tasks retried if they die."""
    cpus = int(ray.available_resources().get("CPU", 1))
    n = min(replicas or max(1, cpus // max(1, threads)), most)
    actor = ray.remote(num_cpus=threads, max_restarts=2, max_task_retries=2)(_Replica)
    return [actor.remote(model_spec, threads, job) for _ in range(n)]


def _connect(address: str | None) -> Any:
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    return ray


def _stream(
    ray: Any,
    model_spec: str,
    job: dict[str, Any],
    payloads: Sequence[dict[str, Any]],
    replicas: int | None,
    threads: int,
    failed: Callable[[dict[str, Any], str], str],
    check_model: Callable[[str], object] | None = None,
) -> Iterator[str]:
    """Each payload's result line, as replicas finish them; a free replica gets the next.
    ``check_model`` is called with the replicas' model name before any work is handed out
    (the name is known only once a replica has loaded the model): it refuses to resume a
    file another model wrote."""
    actors = _start_replicas(ray, model_spec, threads, job, replicas, most=len(payloads))
    free = list(actors)
    queue = list(payloads)
    pending: dict[Any, tuple[dict[str, Any], Any]] = {}
    try:
        if check_model is not None:
            check_model(ray.get(actors[0].model_name.remote()))
        while queue or pending:
            if not pending and not free:  # every replica died: the rest waits for a rerun
                for payload in queue:
                    yield failed(payload, "no live Ray replica")
                return
            while free and queue:
                replica, payload = free.pop(), queue.pop(0)
                pending[replica.run.remote(payload)] = (payload, replica)
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            payload, replica = pending.pop(ref)
            try:
                line = ray.get(ref)
            except Exception as exc:  # the replica died past its restarts
                yield failed(payload, repr(exc))
                continue
            free.append(replica)
            yield line
    finally:
        for a in actors:
            ray.kill(a)


def run_bench_on_ray(
    model_spec: str,
    items: Sequence[Item],
    methods: Sequence[str],
    out: str | Path,
    *,
    address: str | None = None,
    replicas: int | None = None,
    threads_per_replica: int = 1,
    max_tokens: int = 512,
    oracle: OracleEstimator | None = None,
    progress: bool = True,
) -> int:
    """Run every (method, item) pair not yet in ``out`` on Ray; returns how many ran.

    ``address`` is a Ray cluster (``"auto"``, ``"ray://host:10001"``); ``None`` starts or
    joins a local instance. ``replicas`` defaults to the cluster's CPUs divided by
    ``threads_per_replica`` (for GPUs, give each replica an endpoint or a GPU llama.cpp).
    """
    path = Path(out)
    done = done_pairs(path)
    todo = [
        {"method": m, "item": item.model_dump()}
        for item in items
        for m in methods
        if (m, item.id) not in done
    ]
    if not todo:
        return 0
    ray = _connect(address)
    job = {"kind": "bench", "methods": list(methods), "max_tokens": max_tokens, "oracle": oracle}

    def failed(payload: dict[str, Any], error: str) -> str:
        row = BenchRow(method=payload["method"], id=payload["item"]["id"], error=error)
        return row.model_dump_json()

    lines = _stream(
        ray,
        model_spec,
        job,
        todo,
        replicas,
        threads_per_replica,
        failed,
        check_model=lambda name: done_pairs(path, name),
    )
    rows = (BenchRow.model_validate_json(line) for line in lines)
    write_all(
        rows, len(todo), Output(path, BenchRow.model_dump_json, "bench", "call"), progress=progress
    )
    return len(todo)


def search_on_ray(
    model_spec: str,
    items: Sequence[Item],
    out: str | Path,
    *,
    address: str | None = None,
    replicas: int | None = None,
    threads_per_replica: int = 1,
    style: str | None = None,
    max_tokens: int = 512,
    progress: bool = True,
) -> int:
    """Search every item not yet in ``out`` on Ray (as ``tale search`` does in process);
    returns how many were searched."""
    path = Path(out)
    done = finished_ids(path)
    todo = [{"item": item.model_dump()} for item in items if item.id not in done]
    if not todo:
        return 0
    ray = _connect(address)
    job = {"kind": "search", "style": style, "max_tokens": max_tokens}

    def failed(payload: dict[str, Any], error: str) -> str:
        item = payload["item"]
        return SearchResult(
            id=item["id"],
            question=item["question"],
            gold=item["answer"],
            model=model_spec,
            style=style or "",
            error=error,
        ).model_dump_json()

    lines = _stream(
        ray,
        model_spec,
        job,
        todo,
        replicas,
        threads_per_replica,
        failed,
        check_model=lambda name: finished_ids(path, name),
    )
    write_all(lines, len(todo), Output(path, str, "search", "item"), progress=progress)
    return len(todo)
