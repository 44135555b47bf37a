"""Reasoning methods: specs, exemplars, budget forcing, early exit, and the method benchmark."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from tale_shared import cli
from tale_shared.estimators import FixedBudgetEstimator
from tale_shared.methods import (
    FORCE_CUE,
    PROBE_CUE,
    EarlyExit,
    Method,
    load_exemplars,
    parse_method,
)
from tale_shared.models import Completion
from tale_shared.pipeline import TalePipeline
from tale_shared.profiles import method_for
from tale_shared.prompts import Message
from tale_shared.research.bench import (
    BenchRow,
    OracleEstimator,
    load_rows,
    paired_interval,
    pareto_front,
    run_bench,
    summarize_bench,
)
from tale_shared.research.datasets import Item
from tale_shared.usage import TokenUsage

REASONING = " ".join(f"step{i} = {i}." for i in range(60)) + " [[42]]"


class ContinuingModel:
    """Writes REASONING word by word; can continue a partial reply (like llama.cpp). A probe
    or a forced answer (partial ending in the cue) gets ``probe_reply``."""

    def __init__(self, probe_reply: str = "42]]", model_name: str = "local/fake") -> None:
        self.probe_reply = probe_reply
        self.model_name = model_name
        self.requests: list[tuple[str | None, int | None]] = []

    def _next(self, partial: str, max_tokens: int | None) -> Completion:
        if partial.endswith((PROBE_CUE, FORCE_CUE)):
            text, finish = self.probe_reply, "stop"
        else:
            done = len(partial.split())
            words = REASONING.split()[done:]
            take = words[: max_tokens or len(words)]
            text = (" " if partial else "") + " ".join(take)
            finish = "length" if len(take) < len(words) else "stop"
        return Completion(
            text=text,
            usage=TokenUsage(input_tokens=10, output_tokens=len(text.split()), source="provider"),
            model=self.model_name,
            finish_reason=finish,
        )

    def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None) -> Completion:
        self.requests.append((None, max_tokens))
        return self._next("", max_tokens)

    async def acomplete(self, messages, *, max_tokens=None):  # type: ignore[no-untyped-def]
        return self.complete(messages, max_tokens=max_tokens)

    def continue_reply(self, messages, partial, *, max_tokens):  # type: ignore[no-untyped-def]
        self.requests.append((partial, max_tokens))
        return self._next(partial, max_tokens)

    async def acontinue_reply(self, messages, partial, *, max_tokens):  # type: ignore[no-untyped-def]
        return self.continue_reply(messages, partial, max_tokens=max_tokens)


# -- specs -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("vanilla", "vanilla"),
        ("direct", "direct"),
        ("chain-of-draft", "chain-of-draft"),
        ("tale-ep", "tale-zero-shot@paper"),
        ("tale-heuristic", "tale-heuristic@words"),
        ("tale-fixed:80@system+ex2+force1.2", "tale-fixed:80@system+ex2+force1.2"),
        ("tale-heuristic@words+exit", "tale-heuristic@words+exit32x2"),
        ("oracle@system", "oracle@system"),
    ],
)
def test_method_specs_round_trip(spec, canonical):
    method = parse_method(spec)
    assert method.spec == canonical and parse_method(method.spec) == method


@pytest.mark.parametrize(
    "bad", ["", "magic", "tale-nonsense", "vanilla+force", "tale-heuristic+ex-1", "tale-x+wat"]
)
def test_bad_method_specs_are_refused(bad):
    with pytest.raises(ValueError):
        parse_method(bad)


def test_tale_is_the_models_profile_method():
    assert method_for("local/qwen2.5-coder-1.5b").name.startswith("tale (")
    assert method_for("gpt-4o-mini").spec == "tale-heuristic@paper"
    assert method_for("gpt-4o-mini", "tale-regression").style == "paper"


# -- exemplars ---------------------------------------------------------------------------------
def test_packaged_exemplars_are_short_correct_training_answers():
    exemplars = load_exemplars()
    assert len(exemplars) >= 3
    shared = Path(__file__).resolve().parents[2] / "shared"
    lines = (shared / "data/gsm8k/train.norm.jsonl").read_text(encoding="utf-8").split("\n")
    train = {json.loads(line)["question"] for line in lines if line.strip()}
    for ex in exemplars:
        assert ex.question in train  # training items only, never evaluated sets
        assert ex.reasoning.rstrip().endswith("]]") and len(ex.reasoning.split()) < 60


def test_exemplars_come_before_the_question_as_earlier_turns(scripted):
    model = scripted("3 + 5 = 8 [[8]]")
    pipeline = TalePipeline(model, method="tale-fixed:60@system+ex2")
    result = pipeline.solve("Tom has 3 apples and buys 5. How many?")
    roles = [m.role for m in result.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert result.messages[2].content == load_exemplars()[0].reasoning
    assert result.messages[-1].content.startswith("Tom has 3 apples")
    assert result.record.method == "tale-fixed:60@system+ex2"


# -- budget forcing ----------------------------------------------------------------------------
def test_forcing_continues_a_cut_reply_and_counts_the_forced_tokens():
    model = ContinuingModel()
    pipeline = TalePipeline(
        model, estimator=FixedBudgetEstimator(20), method="tale-fixed:20@words+force1.5"
    )
    result = pipeline.solve("What is 6 * 7?")
    assert model.requests[0] == (None, 30)  # the cap: ceil(20 * 1.5)
    assert result.forced and result.answer == "42"
    assert result.text.endswith(FORCE_CUE + "42]]")
    roles = [c.role for c in result.record.calls]
    assert roles == ["answer", "forced"]
    assert result.record.usage.output_tokens == 30 + 1


def test_forcing_without_continuation_asks_in_a_follow_up_call(scripted):
    replies = ["step one, step two, still going", "[[42]]"]
    model = scripted(replies)
    model.finish_reasons = ["length", "stop"]
    pipeline = TalePipeline(model, method="tale-fixed:10@words+force1.0")
    result = pipeline.solve("What is 6 * 7?")
    assert result.forced and result.answer == "42"
    follow_up = model.calls[1][0]
    assert follow_up[-2].role == "assistant" and "final answer" in follow_up[-1].content


def test_a_reply_that_finished_is_not_forced():
    model = ContinuingModel()
    pipeline = TalePipeline(model, method="tale-fixed:500@words+force1.5")
    result = pipeline.solve("What is 6 * 7?")
    assert not result.forced and [c.role for c in result.record.calls] == ["answer"]


# -- early exit --------------------------------------------------------------------------------
def test_early_exit_stops_when_probes_agree_and_counts_them():
    model = ContinuingModel(probe_reply="42]]")
    pipeline = TalePipeline(model, method=Method(early_exit=EarlyExit(every=16, agree=2)))
    result = pipeline.solve("What is 6 * 7?")
    assert result.stopped_early and result.answer == "42"
    roles = [c.role for c in result.record.calls]
    assert roles == ["answer", "probe", "answer", "probe"]
    generated = sum(c.usage.output_tokens for c in result.record.calls if c.role == "answer")
    assert generated == 32 < len(REASONING.split())
    assert result.record.usage.output_tokens == 32 + 2  # the probes' tokens count


async def test_early_exit_async_matches_sync():
    method = Method(style="vanilla", early_exit=EarlyExit(every=16, agree=3))
    sync = TalePipeline(ContinuingModel(), method=method).solve("q?")
    async_ = await TalePipeline(ContinuingModel(), method=method).asolve("q?")
    assert [c.role for c in sync.record.calls] == [c.role for c in async_.record.calls]
    assert sync.text == async_.text


def test_early_exit_needs_a_model_that_continues(scripted):
    with pytest.raises(ValueError, match="continues a reply"):
        TalePipeline(scripted("x"), method="vanilla+exit")


def test_disagreeing_probes_let_the_reply_finish():
    class Wavering(ContinuingModel):
        n = 0

        def _next(self, partial, max_tokens):  # type: ignore[no-untyped-def]
            if partial.endswith(PROBE_CUE):
                Wavering.n += 1
                self.probe_reply = f"{Wavering.n}]]"
            return super()._next(partial, max_tokens)

    result = TalePipeline(Wavering(), method=Method(early_exit=EarlyExit(every=40, agree=2))).solve(
        "q?"
    )
    assert not result.stopped_early and result.answer == "42"


# -- the benchmark -----------------------------------------------------------------------------
def _items(n: int = 6) -> list[Item]:
    return [Item(id=f"i{k}", question=f"What is {k} + 8?", answer=str(k + 8)) for k in range(n)]


def test_bench_runs_resumes_and_summarises(tmp_path, scripted):
    def reply(messages):
        q = messages[-1].content
        k = int(q.split("What is ")[1].split(" ")[0])
        if "step by step." in q:  # vanilla: long and right
            return "Let me think carefully about it. " * 5 + f"[[{k + 8}]]"
        return f"[[{k + 8 if k % 2 else 0}]]"  # direct: short, right on odd items

    model = scripted(reply)
    out = tmp_path / "bench.jsonl"
    assert run_bench(model, _items(), ["vanilla", "direct"], out, progress=False) == 12
    assert run_bench(model, _items(), ["vanilla", "direct"], out, progress=False) == 0  # resumed
    rows = load_rows(out)
    assert len(rows) == 12
    vanilla, direct = summarize_bench(rows, ["vanilla", "direct"])
    assert vanilla.accuracy == 1.0 and direct.accuracy == 0.5 and direct.diff == -0.5
    assert direct.diff_low <= -0.5 <= direct.diff_high
    assert direct.output_ratio is not None and direct.output_ratio < 0.2
    assert direct.cost_ratio is not None
    assert pareto_front([vanilla, direct]) == [direct, vanilla]


def test_pareto_plot_labels_of_close_points_do_not_overlap():
    from tale_shared.research.bench import _label_offset

    placed: list[tuple[float, float, int]] = []
    first = _label_offset(0.37, 0.550, placed)
    second = _label_offset(0.44, 0.547, placed)  # beside the first: moved below it
    third = _label_offset(0.45, 0.545, placed)  # beside both: below them again
    far = _label_offset(1.0, 0.583, placed)  # far along x: the usual place
    assert first == far == 4
    assert second < first and third < second


def test_bench_records_a_failed_call_and_runs_it_again(tmp_path, scripted):
    out = tmp_path / "bench.jsonl"
    broken = scripted("x", error=RuntimeError("server down"))
    run_bench(broken, _items(2), ["vanilla"], out, progress=False)
    assert all(r.error for r in load_rows(out))
    assert run_bench(scripted("[[8]]"), _items(2), ["vanilla"], out, progress=False) == 2


def test_bench_refuses_to_resume_a_file_another_model_answered(tmp_path, scripted):
    """Rows resume by (method, item): a base model's file resumed with a fine-tune (or one
    adapter's with another's) would mix two models' answers in one table."""
    out = tmp_path / "bench.jsonl"
    base = scripted("[[8]]", model_name="local/qwen2.5-coder-1.5b+adapter@607ced3a")
    assert run_bench(base, _items(2), ["vanilla"], out, progress=False) == 2
    same = scripted("[[8]]", model_name="local/qwen2.5-coder-1.5b+adapter@607ced3a")
    assert run_bench(same, _items(3), ["vanilla"], out, progress=False) == 1  # resumed
    other = scripted("[[8]]", model_name="local/qwen2.5-coder-1.5b+adapter@0badc0de")
    with pytest.raises(ValueError, match=r"results from .*@607ced3a, not .*@0badc0de"):
        run_bench(other, _items(4), ["vanilla"], out, progress=False)
    assert len(load_rows(out)) == 3  # nothing written by the refused run


def test_paired_interval_is_centred_on_the_difference():
    a = [True] * 60 + [False] * 40
    b = [True] * 50 + [False] * 50
    diff, low, high = paired_interval(a, b)
    assert diff == pytest.approx(0.1) and low < 0.1 < high and high - low < 0.2


def test_oracle_uses_searched_budgets_and_says_when_it_has_none():
    oracle = OracleEstimator({"What is 1 + 8?": 70})
    assert oracle.estimate("What is 1 + 8?").tokens == 70
    assert oracle.estimate("Another question?").fell_back


def test_bench_cli_writes_table_and_plot(tmp_path, monkeypatch, scripted, capsys):
    from tale_shared.research import cli as research_cli

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(i.model_dump()) + "\n" for i in _items(4)))
    monkeypatch.setattr(
        research_cli, "load_model", lambda spec, threads=None, lora=None, **_: scripted("[[9]]")
    )
    out, table, plot = tmp_path / "b.jsonl", tmp_path / "t.md", tmp_path / "p.png"
    argv = ["bench", "--data", str(data), "--methods", "vanilla,direct,tale-fixed:50@system"]
    argv += ["--out", str(out), "--table", str(table), "--plot", str(plot)]
    assert cli.main(argv) == 0
    assert "tale-fixed:50@system" in table.read_text() and plot.stat().st_size > 10_000
    assert cli.main([*argv[:3], "--methods", "vanilla,bogus", "--out", str(out)]) == 2
    assert "unknown method" in capsys.readouterr().err


def test_old_rows_without_new_fields_still_load(tmp_path):
    out = tmp_path / "old.jsonl"
    out.write_text(json.dumps({"method": "vanilla", "id": "x", "correct": True, "total_tokens": 9}))
    (row,) = load_rows(out)
    assert isinstance(row, BenchRow) and row.correct and row.output_tokens == 0


def test_exemplars_command_rebuilds_the_packaged_file(tmp_path):
    search = Path(__file__).resolve().parents[1] / "benchmarks/results/search-gsm8k-train.jsonl"
    out = tmp_path / "ex.json"
    assert cli.main(["exemplars", str(search), "--k", "4", "--out", str(out)]) == 0
    assert tuple(load_exemplars(str(out))) == load_exemplars()


def test_both_adapters_give_the_embedded_model_one_name_and_one_method():
    from langchain_tale import ChatLocalLlama, TaleRunnable
    from llama_index_tale import LocalLlamaLLM, TaleQueryTransform
    from llama_index_tale.llm_adapter import model_name_of
    from tale_shared.profiles import TALE_PT_MODEL

    lc = ChatLocalLlama(model="qwen2.5-coder-1.5b")  # lazy: no weights load
    li = LocalLlamaLLM(model="qwen2.5-coder-1.5b")
    # by default both are the base with the packaged TALE-PT adapter, named by its digest
    assert model_name_of(li) == lc.model_name == TALE_PT_MODEL
    assert not lc.local.loaded and not li.local.loaded
    # its profile: brief by itself and deaf to a stated budget, so the method states none;
    # a transform's one part is the budget, so it still carries one, in the profile's wording
    assert TaleRunnable(llm=lc).resolved_method.spec == "vanilla"
    assert TaleQueryTransform(llm=li)._method.spec == "tale-heuristic@system"
    # the base model (no adapter) keeps its own profile: three exemplars in the runnable; a
    # transform can carry no exemplars, so it carries the budget in the profile's wording
    base_lc = ChatLocalLlama(model="qwen2.5-coder-1.5b", lora=None)
    base_li = LocalLlamaLLM(model="qwen2.5-coder-1.5b", lora=None)
    assert model_name_of(base_li) == base_lc.model_name == "local/qwen2.5-coder-1.5b"
    runnable = TaleRunnable(llm=base_lc)
    transform = TaleQueryTransform(llm=base_li)
    assert runnable.resolved_method.spec == "vanilla+ex3"
    assert runnable.prompt_style.name == "vanilla"
    assert transform._method.spec == "tale-heuristic@system"
    assert transform.style.name == "system"
    # a budget asked of the runnable is worded the same way, on the same method
    budgeted = TaleRunnable(llm=base_lc, estimator="heuristic")
    assert budgeted.resolved_method.spec == "tale-heuristic@system+ex3"


def test_a_saved_profile_says_so_and_a_broken_one_warns(tmp_path, monkeypatch):
    from tale_shared.profiles import (
        BrokenProfileWarning,
        ModelProfile,
        profile_for,
        save_profile,
    )

    monkeypatch.setenv("TALE_CACHE_DIR", str(tmp_path))
    path = save_profile(ModelProfile(model="gpt-4o-mini", style="system", source="calibrated"))
    assert method_for("gpt-4o-mini").name == "tale (tale-heuristic@system; saved profile)"
    assert "saved profile" in method_for("gpt-4o-mini", "tale-regression").name
    path.write_text("{not json")
    with pytest.warns(BrokenProfileWarning, match="broken saved profile"):
        assert profile_for("gpt-4o-mini").style == "paper"
