"""The ``tale`` command line.

tale ask "QUESTION" [--compare] [--model M] [--estimator E] [--style S]
tale styles | tale models
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from tale_shared._cli_args import add_adapter_options, check_paths, positive_int
from tale_shared._redact import redact
from tale_shared._status import status
from tale_shared._validation import one_line_error, require_question
from tale_shared.estimators import parse_estimator_spec
from tale_shared.loading import load_model
from tale_shared.local.registry import DEFAULT_LOCAL_MODEL, MODELS, PACKAGED_ADAPTERS
from tale_shared.methods import parse_method
from tale_shared.models import ChatModel
from tale_shared.pipeline import TalePipeline, TaleResult
from tale_shared.profiles import default_profile_notes, profile_for
from tale_shared.prompts import get_style, list_styles


def _row(result: TaleResult) -> dict[str, object]:
    r = result.record
    return {
        "method": result.method,
        "budget": result.budget.tokens if result.budget else None,
        "estimator": result.budget.estimator if result.budget else None,
        "estimator_tokens": r.estimator_usage.total_tokens,
        # every call but the estimator's (answer, forced answer, probes)
        "input_tokens": r.usage.input_tokens - r.estimator_usage.input_tokens,
        "output_tokens": r.usage.output_tokens - r.estimator_usage.output_tokens,
        "total_tokens": r.usage.total_tokens,
        "calls": r.n_calls,
        "seconds": round(r.latency_s, 2),
        "answer": result.answer,
    }


def _print_table(rows: list[dict[str, object]]) -> None:
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for row in rows:
        print("  ".join(str(row[k]).ljust(widths[k]) for k in keys))


def _baseline_model(model: ChatModel, args: argparse.Namespace) -> ChatModel:
    """The model plain chain-of-thought runs on for ``--compare``: on a local model tuned by an
    adapter (by default the TALE-PT adapter tale ships) the base model without it, since the
    adapter is what tale adds; any other model is its own baseline."""
    if not getattr(model, "lora", None):
        return model
    return load_model(args.model, args.threads, None, api_key_env=args.api_key_env)


def cmd_ask(args: argparse.Namespace) -> int:
    # everything that can be checked is checked before the model (seconds, a GB) loads
    require_question(args.question)
    if args.estimator is not None:
        parse_estimator_spec(args.estimator)
    if args.style is not None:
        get_style(args.style)
    if args.method != "tale":
        parse_method(args.method)
    model = load_model(args.model, args.threads, args.lora, api_key_env=args.api_key_env)
    tale = TalePipeline(
        model,
        method=args.method,
        estimator=args.estimator,
        style=args.style,
        max_tokens=args.max_tokens,
    )
    with status(f"{tale.method.name}: answering with {model.model_name}"):
        results = [tale.solve(args.question)]
    base = model
    if args.compare:
        base = _baseline_model(model, args)
        vanilla = TalePipeline.vanilla(base, max_tokens=args.max_tokens)
        with status(f"vanilla CoT: answering without a budget with {base.model_name}"):
            results.append(vanilla.solve(args.question))
    rows = [_row(r) for r in results]
    if args.json:
        print(
            json.dumps(
                {"question": args.question, "results": rows, "replies": [r.text for r in results]},
                indent=2,
            )
        )
        return 0
    budget = results[0].budget
    print(f"\nmethod: {results[0].method}")
    if args.method == "tale":
        profile = profile_for(model.model_name)
        if profile.source == "default":
            print(f"note:   {default_profile_notes(model.model_name, args.model)}")
    if budget is not None:
        note = f" (fallback: {budget.fallback_reason})" if budget.fell_back else ""
        print(f"budget: {budget.tokens} tokens from the {budget.estimator} estimator{note}")
    print(f"style:  {results[0].style}\n")
    for result in results:
        print(f"--- {_row(result)['method']} ---\n{result.text.strip()}\n")
    _print_table(rows)
    if args.compare and rows[1]["output_tokens"]:
        ratio = int(str(rows[0]["output_tokens"])) / int(str(rows[1]["output_tokens"]))
        on = "" if base is model else " (base model)"
        print(f"\n{rows[0]['method']} output tokens / vanilla{on} output tokens = {ratio:.2f}")
    return 0


def cmd_styles(args: argparse.Namespace) -> int:
    for style in list_styles():
        example = style.instruction(100 if style.uses_budget else None)
        print(f"{style.name:15} {style.description}\n{'':15} e.g. {example!r}")
    return 0


METHOD_GRAMMAR = (
    ("direct | vanilla | vanilla-paper | chain-of-draft", "no budget"),
    ("tale-ep", "the TALE paper's: zero-shot estimator, paper wording"),
    ("tale-<estimator>[@<style>]", "a budget from <estimator>, stated in <style>"),
    ("oracle[@<style>]", "each searched item's optimal budget (benchmarks)"),
    ("tokenskip@<gamma>", "a TokenSkip-tuned model at compression ratio gamma"),
    ("tale", "the model's default (its profile method)"),
    ("+ex<k>", "k concise worked examples before the question"),
    ("+force[<headroom>]", "cap at budget x headroom (1.5), force the answer when cut"),
    ("+escalate", "force the answer only when max_tokens cuts the reply"),
    ("+exit[<every>x<agree>]", "early exit when probed answers agree (llama.cpp models)"),
    ("+think", "the budget through a reasoning model's thinking knob"),
)


def cmd_methods(args: argparse.Namespace) -> int:
    for spec, meaning in METHOD_GRAMMAR:
        print(f"{spec:32} {meaning}")
    print("\nestimators: heuristic, regression[:PATH], zero-shot, fixed:N")
    print(f"styles: {', '.join(style.name for style in list_styles())}")
    print("e.g. tale-heuristic@system+ex3+force1.5, vanilla+ex3, tale-fixed:300@paper+think")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    for spec in MODELS.values():
        default = " (default)" if spec.name == DEFAULT_LOCAL_MODEL else ""
        print(f"{spec.name}{default}: {spec.description}\n    install: {spec.install}")
        if spec.name in PACKAGED_ADAPTERS:
            print(f"    adapter: {PACKAGED_ADAPTERS[spec.name]} (packaged; --no-adapter: the base)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tale", description="Token-budget-aware LLM reasoning (TALE)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer a question with TALE on a local model")
    ask.add_argument("question", help="the question to answer")
    ask.add_argument(
        "--model",
        default=DEFAULT_LOCAL_MODEL,
        help=f"a local model name ({', '.join(MODELS)}), a .gguf path, or provider:model",
    )
    ask.add_argument(
        "--method",
        default="tale",
        help="tale (the model's default method), or a spec: direct, vanilla, chain-of-draft, "
        "tale-ep, tale-<estimator>[@<style>], with +ex<k>, +force[<h>], +exit[<every>x<agree>]",
    )
    ask.add_argument(
        "--estimator",
        default=None,
        help="override the method's estimator: heuristic (no model call), zero-shot (the "
        "paper's), fixed:N, regression (shipped for the default model) or regression:PATH",
    )
    ask.add_argument(
        "--style",
        default=None,
        help="prompt style (default: the model's profile); see `tale styles`",
    )
    ask.add_argument("--compare", action="store_true", help="also run vanilla CoT")
    ask.add_argument("--max-tokens", type=positive_int, default=512, help="output cap per call")
    ask.add_argument(
        "--threads", type=positive_int, default=None, help="CPU threads (default: cores)"
    )
    add_adapter_options(ask)
    ask.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="NAME",
        help="a served model's key: the environment variable that holds it (never the URL)",
    )
    ask.add_argument("--json", action="store_true", help="print JSON")
    ask.set_defaults(func=cmd_ask, reads=("lora", "model"))

    sub.add_parser("styles", help="list the prompt styles").set_defaults(func=cmd_styles)
    sub.add_parser(
        "methods", help="list the method specs (--method, --methods) and their parts"
    ).set_defaults(func=cmd_methods)
    sub.add_parser("models", help="list the embedded models").set_defaults(func=cmd_models)
    _add_optional_commands(sub)
    return parser


COMMANDS = "tale.commands"
"""The entry-point group through which command groups join the ``tale`` command line: the
research tools (search, bench, training, export, plots) register theirs there, so the
runtime never imports them."""


def _add_optional_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands registered in the ``tale.commands`` entry-point group (the research
    tools: search, bench, training, calibration, export, plots)."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=COMMANDS):
        entry.load()(sub)


def _as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM does what Ctrl-C does (a job runner writes every finished result first) —
    also in a process whose SIGINT is ignored (started in the background by a script)."""
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _as_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_paths(args)
        with _sigterm_as_interrupt():
            return int(args.func(args))
    except (ValueError, OSError, ImportError, RuntimeError) as exc:
        print(f"tale: error: {redact(one_line_error(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tale: interrupted (finished results were written; rerun to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
