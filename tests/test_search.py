import asyncio
import json

import pytest

from tale_shared.research.datasets import Item, load_items
from tale_shared.research.search import (
    BudgetSearch,
    finished_ids,
    load_results,
    search_dataset,
    summarize_search,
)

ITEM = Item(id="q1", question="Tom has 3 apples and buys 5 more. How many apples?", answer="8")


def budget_of(messages):
    import re

    m = re.search(r"at most (\d+) words", messages[-1].content)
    return None if m is None else round(int(m.group(1)) / 0.75)


def elastic_model(scripted, optimum=40, vanilla_tokens=200, elastic_below=15):
    """Correct and as long as the budget above `optimum`; wrong below it; and below
    `elastic_below` it stops complying and writes 150 tokens (token elasticity)."""

    def reply(messages):
        budget = budget_of(messages)
        if budget is None:
            return " ".join(["step"] * (vanilla_tokens - 1)) + " [[8]]"
        if budget < elastic_below:
            return " ".join(["ramble"] * 149) + " [[8]]"
        n = max(2, min(budget, vanilla_tokens) - 1)
        return " ".join(["w"] * n) + (" [[8]]" if budget >= optimum else " [[7]]")

    return scripted(reply, model_name="local/qwen2.5-coder-1.5b")


def test_binary_search_finds_the_smallest_feasible_budget(scripted):
    model = elastic_model(scripted)
    result = BudgetSearch(model, style="words", min_budget=8).search(ITEM)
    assert result.vanilla_tokens == 200 and result.vanilla_correct
    assert 40 <= result.optimal_budget <= 60
    assert result.optimal_tokens < result.vanilla_tokens
    assert result.calls == 1 + len(result.trajectory) and result.calls <= 10
    assert result.usage.output_tokens == sum(s.output_tokens for s in result.trajectory) + 200
    budgets = [s.budget for s in result.trajectory]
    assert budgets[0] == (7 + 200) // 2  # starts between the lower and the upper bound


def test_elasticity_guard_rejects_longer_correct_answers(scripted):
    model = elastic_model(scripted, optimum=1, elastic_below=30)
    result = BudgetSearch(model, style="words", min_budget=8).search(ITEM)
    elastic = [s for s in result.trajectory if s.budget < 30]
    assert elastic and all(s.correct and not s.feasible for s in elastic)
    assert result.optimal_budget >= 30


def test_items_with_a_wrong_vanilla_answer_are_skipped_with_the_reason(scripted):
    model = scripted("so the answer is [[9]]")
    result = BudgetSearch(model, style="words").search(ITEM)
    assert result.calls == 1 and result.optimal_budget is None
    assert "vanilla answer '9' is wrong" in result.skipped_reason


def test_the_cap_is_the_best_length_so_far(scripted):
    model = elastic_model(scripted)
    BudgetSearch(model, style="words").search(ITEM)
    caps = [cap for _, cap in model.calls]
    assert caps[0] == 512 and caps[1] == 200 and caps == [512, *sorted(caps[1:], reverse=True)]


def test_style_without_budget_is_refused(scripted):
    with pytest.raises(ValueError, match="no budget"):
        BudgetSearch(scripted("x"), style="vanilla")


async def test_async_search_matches_sync(scripted):
    sync = BudgetSearch(elastic_model(scripted), style="words").search(ITEM)
    asynced = await BudgetSearch(elastic_model(scripted), style="words").asearch(ITEM)
    assert sync.model_dump() == asynced.model_dump()


def _items(n):
    return [Item(id=f"i{k}", question=ITEM.question, answer="8") for k in range(n)]


def test_dataset_search_appends_resumes_and_never_redoes(scripted, tmp_path):
    out = tmp_path / "runs" / "x.jsonl"
    model = elastic_model(scripted)
    searcher = BudgetSearch(model, style="words")
    asyncio.run(search_dataset(searcher, _items(3), out, concurrency=2, progress=False))
    assert finished_ids(out) == {"i0", "i1", "i2"}
    calls_before = len(model.calls)
    out.open("a").write('{"id": "i3", "trunc')  # a line cut by a crash
    asyncio.run(search_dataset(searcher, _items(5), out, concurrency=2, progress=False))
    assert finished_ids(out) == {f"i{k}" for k in range(5)}
    per_item = calls_before // 3
    assert len(model.calls) - calls_before == 2 * per_item  # only the two new items ran
    assert len(load_results(out)) == 5


def test_a_model_error_is_retried_then_recorded_not_fatal(scripted, tmp_path):
    out = tmp_path / "x.jsonl"
    flaky = scripted("x", error=ConnectionError("rate limited"))
    results = asyncio.run(
        search_dataset(
            BudgetSearch(flaky, style="words"), _items(2), out, retries=2, progress=False
        )
    )
    assert len(results) == 2 and all("rate limited" in r.error for r in results)
    assert len(flaky.calls) == 2 * 3 and finished_ids(out) == set()  # searched again next run
    assert summarize_search(iter(results))["errors"] == 2  # a one-pass iterable is enough


def test_summary_figures(scripted, tmp_path):
    out = tmp_path / "x.jsonl"
    asyncio.run(
        search_dataset(
            BudgetSearch(elastic_model(scripted), style="words"), _items(4), out, progress=False
        )
    )
    s = summarize_search(load_results(out))
    assert (
        s["items"] == 4 and s["with_feasible_budget"] == 4 and s["share_feasible_of_correct"] == 1
    )
    assert s["median_vanilla_tokens"] == 200 and s["median_optimal_budget"] < 200
    assert 0 < s["median_token_ratio"] < 1 and s["calls_per_searched_item"] > 1


def test_load_items_reads_normalised_and_raw_gsm8k(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        json.dumps({"question": "q?", "answer": "work...\n#### 1,234"})
        + "\n\n"
        + json.dumps({"id": "b", "question": "r?", "answer": 5})
        + "\n"
    )
    items = load_items(path)
    assert [(i.id, i.answer) for i in items] == [("d-0", "1234"), ("b", "5")]
    path.write_text('{"question": "no answer"}\n')
    with pytest.raises(ValueError, match="'question' and 'answer'"):
        load_items(path)
