import pytest

from tale_shared.estimators import FixedBudgetEstimator, ZeroShotEstimator
from tale_shared.pipeline import TalePipeline, hard_cap

Q = "Tom has 3 apples and buys 5 more. How many apples does he have?"


def _answerer(messages):
    if "estimate the minimum number of tokens" in messages[-1].content:
        return "Budget: [[60]]"
    return "3 + 5 = 8. [[8]]"


def test_tale_counts_the_estimator_call_and_injects_the_budget(scripted):
    model = scripted(_answerer)
    result = TalePipeline(model, estimator=ZeroShotEstimator(model), style="tokens").solve(Q)
    assert result.budget.tokens == 60 and result.answer == "8"
    sent = model.calls[1][0][-1].content
    assert "use less than 60 tokens" in sent and sent.startswith(Q)
    r = result.record
    assert [c.role for c in r.calls] == ["estimator", "answer"]
    assert r.estimator_usage.output_tokens == 2 and r.answer_usage.output_tokens == 6
    assert r.budget == 60 and r.style == "tokens" and r.cost_usd is not None


async def test_async_pipeline_matches_sync(scripted):
    model = scripted(_answerer)
    tale = TalePipeline(model, estimator=ZeroShotEstimator(model), style="words")
    a = await tale.asolve(Q)
    b = tale.solve(Q)
    assert a.record.usage == b.record.usage and a.answer == b.answer == "8"


def test_style_defaults_to_the_model_profile(scripted):
    local = TalePipeline(
        scripted("[[8]]", model_name="local/qwen2.5-coder-1.5b"),
        estimator=FixedBudgetEstimator(100),
    )
    api = TalePipeline(scripted("[[8]]"), estimator=FixedBudgetEstimator(100))
    assert (local.style.name, api.style.name) == ("system", "paper")


def test_vanilla_baseline_has_no_budget_and_one_call(scripted):
    model = scripted("[[8]]")
    result = TalePipeline.vanilla(model).solve(Q)
    assert result.budget is None and result.record.n_calls == 1
    assert "Let's think step by step." in model.calls[0][0][-1].content
    with pytest.raises(ValueError, match="needs an estimator"):
        TalePipeline(model, method="vanilla", style="words")  # words states a budget


def test_hard_cap_with_headroom(scripted):
    model = scripted("[[8]]")
    TalePipeline(
        model, estimator=FixedBudgetEstimator(100), cap_headroom=1.5, max_tokens=512
    ).solve(Q)
    assert model.calls[-1][1] == 150
    assert hard_cap(7, 1.2) == 9
    with pytest.raises(ValueError):
        hard_cap(100, 0.5)


def test_unknown_model_cost_stays_unknown(scripted):
    result = TalePipeline(
        scripted("[[8]]", model_name="mystery-llm"), estimator=FixedBudgetEstimator(50)
    ).solve(Q)
    assert result.record.cost_usd is None


def test_empty_question(scripted):
    with pytest.raises(ValueError, match="empty"):
        TalePipeline(scripted("x"), estimator=FixedBudgetEstimator(5)).solve(" ")


def test_the_core_imports_neither_framework_nor_llama_cpp():
    import subprocess
    import sys

    code = (
        "import sys, tale_shared, tale_shared.cli, tale_shared.research.search, tale_shared.local; "
        "mods = ('langchain_core', 'llama_index', 'llama_cpp'); "
        "print(sorted(m for m in mods if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_runtime_does_not_load_the_research_tools():
    import subprocess
    import sys

    code = (
        "import sys, tale_shared, tale_shared.compression, langchain_tale, llama_index_tale; "
        "print(sorted(m for m in sys.modules if m.startswith('tale_shared.research')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
