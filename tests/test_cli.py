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
