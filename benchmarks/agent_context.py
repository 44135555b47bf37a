"""Compressed context in a multi-step agent run on the embedded model (LangChain create_agent).

    python benchmarks/agent_context.py [CONFIG ...] [--variants 0,1,2,3,4]
    python benchmarks/agent_context.py --summary

The agent reads a five-page report with a tool, one page per call (each page ~200 tokens, with
one KEY number), then answers with the sum of the keys — so every step re-sends the pages read
so far, and the answer needs all of them. Runs the same task with no middleware, with tale's
TaleContextCompressionMiddleware (ratio 0.5), with LangChain's ContextEditingMiddleware (old
tool results cleared) and with its SummarizationMiddleware (its summary calls counted), and
prints input tokens per model call, totals, and whether the answer was right (the sum the
agent's add_numbers call returned, or a ``[[sum]]`` in its reply). Each variant is another
seeded set of keys (decoding is greedy, so a repeat of one variant would repeat the run); a
run that loops until LangGraph's recursion limit is a row with its ``error``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    ClearToolUsesEdit,
    ContextEditingMiddleware,
    SummarizationMiddleware,
)
from langchain_core.messages import HumanMessage
from langchain_core.tools import BaseTool, tool
from langgraph.errors import GraphRecursionError

from langchain_tale import ChatLocalLlama, TaleCallbackHandler
from langchain_tale.middleware import TaleContextCompressionMiddleware

KEYS = [12, 7, 30, 5, 16]  # variant 0; variant v > 0 draws five keys with random.Random(v)


def keys_of(variant: int) -> list[int]:
    return KEYS if variant == 0 else random.Random(variant).sample(range(2, 40), 5)


FILLER = (
    "The committee met in the old library on a rainy afternoon, and the discussion went on "
    "for a long time about the schedule of the spring fair, the colour of the banners, the "
    "number of chairs that would be needed in the main hall, and whether the bakery on the "
    "corner would agree to provide bread for the volunteers as it had done the year before. "
    "Several members also raised the question of parking near the river, and the secretary "
    "promised to write to the council about it before the next meeting."
)


def tools_for(keys: list[int]) -> list[BaseTool]:
    @tool
    def read_page(page: int) -> str:
        """Read one page of the report (pages 1 to 5, in order)."""
        if not 1 <= page <= 5:
            return "There is no such page: the report has pages 1 to 5."
        key = f"KEY: {keys[page - 1]}."
        nxt = (
            f"Next, read page {page + 1}."
            if page < 5
            else "This is the last page. Now add the five KEY numbers with the add_numbers tool."
        )
        return f"Page {page}. {FILLER} {key} {nxt}"

    @tool
    def add_numbers(numbers: list[int]) -> int:
        """Add a list of integers."""
        return sum(numbers)

    return [read_page, add_numbers]


# Qwen2.5's own default system prompt: with it the 1.5B model goes on from the last page to
# add_numbers; with "You are a careful reader." it ended its turn there with an empty reply
SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

TASK = (
    "Read the report with the read_page tool, one page per call, starting at page 1 and doing "
    "what each page says, then add the KEY numbers of all five pages with add_numbers and "
    "give the sum in [[ ]]."
)


def run(
    name: str, middleware: list[AgentMiddleware[Any, Any]], llm: ChatLocalLlama, variant: int = 0
) -> dict[str, Any]:
    keys = keys_of(variant)
    agent = create_agent(
        llm,
        tools=tools_for(keys),
        system_prompt=SYSTEM,
        middleware=middleware,
    )
    tracer = TaleCallbackHandler()
    result: dict[str, Any] = {"messages": [HumanMessage(TASK)]}
    error = None
    try:  # the last state is kept: a run that loops is a row too
        for state in agent.stream(
            {"messages": [HumanMessage(TASK)]},
            config={"callbacks": [tracer], "recursion_limit": 40},
            stream_mode="values",
        ):
            result = state
    except GraphRecursionError:
        error = "recursion limit (40 graph steps) reached"
    record = tracer.records[0]
    answer = result["messages"][-1].text
    calls = [c.usage.input_tokens for c in record.calls]
    sums = [m.text for m in result["messages"] if m.type == "tool" and m.name == "add_numbers"]
    last = result["messages"][-1]
    return {
        "config": name,
        "variant": variant,
        "keys": keys,
        "error": error,
        "model_calls": len(calls),
        "input_tokens_per_call": calls,
        "input_tokens": sum(calls),
        "output_tokens": record.usage.output_tokens,
        "tool_calls": sum(1 for m in result["messages"] if m.type == "tool"),
        "answer": answer[-120:],
        "last_message": f"{last.type}: {last.content!r}"[-200:],
        "sum_tool_results": sums,
        # right if the sum the agent computed (or wrote) is the sum of the five keys
        "correct": str(sum(keys)) in sums or f"[[{sum(keys)}]]" in answer.replace(" ", ""),
    }


def summary(rows: list[dict[str, Any]]) -> str:
    """Per configuration: runs, runs that ended with the right sum, runs that looped, mean input
    tokens; and, paired, mean input tokens on the key sets where the plain run got the sum."""
    from tale_shared.research._tables import markdown_table

    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["config"], []).append(r)
    plain = {r["variant"]: r for r in by.get("none", []) if r["correct"] and not r.get("error")}
    base = statistics.mean(r["input_tokens"] for r in plain.values()) if plain else None
    table = []
    for name, mine in by.items():
        paired = [r["input_tokens"] for r in mine if r["variant"] in plain]
        tokens = statistics.mean(paired) if paired else None
        table.append(
            (
                name,
                len(mine),
                f"{sum(r['correct'] and not r.get('error') for r in mine)}/{len(mine)}",
                sum(1 for r in mine if r.get("error")),
                f"{statistics.mean(r['input_tokens'] for r in mine):,.0f}",
                f"{statistics.mean(r['model_calls'] for r in mine):.1f}",
                f"{tokens:,.0f}" if tokens is not None else "-",
                f"{tokens / base:.2f}" if tokens is not None and base else "-",
            )
        )
    header = [
        "config",
        "runs",
        "ended with the right sum",
        "looped",
        "input tokens (mean)",
        "calls",
        f"input tokens, the {len(plain)} key sets plain got right",
        "vs plain",
    ]
    return markdown_table(header, table)


def main() -> None:
    llm = ChatLocalLlama(max_tokens=256)
    configs: dict[str, list[AgentMiddleware[Any, Any]]] = {
        "none": [],
        "tale compression 0.5": [
            TaleContextCompressionMiddleware(context_ratio=0.5, min_tokens=32)
        ],
        "ContextEditing (keep 1 tool result)": [
            ContextEditingMiddleware(edits=[ClearToolUsesEdit(trigger=400, keep=1)])
        ],
        "Summarization (at 800 tokens)": [
            SummarizationMiddleware(model=llm, trigger=("tokens", 800), keep=("messages", 2))
        ],
    }
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("configs", nargs="*", default=list(configs))
    parser.add_argument("--variants", default="0", help="key sets, e.g. 0,1,2")
    parser.add_argument("--summary", action="store_true", help="only print the table")
    args = parser.parse_args()
    out = Path(__file__).parent / "results" / "agent-context.jsonl"
    if args.summary:
        rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        print(summary(rows))
        return
    with out.open("a", encoding="utf-8") as fh:
        for variant in (int(v) for v in args.variants.split(",")):
            for name in args.configs:
                row = run(name, configs[name], llm, variant)
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                print(json.dumps(row))


if __name__ == "__main__":
    main()
