"""TALE-PT by self-training: each item's shortest correct answer, part of them under a stated
budget, never a held-back item, never another model's answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tale_shared import cli
from tale_shared.research.bench import BenchRow
from tale_shared.research.export import (
    export_self_training,
    shortest_correct_answers,
    stated_budget,
)

MODEL = "local/qwen2.5-coder-1.5b"


def _files(tmp_path: Path) -> tuple[Path, Path]:
    items = tmp_path / "items.jsonl"
    items.write_text(
        "".join(
            json.dumps({"id": str(i), "question": f"What is {i} + 2?", "answer": str(i + 2)}) + "\n"
            for i in range(40)
        )
    )
    rows = tmp_path / "rows.jsonl"

    def row(i: int, method: str, tokens: int, **extra: object) -> str:
        text = f"{i} + 2 = {i + 2}. " + "so " * tokens + f"[[{i + 2}]]"
        fields = {"correct": True, "output_tokens": tokens, "model": MODEL, "text": text}
        fields.update(extra)
        return BenchRow(method=method, id=str(i), **fields).model_dump_json() + "\n"  # type: ignore[arg-type]

    lines = []
    for i in range(40):
        lines.append(row(i, "vanilla", 200))
        lines.append(row(i, "vanilla+ex3", 90))
        lines.append(row(i, "direct", 5))  # no reasoning: never a target
        lines.append(row(i, "chain-of-draft", 40, correct=False))  # wrong: never a target
        lines.append(row(i, "tale-fixed:20", 30, cut=True))  # cut at its cap: never a target
        lines.append(row(i, "tale-fixed:60", 60, model="local/other"))  # another model
        # graded right by its last number, but without the [[answer]] it was asked for
        lines.append(
            row(i, "tale-fixed:50", 50, text=f"{i} + 2 = {i + 2}. Final answer: [{i + 2}]")
        )
    rows.write_text("".join(lines))
    return items, rows


def test_the_target_is_the_shortest_correct_uncut_answer_with_reasoning(tmp_path):
    items, rows = _files(tmp_path)
    best = shortest_correct_answers([rows], items, model=MODEL)
    assert len(best) == 40
    assert {a.tokens for a in best.values()} == {90}
    assert {a.source for a in best.values()} == {"rows.jsonl:vanilla+ex3"}
    assert shortest_correct_answers([rows], items)["3"].tokens == 60  # any model when unasked


def test_part_of_the_examples_state_a_budget_just_above_the_answer(tmp_path):
    items, rows = _files(tmp_path)
    out = tmp_path / "self.jsonl"
    held = {"0", "1", "2"}
    n = export_self_training([rows], out, data=items, model=MODEL, seed=1, leave_out=held)
    examples = [json.loads(line) for line in out.read_text().splitlines()]
    assert n == len(examples) == 37 and not held & {e["id"] for e in examples}
    budgeted = [e for e in examples if e["budget"] is not None]
    assert 8 < len(budgeted) < 29  # about half
    for e in examples:
        roles = [m["role"] for m in e["messages"]]
        prompt = " ".join(m["content"] for m in e["messages"][:-1])
        assert roles[-1] == "assistant" and e["messages"][-1]["content"].endswith("]]")
        if e["budget"] is None:
            assert roles == ["user", "assistant"] and "tokens" not in prompt
        else:
            assert e["budget"] == stated_budget(90) == 90 and "90 tokens" in prompt
            assert roles[0] == "system"  # the style the estimator states budgets in
    assert stated_budget(91) == 100


def test_the_cli_writes_self_training_data_and_refuses_its_input_as_output(tmp_path, capsys):
    items, rows = _files(tmp_path)
    out = tmp_path / "self.jsonl"
    argv = ["export", "self", str(rows), "--data", str(items), "--model", MODEL]
    assert cli.main([*argv, "--out", str(out), "--budget-share", "0"]) == 0
    examples = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(examples) == 40 and all(e["budget"] is None for e in examples)
    assert cli.main([*argv, "--out", str(rows)]) == 2
    assert cli.main([*argv, "--out", str(out), "--budget-share", "2"]) == 2
    assert "budget_share" in capsys.readouterr().err


@pytest.mark.parametrize("style", ["vanilla", "direct"])
def test_a_style_without_a_budget_cannot_state_one(tmp_path, style):
    items, rows = _files(tmp_path)
    with pytest.raises(ValueError, match="states no budget"):
        export_self_training([rows], tmp_path / "o.jsonl", data=items, style=style)
