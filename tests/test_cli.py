import json

import pytest

from tale_shared import cli


@pytest.fixture
def fake_local(monkeypatch, scripted):
    def reply(messages):
        if "estimate the minimum number of tokens" in messages[-1].content:
            return "Budget: [[90]]"
        if "Let's think step by step." in messages[-1].content:
            return "Tom had 3. He buys 5 more. 3 + 5 = 8. So he has 8 apples. [[8]]"
        return "3 + 5 = 8 [[8]]"

    model = scripted(reply, model_name="local/qwen2.5-coder-1.5b")

    def load(name, threads, lora=None, **options):
        model.loaded_with = (name, lora)
        return model

    monkeypatch.setattr(cli, "load_model", load)
    return model


def test_ask_compare_prints_both_methods(fake_local, capsys):
    assert (
        cli.main(
            [
                "ask",
                "Tom has 3 apples and buys 5. How many?",
                "--compare",
                "--estimator",
                "zero-shot",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "budget: 90 tokens from the zero-shot estimator" in out
    # the default method (exemplars, no budget) with the estimator asked for: its budget is
    # worded the way the profile says the model follows (the system message)
    assert "tale-zero-shot@system+ex3" in out and "vanilla" in out
    assert "tale-zero-shot@system+ex3 output tokens / vanilla output tokens" in out


def test_ask_compare_runs_vanilla_on_the_base_model_when_an_adapter_is_loaded(
    fake_local, scripted, monkeypatch, capsys
):
    """The adapter is what tale adds, so plain chain-of-thought runs without it: a comparison
    of the tuned model with itself would show no saving whatever the adapter does."""
    loads = []
    fake_local.lora = "tale-pt.gguf"
    base = scripted(lambda messages: "3 + 5 = 8 [[8]]", model_name="local/qwen2.5-coder-1.5b")
    base.lora = None

    def load(name, threads, lora=None, **options):
        loads.append(lora)
        return fake_local if lora else base

    monkeypatch.setattr(cli, "load_model", load)
    assert cli.main(["ask", "Tom has 3 apples and buys 5. How many?", "--compare"]) == 0
    assert loads == ["packaged", None]
    assert "output tokens / vanilla (base model) output tokens" in capsys.readouterr().out
    assert len(base.calls) == 1  # the vanilla answer came from the base model
    # a model with no adapter is its own baseline: loaded once
    loads.clear()
    assert cli.main(["ask", "Tom has 3 apples?", "--compare", "--no-adapter"]) == 0
    assert loads == [None]
    assert "/ vanilla output tokens" in capsys.readouterr().out


def test_ask_json(fake_local, capsys):
    assert (
        cli.main(
            [
                "ask",
                "Tom has 3 apples and buys 5. How many?",
                "--json",
                "--estimator",
                "fixed:40",
                "--style",
                "tokens",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    (row,) = data["results"]
    assert row["budget"] == 40 and row["answer"] == "8"
    assert row["method"] == "tale-fixed:40@tokens+ex3"
    assert "use less than 40 tokens" in fake_local.calls[0][0][-1].content


def test_ask_default_estimator_needs_no_model_call(fake_local, capsys):
    assert cli.main(["ask", "Tom has 3 apples and buys 5. How many?"]) == 0
    assert len(fake_local.calls) == 1
    # the adapter tale ships for the model, if any (resolved where the model is made)
    assert fake_local.loaded_with == ("qwen2.5-coder-1.5b", "packaged")


def test_ask_passes_a_lora_adapter_or_none_to_the_local_model(fake_local, capsys):
    assert cli.main(["ask", "Tom has 3 apples and buys 5. How many?", "--lora", "a.gguf"]) == 0
    assert fake_local.loaded_with == ("qwen2.5-coder-1.5b", "a.gguf")
    assert cli.main(["ask", "Tom has 3 apples and buys 5. How many?", "--no-adapter"]) == 0
    assert fake_local.loaded_with == ("qwen2.5-coder-1.5b", None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "   "], "empty"),
        (["ask", "2+2?", "--estimator", "oracle"], "unknown estimator"),
        (["ask", "2+2?", "--style", "shouting"], "unknown prompt style"),
    ],
)
def test_bad_input_is_a_clear_error_and_exit_2(fake_local, capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_styles_and_models_list(capsys):
    assert cli.main(["styles"]) == 0 and cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "use less than 100 tokens" in out and "qwen2.5-coder-1.5b (default)" in out
