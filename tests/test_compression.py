import json

import pytest

from tale_shared.compression import (
    SEPARATOR,
    compress,
    kept_ratio,
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


LAID_OUT = (
    "Step 1: Natalia sold 48 clips in April.\n"
    "Step 2: In May she sold half as many, so 48 / 2 = 24 clips.\n"
    "Step 3: In total she sold 48 + 24 = 72 clips.\n"
    "So the answer is [[72]]."
)
PROSE = (
    "To solve this we first need to understand what the question is asking about the trip. "
    "The family drives for several hours in the morning and then stops for a long lunch "
    "before continuing their journey through the mountains in the afternoon, and the total "
    "time spent driving is what we want to find out in the end, so we add the two parts."
)


def test_line_breaks_and_step_layout_survive():
    out = compress(LAID_OUT, 0.7)
    lines = out.splitlines()
    assert len(lines) == 4 and [line.split()[0] for line in lines[:3]] == ["Step"] * 3
    assert "48 / 2 = 24" in lines[1] and "48 + 24 = 72" in lines[2]


@pytest.mark.parametrize("ratio", [0.9, 0.7, 0.5])
@pytest.mark.parametrize("count", [None, len], ids=["tiktoken", "characters"])
def test_the_ratio_is_met_in_the_target_tokenizer(ratio, count):
    out = compress(PROSE, ratio, count=count)
    assert abs(kept_ratio(PROSE, out, count) - ratio) <= 0.05


def test_protected_tokens_may_exceed_a_low_ratio_but_nothing_else_is_kept():
    out = compress(LAID_OUT, 0.5)
    assert kept_ratio(LAID_OUT, out) > 0.5  # numbers and operators are never dropped
    assert "Natalia" not in out and "[[72]]" in out


def test_bad_input_gets_clear_errors_or_documented_pass_through():
    from tale_shared.compression import ScorerError

    assert compress("", 0.5) == "" and compress("   ", 0.5) == ""
    assert compress("Eight.", 0.5) == "Eight." or compress("Eight", 0.5) == "Eight"
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        compress(COT, float("nan"))

    def broken(tokens):
        raise RuntimeError("model crashed")

    with pytest.raises(ScorerError, match="model crashed"):
        compress(COT, 0.5, broken)
    with pytest.raises(ScorerError, match="scores for"):
        compress(COT, 0.5, lambda tokens: [1.0])
    with pytest.raises(ScorerError, match="NaN"):
        compress(COT, 0.5, lambda tokens: [float("nan")] * len(tokens))


def test_model_scores_are_summed_over_the_words_they_cover():
    from tale_shared.compression import spans
    from tale_shared.compression.scorers import _aggregate

    text = "it costs 1,250 dollars"
    # model tokens: "it", " costs", " 1", ",", "250", " dollars" (byte offsets)
    pieces = [(0, 2, 1.0), (2, 8, 2.0), (8, 10, 3.0), (10, 11, 0.5), (11, 14, 4.0), (14, 22, 1.5)]
    assert _aggregate(text, spans(text), pieces) == [1.0, 2.0, 7.5, 1.5]  # the number whole


def test_llmlingua2_scorer_wraps_a_token_classifier():
    from tale_shared.compression import LLMLingua2Scorer

    seen = []

    def classifier(words):
        seen.append(words)
        return [0.9 if w.istitle() else 0.1 for w in words]

    scorer = LLMLingua2Scorer(classifier)
    out = compress(COT, 0.6, scorer)
    assert seen[0] == tokenize(COT) and "Natalia" in out and "48 + 24 = 72" in out
    with pytest.raises(FileNotFoundError, match="download it"):
        LLMLingua2Scorer.from_pretrained("/nonexistent/llmlingua-2")
    with pytest.raises(Exception, match="2 scores for"):
        compress(COT, 0.5, LLMLingua2Scorer(lambda words: [0.5, 0.5]))


def test_one_formatter_for_training_and_inference():
    from tale_shared.compression import tokenskip_prompt

    assert training_example("Q?", COT, "72", 0.7)["prompt"] == tokenskip_prompt("Q?", 0.7)
    assert tokenskip_prompt("Q?", 1.0) == "Q?"
    with pytest.raises(ValueError):
        tokenskip_prompt("Q?", 0)


def test_recoverability_runs_every_variant_once_and_resumes(tmp_path, scripted):
    from tale_shared.compression import rule_scorer
    from tale_shared.research.recoverability import (
        load_recover_rows,
        recoverability_table,
        run_recoverability,
        summarize_recoverability,
        truncation,
        without_final_answer,
    )

    assert (
        without_final_answer("48 + 24 = 72. So \\boxed{72} or [[72]].") == "48 + 24 = 72. So  or ."
    )
    assert truncation(PROSE, 0.5) == PROSE[: len(truncation(PROSE, 0.5))]
    assert abs(kept_ratio(PROSE, truncation(PROSE, 0.5)) - 0.5) <= 0.05

    def answer(messages):  # recovers the answer only when "48 + 24 = 72" survived
        return "[[72]]" if "48 + 24 = 72" in messages[-1].content else "[[0]]"

    model = scripted(answer)
    results = [
        SearchResult(
            id=str(i),
            question="Q?",
            gold="72",
            model="m",
            style="words",
            vanilla_correct=True,
            vanilla_text=LAID_OUT.replace("[[72]]", "\\boxed{72}"),
        )
        for i in range(2)
    ]
    out = tmp_path / "recover.jsonl"
    ran = run_recoverability(model, results, [0.7, 0.5], {"rule": rule_scorer}, out, progress=False)
    assert ran == 2 * (1 + 2 * 3)  # full, then (rule, random, truncate) x 2 ratios
    assert (
        run_recoverability(model, results, [0.7, 0.5], {"rule": rule_scorer}, out, progress=False)
        == 0
    )
    assert all("boxed" not in c[0][-1].content for c in model.calls)
    summaries = {(s.method, s.ratio): s for s in summarize_recoverability(load_recover_rows(out))}
    assert summaries[("full", 1.0)].recovered == 1.0
    assert summaries[("rule", 0.5)].recovered == 1.0  # numbers and operators are protected
    assert summaries[("truncate", 0.5)].recovered == 0.0  # the last step is cut off
    assert "| rule | 0.5 |" in recoverability_table(list(summaries.values()))
