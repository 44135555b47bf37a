"""Items per hour: in process, through an OpenAI-compatible server with concurrency, and on Ray.

    python benchmarks/scaleout.py [--items 12] [--model smollm2-135m]

The same seeded GSM8K train items, method ``vanilla``, max_tokens 64, temperature 0, on this
machine: (1) the embedded model in process (all cores), (2) llama-cpp-python's server on
loopback with N requests in flight, (3) a local Ray instance with one replica per core. Prints
items/hour and the ratio to in-process, and checks that all three wrote the same answers.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tale_shared.loading import load_model
from tale_shared.local.registry import resolve_model_path
from tale_shared.research.bench import load_rows, run_bench
from tale_shared.research.datasets import load_items, sample_items
from tale_shared.served import ServedModel

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.norm.jsonl"


def _server(model: str) -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, path = resolve_model_path(model)
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--n_ctx", "2048", "--n_threads", str(os.cpu_count() or 1)]
    cmd += ["--model_alias", model, "--verbose", "False"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(480):
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.25)
    proc.kill()
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    items = sample_items(load_items(DATA), args.items, seed=0, offset=200)
    methods = ["vanilla"]
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = {k: Path(tmp) / f"{k}.jsonl" for k in ("process", "server", "ray")}
        model = load_model(args.model)
        started = time.perf_counter()
        run_bench(model, items, methods, out["process"], max_tokens=64, progress=False)
        results["in process"] = time.perf_counter() - started
        del model

        proc, base = _server(args.model)
        try:
            served = ServedModel(base, args.model)
            started = time.perf_counter()
            run_bench(
                served,
                items,
                methods,
                out["server"],
                max_tokens=64,
                concurrency=args.concurrency,
                progress=False,
            )
            results[f"server, {args.concurrency} in flight"] = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait()

        import ray

        from tale_shared.research.distributed import run_bench_on_ray

        cpus = os.cpu_count() or 1
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        try:
            started = time.perf_counter()
            run_bench_on_ray(
                args.model,
                items,
                methods,
                out["ray"],
                replicas=cpus,
                threads_per_replica=1,
                max_tokens=64,
                progress=False,
            )
            results[f"Ray, {cpus} replicas x 1 thread"] = time.perf_counter() - started
        finally:
            ray.shutdown()
        answers = {k: {r.id: r.text for r in load_rows(path)} for k, path in out.items()}
    base_rate = args.items / results["in process"] * 3600
    print(f"{args.items} items, {args.model}, vanilla, max_tokens 64")
    for name, seconds in results.items():
        rate = args.items / seconds * 3600
        print(f"  {name:32s} {seconds:6.1f} s  {rate:7.0f} items/h  {rate / base_rate:.2f}x")
    for k in ("server", "ray"):
        same = sum(answers[k].get(i) == text for i, text in answers["process"].items())
        print(f"  {k}: {same} of {args.items} replies identical to in process")


if __name__ == "__main__":
    main()
