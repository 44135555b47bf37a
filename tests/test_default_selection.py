"""What choosing a default out of sample needs: the paper's own vanilla prompt as a baseline,
a prompt layout that llama.cpp's prefix cache reuses, escalation instead of a forced stop,
the stronger of two baselines, items left out of a sample, and one method at a time."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from tale_shared import cli
from tale_shared.estimators import FixedBudgetEstimator
from tale_shared.local.llama import reused_prefix
from tale_shared.methods import FORCE_CUE, load_exemplars, parse_method, render
from tale_shared.pipeline import TalePipeline
from tale_shared.prompts import PAPER_ANSWER_FORMAT, get_style
from tale_shared.research.bench import (
    BenchRow,
    bench_table,
    load_rows,
    run_bench,
    summarize_bench,
)
from tale_shared.research.datasets import Item
from tale_shared.usage import TokenUsage
from tests.test_methods import REASONING, ContinuingModel


def test_the_papers_vanilla_prompt_is_q_format_line_then_cue():
    (msg,) = get_style("vanilla-paper").render("What is 2+3?", None)
    assert msg.content == f"Q: What is 2+3?\n{PAPER_ANSWER_FORMAT}\nLet's think step by step:"
    method = parse_method("vanilla-paper")
    assert method.spec == "vanilla-paper" and method.estimator is None


def test_a_cache_friendly_prompt_starts_the_same_for_every_question():
    style, shots = get_style("concise"), load_exemplars()[:3]
    a = render(style, "Tom has 3 apples and buys 5 more. How many?", 40, shots)
    b = render(style, "A train goes 60 km/h for 3 hours. How far?", 90, shots)
    assert a[:-1] == b[:-1]  # instructions and exemplars: identical, so a cache reuses them
    assert a[0].role == "system" and "40" not in a[0].content
    assert a[-1].content.endswith("shorter than 40 tokens.")
    assert b[-1].content.endswith("shorter than 90 tokens.")
    # the style it replaces puts the budget first, so nothing after it can be reused
    old_a = render(get_style("system"), "Q1?", 40, shots)
    old_b = render(get_style("system"), "Q2?", 90, shots)
    assert old_a[0] != old_b[0]


def test_both_adapters_put_the_preamble_in_the_system_message_and_the_budget_last():
    from langchain_tale._messages import method_messages
    from llama_index_tale.query_transform import worded_query

    style = get_style("concise")
    messages = method_messages([HumanMessage("What is 3 + 5?")], style, 30)
    assert isinstance(messages[0], SystemMessage) and messages[0].content == style.preamble
    assert messages[1].content.endswith("shorter than 30 tokens.")
    kept = method_messages([SystemMessage("Be kind."), HumanMessage("Hi?")], style, 30)
    assert kept[0].content == f"Be kind.\n\n{style.preamble}" and len(kept) == 2
    query = worded_query("What is 3 + 5?", style, 30)
    assert query.startswith(style.preamble) and query.endswith("30 tokens.")


def test_the_middleware_keeps_a_preamble_in_the_agents_system_prompt():
    from langchain.agents.middleware import ModelRequest

    from langchain_tale.middleware import TaleBudgetMiddleware
    from tests.lc_fakes import UsageFakeChatModel

    middleware = TaleBudgetMiddleware(estimator=FixedBudgetEstimator(40), style="concise")
    request = ModelRequest(
        model=UsageFakeChatModel(responses=["[[8]]"]),
        messages=[HumanMessage("What is 3 + 5?")],
        system_message=SystemMessage("You add numbers."),
        state={"messages": []},  # type: ignore[typeddict-item]
    )
    step = middleware.step_method(request.model)
    budgeted = middleware._step_request(request, 40, step)
    assert budgeted.system_message is not None
    assert budgeted.system_message.text == f"You add numbers.\n\n{get_style('concise').preamble}"
    human = budgeted.messages[-1]
    assert human.text.endswith("shorter than 40 tokens.")
    assert not any(isinstance(m, SystemMessage) for m in budgeted.messages)


# -- escalation ------------------------------------------------------------------------------
def test_escalation_lets_a_reply_run_past_its_budget_up_to_max_tokens():
    model = ContinuingModel()
    pipeline = TalePipeline(
        model, estimator=FixedBudgetEstimator(20), method="tale-fixed:20@words+escalate"
    )
    result = pipeline.solve("What is 6 * 7?")
    assert model.requests == [(None, 512)]  # no cap at the budget: vanilla's cap
    assert not result.forced and result.answer == "42"
    assert result.record.usage.output_tokens == len(REASONING.split())


def test_escalation_forces_the_answer_only_at_max_tokens():
    model = ContinuingModel()
    pipeline = TalePipeline(
        model,
        estimator=FixedBudgetEstimator(20),
        method="tale-fixed:20@words+escalate",
        max_tokens=50,
    )
    result = pipeline.solve("What is 6 * 7?")
    assert model.requests[0] == (None, 50)
    assert result.forced and result.text.endswith(FORCE_CUE + "42]]")


@pytest.mark.parametrize("bad", ["vanilla+escalate", "tale-heuristic+force1.5+escalate"])
def test_escalation_needs_a_budget_and_replaces_force(bad):
    with pytest.raises(ValueError):
        parse_method(bad)


def test_escalate_round_trips_in_a_spec():
    method = parse_method("tale-heuristic@concise+ex3+escalate")
    assert method.spec == "tale-heuristic@concise+ex3+escalate" and method.forces_answer


# -- the prefix the model reused ---------------------------------------------------------------
def test_reused_prefix_counts_the_common_start_and_replays_a_whole_prompts_last_token():
    assert reused_prefix([], [1, 2, 3], 3) == 0
    assert reused_prefix([1, 2, 3, 4], [1, 2, 9, 9, 9], 4) == 2
    assert reused_prefix([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 7], 4) == 3


def test_cached_input_tokens_add_up_and_stay_inside_input_tokens():
    a = TokenUsage(input_tokens=100, cached_input_tokens=80, output_tokens=5, source="provider")
    b = TokenUsage(input_tokens=50, cached_input_tokens=0, output_tokens=5, source="provider")
    assert (a + b).cached_input_tokens == 80 and (a + b).input_tokens == 150


# -- the benchmark -----------------------------------------------------------------------------
def _row(method: str, i: int, correct: bool, **kw: object) -> BenchRow:
    return BenchRow(method=method, id=f"i{i}", correct=correct, output_tokens=100, **kw)  # type: ignore[arg-type]


def test_the_stronger_of_two_baselines_is_the_reference():
    rows = [_row("vanilla", i, i < 6) for i in range(10)]
    rows += [_row("vanilla-paper", i, i < 8) for i in range(10)]
    rows += [_row("tale", i, i < 7, cached_input_tokens=0) for i in range(10)]
    methods = ["vanilla", "vanilla-paper", "tale"]
    summaries = summarize_bench(rows, methods, baseline="vanilla,vanilla-paper")
    tale = summaries[-1]
    assert tale.baseline == "vanilla-paper" and tale.diff == pytest.approx(-0.1)
    assert "vs vanilla-paper (95% CI)" in bench_table(summaries)
    weaker_first = summarize_bench(rows, methods, baseline=["vanilla-paper", "vanilla"])
    assert weaker_first[-1].baseline == "vanilla-paper"
    with pytest.raises(ValueError, match="not among"):
        summarize_bench(rows, methods, baseline="vanilla,cot")


def test_input_evaluated_is_input_less_what_the_cache_gave():
    rows = [_row("vanilla", i, True, input_tokens=600, cached_input_tokens=500) for i in range(4)]
    (summary,) = summarize_bench(rows, ["vanilla"])
    assert summary.input_tokens == 600 and summary.evaluated_input_tokens == 100
    assert "input evaluated" in bench_table([summary])


def test_by_method_runs_each_method_over_all_items_before_the_next(tmp_path, scripted):
    items = [Item(id=f"i{k}", question=f"What is {k} + 1?", answer=str(k + 1)) for k in range(3)]
    model = scripted("[[1]]")
    out = tmp_path / "rows.jsonl"
    run_bench(model, items, ["vanilla", "direct"], out, progress=False, by_method=True)
    order = [json.loads(line)["method"] for line in out.read_text().splitlines()]
    assert order == ["vanilla"] * 3 + ["direct"] * 3
    assert len(load_rows(out)) == 6


def test_bench_leaves_out_excluded_items_before_sampling(tmp_path, monkeypatch, scripted):
    from tale_shared.research import cli as research_cli

    data = tmp_path / "data.jsonl"
    items = [Item(id=f"i{k}", question=f"What is {k} + 1?", answer=str(k + 1)) for k in range(8)]
    data.write_text("".join(json.dumps(i.model_dump()) + "\n" for i in items))
    seen = tmp_path / "seen.jsonl"
    seen.write_text("".join(json.dumps({"id": f"i{k}"}) + "\n" for k in range(5)))
    monkeypatch.setattr(
        research_cli, "load_model", lambda spec, threads=None, lora=None, **_: scripted("[[1]]")
    )
    out = tmp_path / "b.jsonl"
    argv = ["bench", "--data", str(data), "--methods", "vanilla", "--exclude", str(seen)]
    assert cli.main([*argv, "--by-method", "--out", str(out)]) == 0
    assert sorted(r.id for r in load_rows(out)) == ["i5", "i6", "i7"]
