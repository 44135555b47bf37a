"""Budget following: Spearman and median output/budget from bench rows, table, plot, CLI."""

from __future__ import annotations

import pytest

from tale_shared import cli
from tale_shared.research.bench import BenchRow
from tale_shared.research.following import budget_following, spearman

BUDGETS = (25, 50, 100, 200)


def _rows(model: str, length: object) -> list[BenchRow]:
    return [
        BenchRow(
            method=f"tale-fixed:{b}@system",
            id=str(i),
            budget=b,
            output_tokens=length(b, i),  # type: ignore[operator]
            model=model,
        )
        for b in BUDGETS
        for i in range(30)
    ]


def test_a_model_that_keeps_to_the_budget_follows_and_one_that_ignores_it_does_not():
    rows = _rows("tuned", lambda b, i: int(b * (0.8 + (i % 5) / 10)))
    rows += _rows("base", lambda b, i: 130 + (i * 7) % 20)  # ~135 tokens whatever it is told
    found = budget_following(rows)
    tuned, base = found["tuned"], found["base"]
    assert tuned.n_items == base.n_items == 30
    assert tuned.spearman > 0.9 and tuned.follows()
    assert abs(base.spearman) < 0.1 and not base.follows()
    assert base.median_ratio[25] > 5 and base.median_ratio[200] < 1


def test_items_missing_a_budget_and_failed_rows_are_left_out():
    rows = _rows("m", lambda b, i: b)
    rows = [r for r in rows if not (r.id == "3" and r.budget == 50)]
    rows.append(BenchRow(method="tale-fixed:25@system", id="x", budget=25, model="m", error="boom"))
    rows.append(BenchRow(method="vanilla", id="0", output_tokens=999, model="m"))
    assert budget_following(rows)["m"].n_items == 29


def test_spearman_handles_ties_and_refuses_what_it_cannot_rank():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2, 2], [5, 5, 9, 9]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [7, 7, 7]) == 0.0
    with pytest.raises(ValueError):
        spearman([1], [2])


def test_the_cli_writes_the_table_and_the_plot(tmp_path, capsys):
    files = []
    for model, length in [("tuned", lambda b, i: b), ("base", lambda b, i: 135)]:
        rows = tmp_path / f"{model}.jsonl"  # one model per rows file, as tale bench writes them
        rows.write_text("".join(r.model_dump_json() + "\n" for r in _rows(model, length)))
        files.append(str(rows))
    table, plot = tmp_path / "f.md", tmp_path / "f.png"
    assert cli.main(["following", *files, "--table", str(table), "--plot", str(plot)]) == 0
    text = table.read_text()
    assert "| tuned | 30 | 1.00 |" in text and "| yes |" in text and "| no |" in text
    assert plot.stat().st_size > 5_000
    assert cli.main(["following", str(rows), "--table", str(rows)]) == 2  # output = input
