"""Training, comparison, export, calibration and plots, on fakes."""

import json
import re

import pytest

from tale_shared import cli
from tale_shared.estimators import RegressionEstimator
from tale_shared.research import cli as research_cli
from tale_shared.research.calibration import calibrate, score
from tale_shared.research.datasets import Item
from tale_shared.research.export import export_dpo, export_sft
from tale_shared.research.plots import elasticity_curve, plot_elasticity, plot_search_trajectory
from tale_shared.research.search import SearchResult, SearchStep
from tale_shared.research.training import compare_estimators, cross_validate, train_from_search


def _result(i: int, optimal: int | None = None, vanilla_ok: bool = True) -> SearchResult:
    n = 3 + i % 5
    question = "Sam buys " + " and ".join(f"{k} apples" for k in range(n)) + ". How many?"
    budget = optimal if optimal is not None else 20 * n
    return SearchResult(
        id=f"i{i}",
        question=question,
        gold="1",
        model="local/m",
        style="words",
        vanilla_tokens=300,
        vanilla_correct=vanilla_ok,
        vanilla_text="long answer [[1]]",
        optimal_budget=budget if vanilla_ok else None,
        optimal_tokens=budget - 5 if vanilla_ok else None,
        optimal_text="short [[1]]" if vanilla_ok else None,
        calls=6,
        trajectory=[
            SearchStep(budget=150, output_tokens=140, correct=True, feasible=True, answer="1"),
            SearchStep(
                budget=budget, output_tokens=budget - 5, correct=True, feasible=True, answer="1"
            ),
        ],
    )


@pytest.fixture
def runs(tmp_path):
    path = tmp_path / "runs.jsonl"
    rows = [_result(i) for i in range(40)] + [_result(99, vanilla_ok=False)]
    path.write_text("".join(r.model_dump_json() + "\n" for r in rows))
    return path


def test_train_from_search_reports_cv_and_saves_safely(runs, tmp_path):
    est, report = train_from_search(runs, folds=5)
    assert report["items"] == 40
    assert report["cv"]["mae"] < 40 and 0 <= report["cv"]["in_feasible_range"] <= 1
    # the budgets depend on the question here, so the regression beats a constant
    assert report["cv"]["mae"] < report["cv_constant_median"]["mae"]
    loaded = RegressionEstimator.load(est.save(tmp_path / "e.json"))
    assert loaded.metadata["n_train"] == 40 and loaded.metadata["models"] == ["local/m"]


def test_cross_validation_needs_enough_items():
    with pytest.raises(ValueError, match="too few"):
        cross_validate([_result(i) for i in range(3)], folds=5)


def test_compare_estimators_table(runs, scripted):
    _, report = train_from_search(runs)
    table = compare_estimators(
        runs, estimator_report=report, zero_shot_model=scripted("Budget: [[90]]")
    )
    assert "| heuristic |" in table and "| regression (5-fold CV) |" in table
    assert "| constant: training median (5-fold CV) |" in table
    assert re.search(r"\| zero-shot \| [\d.]+ \| \d+% \| 90 \| [1-9]", table)


def test_export_sft_and_dpo_in_both_layouts(runs, tmp_path):
    assert export_sft(runs, tmp_path / "s.jsonl") == 40
    row = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[0])
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert (
        row["messages"][1]["content"] == "short [[1]]"
        and "words" not in row["messages"][0]["content"]
    )
    assert export_dpo(runs, tmp_path / "d.jsonl", layout="trl") == 40
    row = json.loads((tmp_path / "d.jsonl").read_text().splitlines()[0])
    assert row["chosen"] == "short [[1]]" and row["rejected"] == "long answer [[1]]"
    export_dpo(runs, tmp_path / "d2.jsonl")
    row = json.loads((tmp_path / "d2.jsonl").read_text().splitlines()[0])
    assert row["preferred_output"][0]["content"] == "short [[1]]"


def _follower(scripted, style_followed):
    """Follows the budget only in one style's wording; otherwise writes 100 words."""

    def reply(messages):
        text = " ".join(m.content for m in messages)
        m = re.search(r"at most (\d+) words", text)
        if style_followed == "words" and m:
            return " ".join(["w"] * int(m.group(1))) + " [[8]]"
        return " ".join(["w"] * 100) + " [[8]]"

    return scripted(reply, model_name="local/x")


def test_calibration_picks_the_style_the_model_follows(scripted):
    items = [Item(id=str(i), question=f"What is {i} + {8 - i}?", answer="8") for i in range(3)]
    profile, table = calibrate(_follower(scripted, "words"), items, budgets=[40, 80, 160])
    assert profile.style == "words" and profile.source == "calibrated"
    assert profile.measurements["words"]["r"] > 0.9 and profile.measurements["paper"]["r"] == 0
    assert "| words (chosen) |" in table
    assert score({"r": 1, "within_budget": 1, "accuracy": 1}) == 1


def test_calibrate_cli_saves_the_profile_used_by_default(scripted, monkeypatch, tmp_path, capsys):
    from tale_shared.profiles import profile_for

    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": i, "question": f"{i}+{8 - i}?", "answer": "8"}) + "\n"
            for i in range(2)
        )
    )
    monkeypatch.setattr(
        research_cli,
        "load_model",
        lambda spec, threads=None, lora=None, **options: _follower(scripted, "words"),
    )
    assert profile_for("local/x").style == "paper"
    assert cli.main(["calibrate", "--model", "x", "--data", str(data), "--n", "2"]) == 0
    assert profile_for("local/x").style == "words" and "saved profile" in capsys.readouterr().out


def test_elasticity_plot_and_trajectory_plot(scripted, tmp_path):
    points = elasticity_curve(
        _follower(scripted, "words"), "What is 3 + 5?", [10, 40, 160], gold="8", style="words"
    )
    assert [p.budget for p in points] == [None, 10, 40, 160]
    assert points[1].output_tokens < points[3].output_tokens and all(p.correct for p in points)
    png = plot_elasticity(points, tmp_path / "e.png", title="q")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png2 = plot_search_trajectory(_result(1), tmp_path / "t.png")
    assert png2.stat().st_size > 1000


def test_trajectory_points_are_sorted_by_budget_and_labelled_in_try_order(monkeypatch, tmp_path):
    from tale_shared.research import plots

    drawn = {}

    def draw(budgets, tokens, correct, vanilla, out, title, labels=None):
        drawn.update(budgets=budgets, labels=labels)
        return out

    monkeypatch.setattr(plots, "_draw", draw)
    plot_search_trajectory(_result(1), tmp_path / "t.png")  # tried 150 first, then 80
    assert drawn == {"budgets": [80, 150], "labels": ["#2", "#1"]}


def test_research_cli_commands(runs, tmp_path, capsys):
    out = tmp_path / "est.json"
    assert cli.main(["train-estimator", str(runs), "--out", str(out), "--compare"]) == 0
    assert RegressionEstimator.load(out).is_fitted
    assert cli.main(["export", "sft", str(runs), "--out", str(tmp_path / "s.jsonl")]) == 0
    assert cli.main(["export", "tokenskip", str(runs), "--out", str(tmp_path / "t.jsonl")]) == 0
    assert cli.main(["plot-search", str(runs), "--id", "i3", "--out", str(tmp_path / "p.png")]) == 0
    assert cli.main(["plot-search", str(runs), "--id", "nope"]) == 2
    text = capsys.readouterr().out
    assert "| heuristic |" in text and "wrote 40 SFT examples" in text
    assert "wrote 40 TOKENSKIP examples" in text
