"""Overhead of the adapters with a fixed budget, against calling the same fake model directly.

    python benchmarks/overhead.py [--calls 2000]

Prints the median per-call time of each path and the ratio to the direct call, in one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable


def median_us(fn: Callable[[], object], calls: int, warmup: int = 50) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def langchain_rows(calls: int) -> list[tuple[str, float]]:
    from langchain_core.language_models import FakeListChatModel
    from langchain_core.messages import HumanMessage

    from langchain_tale import TaleRunnable

    llm = FakeListChatModel(responses=["3 + 5 = 8. [[8]]"])
    tale = TaleRunnable(llm=llm, estimator="fixed:100", style="tokens")
    question = "Tom has 3 apples and buys 5 more. How many apples does he have?"
    direct = median_us(lambda: llm.invoke([HumanMessage(question)]), calls)
    wrapped = median_us(lambda: tale.invoke(question), calls)
    return [
        ("LangChain: model.invoke", direct),
        ("LangChain: TaleRunnable(fixed:100).invoke", wrapped),
    ]


def llama_index_rows(calls: int) -> list[tuple[str, float]]:
    from llama_index.core.llms import MockLLM

    from llama_index_tale import TaleQueryTransform

    llm = MockLLM()
    transform = TaleQueryTransform(llm=llm, estimator="fixed:100", style="tokens")
    question = "Tom has 3 apples and buys 5 more. How many apples does he have?"
    direct = median_us(lambda: llm.complete(question), calls)
    wrapped = median_us(lambda: llm.complete(transform.run(question).query_str), calls)
    alone = median_us(lambda: transform.run(question), calls)
    return [
        ("LlamaIndex: llm.complete", direct),
        ("LlamaIndex: TaleQueryTransform(fixed:100) + llm.complete", wrapped),
        ("LlamaIndex: TaleQueryTransform.run alone", alone),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    for rows in (langchain_rows(args.calls), llama_index_rows(args.calls)):
        base = rows[0][1]
        for name, us in rows:
            print(f"{name:58} median {us:8.1f} us  ratio {us / base:5.2f}  (+{us - base:.1f} us)")


if __name__ == "__main__":
    main()
