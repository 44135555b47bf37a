"""The public face: each package's names pinned, the agent middleware at the top level, every
command-line option documented, and the method list `tale methods` prints kept true."""

from __future__ import annotations

import argparse

import pytest

import langchain_tale
import llama_index_tale
import tale_shared
from tale_shared import cli
from tale_shared.methods import parse_method

PUBLIC = {
    tale_shared: {
        "BudgetEstimator",
        "CallRecord",
        "ChatModel",
        "Completion",
        "EstimatorFileError",
        "FixedBudgetEstimator",
        "HeuristicEstimator",
        "Message",
        "Method",
        "ModelCallError",
        "ModelPrice",
        "ModelProfile",
        "PriceTable",
        "PromptStyle",
        "QueryRecord",
        "RegressionEstimator",
        "RunBudget",
        "RunSpending",
        "TaleBudgetExceededError",
        "TalePipeline",
        "TaleResult",
        "TokenBudget",
        "TokenUsage",
        "UsageLedger",
        "UsageSummary",
        "ZeroShotEstimator",
        "count_tokens",
        "extract_answer",
        "get_style",
        "get_token_counter",
        "hard_cap",
        "is_correct",
        "list_styles",
        "load_model",
        "make_estimator",
        "method_for",
        "normalize_answer",
        "parse_method",
        "profile_for",
        "register_style",
    },
    langchain_tale: {
        "ChatLocalLlama",
        "LangChainModel",
        "TaleBudgetExceededError",
        "TaleBudgetMiddleware",
        "TaleBudgetState",
        "TaleContextCompressionMiddleware",
        "TaleRunnable",
        "TaleTracer",
        "TokenSkipRunnable",
        "model_name_of",
        "token_counter_for",
        "tool_demo_messages",
        "usage_from_reply",
    },
    llama_index_tale: {
        "CompressingNodePostprocessor",
        "LlamaIndexModel",
        "LocalLlamaLLM",
        "TaleBudgetEvent",
        "TaleBudgetExceededError",
        "TaleLLM",
        "TaleQueryEngine",
        "TaleQueryTransform",
        "TaleTracer",
        "TokenSkipQueryTransform",
        "model_name_of",
        "token_counter_for",
        "tool_demo_history",
        "usage_from_reply",
    },
}


@pytest.mark.parametrize("package", PUBLIC, ids=lambda p: p.__name__)
def test_each_packages_public_names_are_pinned_and_resolve(package):
    assert set(package.__all__) == PUBLIC[package]  # a change here is a change of the API
    for name in package.__all__:
        assert getattr(package, name) is not None


def test_the_agent_middleware_is_exported_at_the_top_level():
    from langchain_tale import middleware

    assert langchain_tale.TaleBudgetMiddleware is middleware.TaleBudgetMiddleware
    with pytest.raises(AttributeError):
        langchain_tale.NoSuchThing  # noqa: B018


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_option_of_every_command_has_a_help_line(command):
    missing = [
        a.option_strings or a.dest
        for a in _subcommands()[command]._actions
        if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()
    ]
    assert not missing


def test_tale_methods_lists_specs_that_parse(capsys):
    assert cli.main(["methods"]) == 0
    out = capsys.readouterr().out
    examples = out.rsplit("e.g. ", 1)[1].strip().split(", ")
    assert len(examples) >= 3
    for spec in examples:
        assert parse_method(spec).spec
    for part in ("+ex<k>", "+force", "+escalate", "+exit", "+think", "tokenskip@"):
        assert part in out


def test_every_public_option_of_the_adapters_is_documented():
    import inspect

    from langchain_tale.middleware import TaleBudgetMiddleware
    from llama_index_tale import TaleLLM

    for cls in (langchain_tale.TaleRunnable, TaleLLM):
        own = set(cls.model_fields) - set(cls.__mro__[1].model_fields)
        bare = [name for name in own if not (cls.model_fields[name].description or "").strip()]
        assert not bare, f"{cls.__name__}: {bare}"
    doc = inspect.getdoc(TaleBudgetMiddleware.__init__) or ""
    params = set(inspect.signature(TaleBudgetMiddleware.__init__).parameters) - {"self"}
    assert "Args:" in doc and "Raises:" in doc
    assert all(f"{name}:" in doc for name in params)


def test_both_adapters_name_the_same_helpers_the_same_way():
    import inspect

    for name in ("usage_from_reply", "model_name_of", "token_counter_for"):
        lc, li = getattr(langchain_tale, name), getattr(llama_index_tale, name)
        assert list(inspect.signature(lc).parameters) == list(inspect.signature(li).parameters), (
            name
        )
