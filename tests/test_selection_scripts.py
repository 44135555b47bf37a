"""The default-selection scripts apply the written rule to rows: decisions and target checks
that could come out otherwise (benchmarks/select_default.py, benchmarks/heldout_report.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tale_shared.research.bench import BenchRow, load_rows

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str, results: Path):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    module.RESULTS = results  # type: ignore[attr-defined]
    return module


def _rows(
    spec: dict[str, tuple[int, int] | tuple[int, int, float]], n: int, model: str = "local/m"
) -> list[BenchRow]:
    """method -> (items right of n, output tokens[, seconds]); the right ones come first."""
    return [
        BenchRow(
            method=m,
            id=f"q{i:03d}",
            correct=i < figures[0],
            output_tokens=figures[1],
            input_tokens=100,
            seconds=figures[2] if len(figures) > 2 else 1.0,
            model=model,
        )
        for m, figures in spec.items()
        for i in range(n)
    ]


def _save(path: Path, rows: list[BenchRow]) -> None:
    path.write_text("".join(r.model_dump_json() + "\n" for r in rows), encoding="utf-8")


def _write(path: Path, spec: dict[str, tuple[int, int, float]], n: int = 100) -> None:
    _save(path, _rows(spec, n))


def test_confirm_decides_on_gsm8k_alone_only_when_gsm8k_rules_every_finalist_out(tmp_path):
    select = _script("select_default", tmp_path)
    gsm = tmp_path / "confirm-gsm8k-train.jsonl"
    base = {"vanilla": (60, 300, 10.0), "vanilla-paper": (62, 300, 10.0)}
    # both lose 8+ points: none eligible whatever MATH says; the higher lower bound wins
    _write(gsm, {**base, "a": (54, 100, 5.0), "b": (56, 120, 5.0)})
    report = select.confirm(["a", "b"])
    assert report[-1] == "default: b (NONE eligible: the highest GSM8K lower bound)"
    assert "GSM8K alone rules it out" in "\n".join(report)
    # one that holds on GSM8K needs the MATH rows before anything is decided
    _write(gsm, {**base, "a": (54, 100, 5.0), "b": (62, 120, 5.0)})
    with pytest.raises(SystemExit, match="b passes on GSM8K dev: the MATH dev rows are needed"):
        select.confirm(["a", "b"])
    _write(
        tmp_path / "confirm-math500-dev.jsonl", {**base, "a": (30, 300, 9.0), "b": (60, 400, 9.0)}
    )
    assert select.confirm(["a", "b"])[-1] == "default: b (eligible)"


def test_the_heldout_report_checks_each_target_against_the_stronger_vanilla(tmp_path):
    report = _script("heldout_report", tmp_path)
    _write(
        tmp_path / "heldout-gsm8k-test.jsonl",
        {
            "vanilla": (180, 300, 10.0),
            "vanilla-paper": (210, 300, 10.0),  # the stronger one
            "cheap": (210, 90, 3.0),  # meets every target
            "lossy": (180, 90, 5.0),  # -10 points, 0.50x the seconds
        },
        n=300,
    )
    lines = report.report_set("gsm8k-test")
    assert lines[0] == "## gsm8k-test: n=300"
    assert "`vanilla-paper`" in lines[2]
    cheap = next(line for line in lines if line.startswith("| cheap |"))
    lossy = next(line for line in lines if line.startswith("| lossy |"))
    assert "0.30x: yes" in cheap and "+0.0: yes" in cheap and "**no**" not in cheap
    assert "-10.0: **no**" in lossy and "0.50x: **no**" in lossy
    assert report.report_set("svamp") == ["## svamp", "", "not run yet", ""]


def test_the_heldout_report_keeps_a_running_method_out_of_the_complete_table(tmp_path):
    report = _script("heldout_report", tmp_path)
    path = tmp_path / "heldout-math500-test.jsonl"
    _write(path, {"vanilla": (60, 500, 20.0), "vanilla-paper": (50, 500, 20.0)}, n=150)
    _write(tmp_path / "done.jsonl", {"default": (60, 200, 10.0)}, n=150)
    _write(tmp_path / "running.jsonl", {"pareto": (20, 100, 5.0)}, n=40)
    path.write_text(
        path.read_text()
        + (tmp_path / "done.jsonl").read_text()
        + (tmp_path / "running.jsonl").read_text()
    )
    lines = report.report_set("math500-test")
    assert lines[0] == "## math500-test: n=150"
    assert next(line for line in lines if line.startswith("| default |"))
    running = lines.index(
        "## math500-test, `pareto`: n=40 (in progress: 40 of 150 items answered so far)"
    )
    assert all(not line.startswith("| pareto |") for line in lines[:running])
    assert any(line.startswith("| pareto | 50.0% |") for line in lines[running:])


def test_the_tale_pt_rule_reads_math_in_every_branch_and_budgets_only_if_followed(tmp_path):
    import json

    select = _script("select_tale_pt", tmp_path)
    select.DATA = tmp_path
    for folder, name, question in [
        ("gsm8k", "train.norm.jsonl", "Tom has 3 apples and buys 4 more. How many?"),
        ("math500-dev", "dev.norm.jsonl", "Find $x$ if $x^2 = 9$ and $x > 0$."),
    ]:
        (tmp_path / folder).mkdir()
        items = [{"id": f"q{i:03d}", "question": question, "answer": "1"} for i in range(40)]
        (tmp_path / folder / name).write_text("".join(json.dumps(x) + "\n" for x in items))
    base = {"vanilla": (20, 300), "vanilla-paper": (24, 300), "vanilla+ex3": (23, 120)}
    # the tuned model ignores a stated budget: ~130 tokens at 25 and at 200
    following = [
        BenchRow(
            method=f"tale-fixed:{b}@system",
            id=f"q{i:03d}",
            output_tokens=125 + i % 7 + b // 100,
            model="local/m+tuned",
        )
        for b in (25, 50, 100, 200)
        for i in range(30)
    ]
    _save(tmp_path / "tale-pt-following-tuned.jsonl", following)
    # GSM8K: B and C brief and as accurate; MATH: the tuned model loses 10 points, A does not
    _save(tmp_path / "confirm-gsm8k-train.jsonl", _rows(base, 40))
    _save(tmp_path / "screen-math500-dev.jsonl", _rows({**base, "vanilla+ex3": (24, 280)}, 40))
    tuned = {"vanilla": (24, 110), "tale-heuristic@system": (24, 100), "vanilla+ex3": (23, 100)}
    _save(tmp_path / "tale-pt-dev-gsm8k-train.jsonl", _rows(tuned, 40, "local/m+tuned"))
    lossy = {"vanilla": (20, 200), "tale-heuristic@system": (20, 200), "vanilla+ex3": (20, 200)}
    _save(tmp_path / "tale-pt-dev-math500-dev.jsonl", _rows(lossy, 40, "local/m+tuned"))
    report = select.decide()
    text = "\n".join(report)
    assert "does NOT follow a stated budget" in text
    assert "states a budget the tuned model does not follow" in text
    assert "E routes word problems to vanilla (tuned) (C states a budget" in text
    # B wins GSM8K dev but loses 10 points on MATH dev: MATH rules it out; E sends MATH to A
    assert report[-1].startswith("default: routed (eligible")
    # a tuned model that also holds on MATH: B is cheaper than the routed rows there
    _save(
        tmp_path / "tale-pt-dev-math500-dev.jsonl",
        _rows(
            {"vanilla": (24, 150), "tale-heuristic@system": (24, 150), "vanilla+ex3": (24, 150)},
            40,
            "local/m+tuned",
        ),
    )
    assert select.decide()[-1].startswith("default: vanilla (tuned) (eligible")
    # C left unrun (the tuned model does not follow budgets): the same choice, C named as such
    for dev in ("tale-pt-dev-gsm8k-train.jsonl", "tale-pt-dev-math500-dev.jsonl"):
        kept_rows = [r for r in load_rows(tmp_path / dev) if r.method != "tale-heuristic@system"]
        _save(tmp_path / dev, kept_rows)
    without_c = select.decide()
    assert "- tale-heuristic@system (tuned): not run (states a budget" in "\n".join(without_c)
    assert without_c[-1].startswith("default: vanilla (tuned) (eligible")
    # nothing brief enough on GSM8K: today's default stays
    _save(
        tmp_path / "tale-pt-dev-gsm8k-train.jsonl",
        _rows(
            {"vanilla": (24, 290), "tale-heuristic@system": (24, 290), "vanilla+ex3": (24, 290)},
            40,
            "local/m+tuned",
        ),
    )
    _save(tmp_path / "confirm-gsm8k-train.jsonl", _rows({**base, "vanilla+ex3": (23, 200)}, 40))
    assert select.decide()[-1] == "default: vanilla+ex3 (NONE eligible: A stays the default)"
    # a tuned model that keeps to the budget it is told: C may state one
    kept = [
        BenchRow(
            method=f"tale-fixed:{b}@system",
            id=f"q{i:03d}",
            output_tokens=int(b * 0.9) + i % 3,
            model="local/m+tuned",
        )
        for b in (25, 50, 100, 200)
        for i in range(30)
    ]
    _save(tmp_path / "tale-pt-following-tuned.jsonl", kept)
    follows, figures = select.follows_budgets()
    assert follows and "Spearman r 0.9" in figures


def test_the_tale_pt_report_times_only_the_same_sitting(tmp_path):
    report = _script("tale_pt_report", tmp_path)
    base = {"vanilla": (180, 300), "vanilla-paper": (210, 300), "vanilla+ex3": (200, 120)}
    _save(tmp_path / "heldout-gsm8k-test.jsonl", _rows(base, 300))
    tuned = _rows({"vanilla": (208, 120)}, 300, "local/m+tuned")
    for r in tuned:
        r.seconds = 4.0
    _save(tmp_path / "tale-pt-heldout-gsm8k-test.jsonl", tuned)
    lines = report.report_set("gsm8k-test")
    assert lines[0] == "## gsm8k-test: n=300" and "`vanilla-paper`" in lines[2]
    text = "\n".join(lines)
    assert "| vanilla (tuned) | 69.3% | -0.7 [" in text
    assert "output 0.40x (target <= 0.45x): yes" in text
    assert "accuracy -0.7 (target >= -1 pts): yes" in text
    assert (
        "median s (target <= 0.50x): not measured yet" in text
    )  # the base rows' seconds are another sitting's
    retimed = _rows({"vanilla-paper": (42, 300)}, 60)
    for r in retimed:
        r.seconds = 10.0
    _save(tmp_path / "tale-pt-retime-gsm8k-test.jsonl", retimed)
    text = "\n".join(report.report_set("gsm8k-test"))
    # the vanilla re-timed alone is not a ratio: the default's seconds are another sitting's
    assert "median s (target <= 0.50x): not measured yet" in text
    default = _rows({"vanilla": (40, 120)}, 60, "local/m+tuned")
    for r in default:
        r.seconds = 6.0
    _save(tmp_path / "tale-pt-retime-default-gsm8k-test.jsonl", default)
    text = "\n".join(report.report_set("gsm8k-test"))
    assert "median s 0.60x (target <= 0.50x, n=60, same sitting): **no**" in text
    assert report.report_set("svamp") == ["## svamp", "", "not run yet", ""]


def test_the_agent_report_checks_the_plain_agent_and_the_default_on_each_template_group(
    tmp_path,
):
    from tale_shared.research.agent_bench import AgentRow

    report = _script("agent_tools_report", tmp_path)
    plain, tale = "demo&answer-tool", "demo&answer-tool&tale"

    def row(config: str, i: int, template: str, right: bool, calls: int, out: int) -> AgentRow:
        return AgentRow(
            method=config, id=f"{template}-{i}", correct=right, output_tokens=out,
            input_tokens=1000, model="local/m", framework="langchain", template=template,
            tool_calls=calls,
        )  # fmt: skip

    rows = []
    for i in range(20):  # 20 original tasks: plain right on 14, tale on 13; tale skips tools once
        rows.append(row(plain, i, "buy-three", i < 14, 3, 100))
        rows.append(row(tale, i, "buy-three", i < 13, 0 if i == 19 else 3, 50))
    for i in range(10):  # 10 fresh tasks: both right on 5
        rows.append(row(plain, i, "refund", i < 5, 2, 100))
        rows.append(row(tale, i, "refund", i < 5, 2, 50))
    _save(tmp_path / "agents-tools-r2-heldout-langchain.jsonl", rows)
    text = "\n".join(report.report_framework("langchain"))
    assert f"| fresh 3 | {tale} | 10 | 50.0% | +0.0" in text
    assert f"| original 6 | {plain} | 20 | 70.0% |" in text
    # plain: 19 of 30 right (63.3%), tools in every run; tale: one run without a tool
    assert (
        "runs with a tool call 100% (target >= 90%): yes; success 63.3% (target >= 60%): yes"
        in text
    )
    assert "runs with a tool call 97% (target >= plain's 100%): **no**" in text
    assert "success -3.3 (target >= -2): **no**" in text
    assert "output 0.50x (target <= 0.60x): yes" in text
    assert report.report_framework("llama-index") == ["## llama-index", "", "not run yet", ""]
