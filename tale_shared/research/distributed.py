"""The benchmark on a Ray cluster: one actor per model replica, results streamed back to the
driver's one resumable output file.

Each actor loads the model once (an embedded model, or a client for an endpoint) and runs
(method, item) pairs; the driver hands pairs out as replicas free up and appends each row as
it arrives, so nothing is written twice. A replica that dies is restarted and its pair run
again (``max_restarts``/``max_task_retries``); a pair that still fails is recorded with its
error and run again on the next run, as in-process. Extra ``ray``.

Example:
    .. code-block:: python

        run_bench_on_ray("qwen2.5-coder-1.5b", items, ["vanilla", "tale"], "runs.jsonl",
                         address="ray://head:10001", replicas=8)
        # or: tale bench ... --ray ray://head:10001 --replicas 8
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tale_shared.research.bench import (
    BenchRow,
    OracleEstimator,
    bench_pipelines,
    bench_row,
    done_pairs,
    write_rows,
)
from tale_shared.research.datasets import Item

RAY_INSTALL = "pip install 'tale[ray]'"


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"--ray needs Ray: {RAY_INSTALL}") from exc
    return ray


class _Replica:
    """One model replica (a Ray actor): loads the model once, runs pairs."""

    def __init__(
        self,
        model_spec: str,
        methods: Sequence[str],
        max_tokens: int,
        threads: int | None,
        oracle: OracleEstimator | None,
    ) -> None:
        from tale_shared.models import load_model

        self.model = load_model(model_spec, threads)
        self.pipelines = bench_pipelines(self.model, methods, max_tokens=max_tokens, oracle=oracle)

    def run(self, method: str, item: dict[str, str]) -> str:
        row = bench_row(self.pipelines[method], method, Item(**item), self.model.model_name)
        return row.model_dump_json()


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
    ``threads_per_replica`` (for a GPU cluster, pass the number of GPUs and give each
    replica an endpoint or a GPU-built llama.cpp).
    """
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    path = Path(out)
    done = done_pairs(path)
    todo = [(m, item) for item in items for m in methods if (m, item.id) not in done]
    if not todo:
        return 0
    cpus = int(ray.available_resources().get("CPU", 1))
    n = replicas or max(1, cpus // max(1, threads_per_replica))
    actor = ray.remote(num_cpus=threads_per_replica, max_restarts=2, max_task_retries=2)(_Replica)
    actors = [
        actor.remote(model_spec, list(methods), max_tokens, threads_per_replica, oracle)
        for _ in range(min(n, len(todo)))
    ]

    def rows() -> Iterator[BenchRow]:
        """Rows as replicas finish them; a free replica gets the next pair."""
        queue = list(todo)
        free = list(actors)
        pending: dict[Any, tuple[tuple[str, Item], Any]] = {}
        while queue or pending:
            if not pending and not free:  # every replica died: the rest waits for a rerun
                for method, item in queue:
                    yield BenchRow(method=method, id=item.id, error="no live Ray replica")
                return
            while free and queue:
                replica, (method, item) = free.pop(), queue.pop(0)
                pending[replica.run.remote(method, item.model_dump())] = ((method, item), replica)
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            (method, item), replica = pending.pop(ref)
            try:
                row = BenchRow.model_validate_json(ray.get(ref))
            except Exception as exc:  # the replica died past its restarts: run it next time
                yield BenchRow(method=method, id=item.id, error=repr(exc))
                continue
            free.append(replica)
            yield row

    try:
        return write_rows(path, rows(), len(todo), progress)
    finally:
        for a in actors:
            ray.kill(a)
