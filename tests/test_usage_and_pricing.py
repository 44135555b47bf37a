import csv
import json
import threading

import pytest

from tale_shared.pricing import ModelPrice, PriceTable
from tale_shared.usage import CallRecord, QueryRecord, TokenUsage, UsageLedger, sum_usage


def _query(budget=100, est_out=3, ans_out=80, cost=0.001, model="gpt-4o-mini"):
    return QueryRecord(
        question="q",
        budget=budget,
        estimator="zero-shot",
        calls=[
            CallRecord(
                role="estimator",
                model=model,
                cost_usd=cost,
                usage=TokenUsage(input_tokens=40, output_tokens=est_out, source="provider"),
            ),
            CallRecord(
                role="answer",
                model=model,
                cost_usd=cost,
                usage=TokenUsage(
                    input_tokens=60, output_tokens=ans_out, reasoning_tokens=5, source="provider"
                ),
            ),
        ],
        latency_s=0.5,
    )


def test_query_record_separates_estimator_and_answer_tokens():
    r = _query()
    assert r.estimator_usage.output_tokens == 3 and r.answer_usage.output_tokens == 80
    assert r.usage.total_tokens == 40 + 3 + 60 + 80 and r.n_calls == 2
    assert r.budget_adherence == pytest.approx(0.8)
    assert r.cost_usd == pytest.approx(0.002)


def test_unknown_price_makes_the_query_cost_unknown_not_zero():
    r = _query(cost=None)
    assert r.cost_usd is None
    summary = UsageLedger([_query(), r]).summary()
    assert summary.cost_usd is None and summary.queries_with_unknown_cost == 1


def test_usage_sources_combine_to_the_weakest():
    a = TokenUsage(input_tokens=1, source="provider")
    b = TokenUsage(output_tokens=2, source="counted")
    assert (a + b).source == "counted" and (a + TokenUsage()).source == "provider"
    assert sum_usage([]).source == "none"


def test_summary_totals_equal_the_sum_of_the_parts():
    ledger = UsageLedger()
    records = [_query(ans_out=n) for n in range(1, 51)]
    threads = [threading.Thread(target=ledger.add, args=(r,)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = ledger.summary()
    assert s.queries == 50 and s.calls == 100
    assert s.output_tokens == sum(r.usage.output_tokens for r in records)
    assert s.estimator_output_tokens == 150 and s.reasoning_tokens == 250
    assert s.mean_budget == 100


def test_export_jsonl_and_csv_round_trip(tmp_path):
    ledger = UsageLedger([_query(), _query(budget=None, cost=None)])
    back = UsageLedger.from_jsonl(ledger.to_jsonl(tmp_path / "q.jsonl"))
    assert [r.model_dump() for r in back] == [r.model_dump() for r in ledger]
    rows = list(csv.DictReader(ledger.to_csv(tmp_path / "q.csv").open()))
    assert rows[0]["answer_output_tokens"] == "80" and rows[0]["estimator_output_tokens"] == "3"
    assert rows[1]["budget"] == "" and rows[1]["cost_usd"] == ""
    assert json.loads((tmp_path / "q.jsonl").read_text().splitlines()[0])["n_calls"] == 2


def test_price_table():
    table = PriceTable()
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert table.cost("gpt-4o-mini", usage) > 0
    assert table.cost("local/qwen2.5-coder-1.5b", usage) == 0.0
    assert table.cost("surely-not-a-model-9000", usage) is None
    assert table.cost(None, usage) is None
    table.set_price("surely-not-a-model-9000", ModelPrice(input_per_mtok=1, output_per_mtok=3))
    assert table.cost("surely-not-a-model-9000", usage) == pytest.approx(4.0)


def test_reasoning_tokens_can_be_billed_at_their_own_rate():
    price = ModelPrice(input_per_mtok=0, output_per_mtok=10, reasoning_per_mtok=20)
    usage = TokenUsage(output_tokens=1_000_000, reasoning_tokens=500_000)
    assert price.cost(usage) == pytest.approx(15.0)


def test_run_budget_policy():
    import warnings

    from tale_shared.run_budget import RunBudget, RunSpending, TaleBudgetExceededError

    spent = RunSpending().add(600, 0.01).add(500, None)
    assert (spent.tokens, spent.cost_usd, spent.steps) == (1100, None, 2)
    assert RunBudget(total_tokens=2000).check(spent) is None
    assert "token budget spent" in RunBudget(total_tokens=1000).check(spent)
    with pytest.raises(TaleBudgetExceededError) as info:
        RunBudget(total_tokens=1000, exit_behavior="error").check(spent)
    assert info.value.tokens == 1100
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert RunBudget(total_tokens=1000, exit_behavior="warn").check(spent) is None
    assert caught
    # an unknown price never counts as spending the USD budget
    assert RunBudget(total_usd=0.001).exhausted(spent) is None
    assert "USD" in RunBudget(total_usd=0.001).exhausted(RunSpending().add(1, 0.002))
    assert RunBudget(total_tokens=1000).step_cap(500, spent) == 1
    assert RunBudget(total_tokens=5000).step_cap(500, spent) == 500
    for bad in ({"exit_behavior": "boom"}, {"total_tokens": 0}, {"total_usd": -1.0}):
        with pytest.raises(ValueError):
            RunBudget(**bad)
