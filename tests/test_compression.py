import json

import pytest

from tale_shared.compression import (
    SEPARATOR,
    compress,
    tokenize,
    training_example,
)
from tale_shared.research.export import export_tokenskip
from tale_shared.research.search import SearchResult

COT = (
    "First, we know that Natalia sold 48 clips in April. Since she sold half as many in May, "
    "she sold 48 / 2 = 24 clips in May. So the total is 48 + 24 = 72 clips."
)


def test_numbers_are_one_token_and_never_broken():
    assert tokenize("It cost $1,250.50, i.e. 12.5% more.")[:3] == ["It", "cost", "$1,250.50"]


@pytest.mark.parametrize("ratio", [0.9, 0.7, 0.5])
def test_compression_keeps_numbers_operators_and_order(ratio):
    out = compress(COT, ratio)
    kept = tokenize(out)
    assert len(kept) <= max(
        len([t for t in tokenize(COT) if any(c.isdigit() for c in t) or t in "+-*/="]),
        round(ratio * len(tokenize(COT))) + 1,
    )
    for piece in ("48 / 2 = 24", "48 + 24 = 72"):
        assert piece in out
    positions = [out.index(n) for n in ("48", "24 clips", "72")]
    assert positions == sorted(positions)


def test_connectives_go_first():
    out = compress(COT, 0.7)
    words = tokenize(out)
    assert "Since" not in words and "So" not in words and "the" not in words
    assert "Natalia" in words


def test_ratio_one_is_the_original_and_bad_ratios_are_refused():
    assert compress(COT, 1.0) == COT
    for bad in (0, -0.5, 1.5):
        with pytest.raises(ValueError):
            compress(COT, bad)


def test_training_examples_follow_the_reference_layout(tmp_path):
    ex = training_example("Q?", COT, "72", 0.7)
    assert ex["prompt"] == f"Q?{SEPARATOR}0.7{SEPARATOR}"
    assert ex["completion"].endswith("The final answer is: [[72]]")
    assert training_example("Q?", COT, "72", 1.0)["prompt"] == "Q?"
    runs = tmp_path / "r.jsonl"
    rows = [
        SearchResult(
            id=str(i),
            question=f"Q{i}?",
            gold="72",
            model="m",
            style="words",
            vanilla_correct=i % 2 == 0,
            vanilla_text=COT + " [[72]]",
        )
        for i in range(6)
    ]
    runs.write_text("".join(r.model_dump_json() + "\n" for r in rows))
    assert export_tokenskip(runs, tmp_path / "new" / "ts.jsonl") == 3  # folder made
    first = json.loads((tmp_path / "new" / "ts.jsonl").read_text().splitlines()[0])
    assert first["ratio"] in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5) and "[[72]]" in first["completion"]
