import asyncio
import json
import pickle
from pathlib import Path

import pytest

from tale_shared.estimators import (
    DEFAULT_FALLBACK_TOKENS,
    EstimatorFileError,
    FixedBudgetEstimator,
    HeuristicEstimator,
    RegressionEstimator,
    ZeroShotEstimator,
    make_estimator,
    parse_budget_reply,
)

Q = "Tom has 3 apples and buys 5 more. How many apples does he have?"
HARD = (
    "A store sells pens at $2 each and notebooks at $5 each. Maria buys 3 pens and twice as "
    "many notebooks, then pays with a $50 bill. After a 10% discount on the total, how much "
    "change does she get, and what share of her money did she spend on notebooks?"
)


def test_fixed_budget():
    budget = FixedBudgetEstimator(120).estimate(Q)
    assert (budget.tokens, budget.estimator, budget.usage.total_tokens) == (120, "fixed", 0)
    for bad in (0, -5, 2.5):
        with pytest.raises(ValueError):
            FixedBudgetEstimator(bad)


def test_heuristic_grows_with_the_work_in_the_question():
    est = HeuristicEstimator()
    easy, hard = est.estimate("What is 2 + 3?"), est.estimate(HARD)
    assert easy.tokens < hard.tokens
    assert est.min_tokens <= easy.tokens and hard.tokens <= est.max_tokens
    assert easy.usage.source == "none" and easy.usage.total_tokens == 0


@pytest.mark.parametrize(
    "est",
    [
        FixedBudgetEstimator(10),
        HeuristicEstimator(),
        RegressionEstimator().fit(["a b", "c d e"], [10, 20]),
    ],
)
@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_every_estimator_rejects_an_empty_question(est, question):
    with pytest.raises(ValueError, match="empty"):
        est.estimate(question)


@pytest.mark.parametrize(
    ("reply", "value", "problem"),
    [
        ("Budget: [[120]]", 120, None),
        ("[[ 1,500 tokens ]]", 1500, None),
        ("Budget: 85", 85, None),
        ("I think about 60 tokens are enough.", 60, None),
        ("Budget: [[-1]]", None, "negative"),
        ("[[0]]", None, "zero"),
        ("[[99999999]]", None, "absurd"),
        ("I cannot estimate that.", None, "no number"),
        ("", None, "nothing"),
    ],
)
def test_parse_budget_reply(reply, value, problem):
    parsed = parse_budget_reply(reply)
    assert parsed.value == value
    assert (parsed.problem is None) if problem is None else (problem in parsed.problem)


def test_zero_shot_sends_the_paper_prompt_and_records_its_own_usage(scripted):
    model = scripted("Budget: [[150]]")
    budget = ZeroShotEstimator(model).estimate(Q)
    ((messages, max_tokens),) = model.calls
    assert "estimate the minimum number of tokens" in messages[0].content
    assert f'Question: "{Q}"' in messages[0].content and max_tokens == 48
    assert budget.tokens == 150 and budget.estimator == "zero-shot" and not budget.fell_back
    assert budget.usage.input_tokens == len(messages[0].content.split())
    assert budget.usage.output_tokens == 2 and budget.model == "gpt-4o-mini"


@pytest.mark.parametrize("reply", ["no idea", "[[-1]]", "[[0]]", "[[1e12]]", "Budget: [[-40]]"])
def test_zero_shot_falls_back_never_to_a_negative_budget(scripted, reply):
    budget = ZeroShotEstimator(scripted(reply)).estimate(Q)
    assert budget.tokens == DEFAULT_FALLBACK_TOKENS and budget.fell_back
    assert budget.raw_reply == reply and budget.usage.output_tokens > 0


def test_zero_shot_clamps_into_bounds(scripted):
    low = ZeroShotEstimator(scripted("[[10]]"), min_tokens=40).estimate(Q)
    high = ZeroShotEstimator(scripted("[[9000]]"), max_tokens=1000).estimate(Q)
    assert (low.tokens, high.tokens) == (40, 1000) and not low.fell_back


def test_zero_shot_model_error_falls_back_or_raises(scripted):
    broken = scripted("x", error=ConnectionError("down"))
    budget = ZeroShotEstimator(broken).estimate(Q)
    assert budget.tokens == DEFAULT_FALLBACK_TOKENS and "failed" in budget.fallback_reason
    with pytest.raises(ConnectionError):
        ZeroShotEstimator(broken, on_error="raise").estimate(Q)


def test_zero_shot_timeout_sync_and_async(scripted):
    slow = scripted("[[100]]", delay_s=0.5)
    est = ZeroShotEstimator(slow, timeout_s=0.05)
    assert "timed out" in est.estimate(Q).fallback_reason
    assert "timed out" in asyncio.run(est.aestimate(Q)).fallback_reason


async def test_zero_shot_async_uses_the_async_call(scripted):
    model = scripted("[[77]]")
    budget = await ZeroShotEstimator(model).aestimate(Q)
    assert budget.tokens == 77 and len(model.calls) == 1


async def test_cheap_estimators_have_async_too():
    assert (await FixedBudgetEstimator(9).aestimate(Q)).tokens == 9
    assert (await HeuristicEstimator().aestimate(Q)).tokens == HeuristicEstimator().estimate(
        Q
    ).tokens


def _fitted() -> RegressionEstimator:
    easy = [f"What is {i} plus {i + 1}?" for i in range(20)]
    hard = [f"{HARD} Then repeat it for {i} friends and average the change." for i in range(20)]
    return RegressionEstimator().fit(easy + hard, [40] * 20 + [300] * 20)


def test_regression_learns_the_budget_ordering():
    est = _fitted()
    easy = est.estimate("What is 7 plus 9?").tokens
    hard = est.estimate(HARD).tokens
    assert easy < 90 and hard > 180
    assert est.metadata["n_train"] == 40


def test_regression_save_load_round_trip(tmp_path):
    est = _fitted()
    path = est.save(tmp_path / "est.json")
    loaded = RegressionEstimator.load(path)
    questions = ["What is 1 plus 2?", HARD, "Sam buys 4 apples at $3 each."]
    assert loaded.predict(questions) == pytest.approx(est.predict(questions))
    assert json.loads(path.read_text())["format"] == "tale-regression-estimator"


def test_regression_refuses_a_pickle(tmp_path):
    path = tmp_path / "est.pkl"
    path.write_bytes(pickle.dumps({"coef": [1.0]}))
    with pytest.raises(EstimatorFileError, match="never unpickles"):
        RegressionEstimator.load(path)


def test_regression_refuses_a_tampered_file(tmp_path):
    path = _fitted().save(tmp_path / "est.json")
    doc = json.loads(path.read_text())
    doc["params"]["intercept"] += 3.0
    path.write_text(json.dumps(doc))
    with pytest.raises(EstimatorFileError, match="modified or corrupted"):
        RegressionEstimator.load(path)


@pytest.mark.parametrize(
    "content",
    [
        b"not json at all",
        b'{"format": "other"}',
        b"[1, 2]",
        b'{"format": "tale-regression-estimator", "version": 99}',
    ],
)
def test_regression_refuses_corrupt_files(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(EstimatorFileError):
        RegressionEstimator.load(path)


def test_regression_refuses_parameters_that_validate_badly(tmp_path):
    from tale_shared.estimators.regression import _digest

    path = _fitted().save(tmp_path / "est.json")
    doc = json.loads(path.read_text())
    doc["params"]["idf"] = doc["params"]["idf"][:-1]  # consistent hash, inconsistent shapes
    doc["sha256"] = _digest(doc["params"])
    path.write_text(json.dumps(doc))
    with pytest.raises(EstimatorFileError, match="inconsistent"):
        RegressionEstimator.load(path)


def test_regression_fit_rejects_bad_training_data():
    with pytest.raises(ValueError):
        RegressionEstimator().fit(["a", "b"], [10])
    with pytest.raises(ValueError):
        RegressionEstimator().fit(["a", "b"], [10, -3])
    with pytest.raises(RuntimeError, match="not fitted"):
        RegressionEstimator().estimate(Q)


def test_make_estimator_specs(scripted, tmp_path):
    assert make_estimator("fixed:64").estimate(Q).tokens == 64
    assert isinstance(make_estimator("heuristic"), HeuristicEstimator)
    assert isinstance(make_estimator("zero-shot", scripted("[[5]]")), ZeroShotEstimator)
    path = _fitted().save(tmp_path / "e.json")
    assert isinstance(make_estimator(f"regression:{path}"), RegressionEstimator)
    for bad in ("fixed:abc", "oracle", "zero-shot"):
        with pytest.raises(ValueError):
            make_estimator(bad)


def test_the_packaged_default_estimator_loads_safely_and_predicts_in_bounds():
    from tale_shared.profiles import default_regression_estimator, packaged_estimator_path
    from tale_shared.research.search import load_results
    from tale_shared.research.training import training_pairs

    assert packaged_estimator_path().is_file()
    est = default_regression_estimator()
    assert est.metadata["models"] == ["local/qwen2.5-coder-1.5b"]
    # fitted on every optimal budget of the committed 100-item search, none left out
    search = Path(__file__).parents[1] / est.metadata["trained_on"]
    pairs = training_pairs(load_results(search))
    assert len({r.id for r in load_results(search)}) >= 100
    assert est.metadata["n_train"] == len(pairs) >= 40
    budgets = [est.estimate(q).tokens for q in (Q, HARD)]
    assert all(est.min_tokens <= b <= est.max_tokens for b in budgets)
    assert make_estimator("regression").estimate(Q).tokens == budgets[0]


def test_one_resolver_builds_a_spec_once_and_binds_zero_shot_per_call(monkeypatch):
    import tale_shared.estimators as estimators

    built = []
    real = estimators.make_estimator
    monkeypatch.setattr(estimators, "make_estimator", lambda *a: built.append(a) or real(*a))
    slot = estimators.resolve_estimator("fixed:90")
    assert [slot.bind(lambda: None).estimate("q").tokens for _ in range(3)] == [90, 90, 90]
    assert len(built) == 1 and slot.spec == "fixed:90"

    zero = estimators.resolve_estimator("zero_shot")
    assert zero.zero_shot and zero.estimator is None and zero.spec == "zero-shot"
    with pytest.raises(ValueError, match="needs a model"):
        zero.bind(lambda: None)
    assert estimators.resolve_estimator(None).bind(lambda: None) is None
    with pytest.raises(TypeError, match="spec string"):
        estimators.resolve_estimator(200)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown estimator"):
        estimators.resolve_estimator("guess")


def test_the_heuristic_doubles_the_budget_of_a_problem_in_mathematical_notation():
    from tale_shared.estimators.heuristic import HeuristicEstimator, question_features

    words = "If f of x is three x minus two over x minus two, what is f at minus two?"
    latex = r"If $f(x) = \frac{3x-2}{x-2}$, what is the value of $f(-2)$?"
    assert question_features(latex).formulas == 2
    assert question_features("It costs $5 and then $10 more. How much?").formulas == 0
    plain = HeuristicEstimator(notation_factor=1.0)
    assert (
        HeuristicEstimator().estimate(latex).tokens
        == plain.clamp(2 * (plain.estimate(latex).tokens))
        or HeuristicEstimator().estimate(latex).tokens > plain.estimate(latex).tokens
    )
    assert HeuristicEstimator().estimate(words).tokens == plain.estimate(words).tokens
    assert HeuristicEstimator().spec == "heuristic" and plain.spec is None
