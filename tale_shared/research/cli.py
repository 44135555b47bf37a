"""CLI commands for research workflows: search, train-estimator, calibrate, export, elasticity."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tale_shared._cli_args import add_adapter_options, positive_int
from tale_shared._io import atomic_writer
from tale_shared._redact import redact
from tale_shared.loading import load_model
from tale_shared.local.registry import DEFAULT_LOCAL_MODEL, PACKAGED_ADAPTER
from tale_shared.models import ChatModel
from tale_shared.research.datasets import Item

GSM8K_TRAIN = Path("../shared/data/gsm8k/train.norm.jsonl")


def _model(args: argparse.Namespace) -> ChatModel:
    """The model of a command with the common options (``--lora`` on a local model)."""
    return load_model(args.model, args.threads, args.lora, api_key_env=args.api_key_env)


def _ray_options(args: argparse.Namespace) -> dict[str, Any]:
    """Where and how a ``--ray`` command starts its replicas; each replica loads the model by
    name (with the adapter tale ships for it), so ``--lora``/``--no-adapter`` cannot follow it
    there."""
    if args.lora != PACKAGED_ADAPTER:
        raise ValueError("--lora and --no-adapter run in process or on a served model, not on Ray")
    return {
        "address": None if args.ray == "local" else args.ray,
        "replicas": args.replicas,
        "threads_per_replica": args.threads or 1,
    }


def cmd_search(args: argparse.Namespace) -> int:
    from tale_shared.research.datasets import load_items
    from tale_shared.research.search import (
        BudgetSearch,
        load_results,
        search_dataset,
        summarize_search,
    )

    items = load_items(args.data, limit=args.limit)
    if args.ray is not None:
        from tale_shared.research.distributed import search_on_ray

        print(
            f"searching {len(items)} items with {redact(args.model)} on Ray -> {args.out}",
            file=sys.stderr,
        )
        search_on_ray(
            args.model,
            items,
            args.out,
            style=args.style,
            **_ray_options(args),
            max_tokens=args.max_tokens,
        )
    else:
        model = _model(args)
        searcher = BudgetSearch(model, style=args.style, max_tokens=args.max_tokens)
        print(
            f"searching {len(items)} items with {model.model_name} ({searcher.style.name} "
            f"style) -> {args.out}",
            file=sys.stderr,
        )
        asyncio.run(search_dataset(searcher, items, args.out, concurrency=args.concurrency))
    ids = {item.id for item in items}
    results = [r for r in load_results(args.out) if r.id in ids]
    print(json.dumps(summarize_search(results), indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from tale_shared._io import check_writable
    from tale_shared.research.training import compare_estimators, train_from_search

    check_writable(args.out)  # before training, not after it
    estimator, report = train_from_search(args.runs, folds=args.folds)
    path = estimator.save(args.out)
    print(f"saved {path}")
    print(json.dumps(report, indent=2))
    if args.compare:
        model = load_model(args.model, args.threads) if args.model else None
        table = compare_estimators(args.runs, estimator_report=report, zero_shot_model=model)
        print(table)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from tale_shared.profiles import save_profile
    from tale_shared.research.calibration import calibrate
    from tale_shared.research.datasets import load_items

    items = load_items(args.data, limit=args.n)
    budgets = [int(b) for b in args.budgets.split(",")]
    ray_model = None
    model: ChatModel
    if args.ray is not None:
        from tale_shared.research.distributed import RayModel

        model = ray_model = RayModel(args.model, **_ray_options(args))
    else:
        model = _model(args)
    try:
        profile, table = calibrate(
            model, items, budgets=budgets, max_tokens=args.max_tokens, concurrency=args.concurrency
        )
    finally:
        if ray_model is not None:
            ray_model.close()
    print(table)
    if not args.dry_run:
        print(f"saved profile: {save_profile(profile)} (style {profile.style})")
    return 0


def cmd_train_model(args: argparse.Namespace) -> int:
    from tale_shared.research.recipes import TrainConfig, adapter_to_gguf, merge, train

    if args.kind == "merge":
        if not args.out:
            raise ValueError("tale train merge ADAPTER --out FOLDER")
        print(f"merged model in {merge(args.data, args.out, args.base)}")
        return 0
    if args.kind == "gguf":
        if not args.out:
            raise ValueError("tale train gguf ADAPTER --out ADAPTER.gguf")
        written = adapter_to_gguf(args.data, args.out, args.base, dtype=args.gguf_type)
        print(f"llama.cpp adapter in {written}")
        return 0
    if not (args.base and args.out):
        raise ValueError(f"tale train {args.kind} DATA --base MODEL --out FOLDER")
    config = TrainConfig(
        args.kind,
        args.data,
        base=args.base,
        out=args.out,
        epochs=args.epochs,
        learning_rate=args.lr,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        beta=args.beta,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        max_length=args.max_length,
        max_steps=args.max_steps,
        save_steps=args.save_steps,
        seed=args.seed,
        gradient_checkpointing=args.gradient_checkpointing,
    )
    adapter = train(config)
    print(f"adapter and card in {adapter}")
    if args.gguf:
        written = adapter_to_gguf(adapter, args.gguf, args.base, dtype=args.gguf_type)
        print(f"llama.cpp adapter in {written}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tale_shared._io import check_writable
    from tale_shared.research.export import (
        export_dpo,
        export_sft,
        export_tokenskip,
    )

    if len(args.runs) > 1 and args.kind not in ("tokenskip", "self"):
        raise ValueError(f"{args.kind} data comes from one search file, not {len(args.runs)}")
    first = args.runs[0]
    out = args.out or Path(first).with_suffix(f".{args.kind}.{args.format}.jsonl")
    check_writable(out)
    if args.kind == "self":
        from tale_shared.research.export import export_self_training

        n = export_self_training(
            args.runs,
            out,
            data=args.data,
            model=args.model,
            budget_share=args.budget_share,
            style=args.style or "system",
            seed=args.seed,
            leave_out={str(row["id"]) for path in args.leave_out for row in _id_rows(path)},
        )
        print(f"wrote {n} self-training examples to {out}")
        return 0
    if args.kind == "tokenskip":
        from tale_shared.compression import RATIOS

        ratios = tuple(float(r) for r in args.ratios.split(",")) if args.ratios else RATIOS
        n = export_tokenskip(args.runs, out, data=args.data, ratios=ratios)
    else:
        exporter = export_sft if args.kind == "sft" else export_dpo
        n = exporter(first, out, layout=args.format)
    print(f"wrote {n} {args.kind.upper()} examples to {out}")
    return 0


def cmd_elasticity(args: argparse.Namespace) -> int:
    from tale_shared.research.plots import elasticity_curve, plot_elasticity

    model = _model(args)
    budgets = [int(b) for b in args.budgets.split(",")]
    points = elasticity_curve(
        model,
        args.question,
        budgets,
        gold=args.answer,
        style=args.style,
        max_tokens=args.max_tokens,
    )
    for p in points:
        print(f"budget {p.budget!s:>6}: {p.output_tokens:4d} tokens, correct={p.correct}")
    print(f"plot: {plot_elasticity(points, args.out, title=args.question[:80])}")
    return 0


def cmd_plot_search(args: argparse.Namespace) -> int:
    from tale_shared.research.plots import plot_search_trajectory
    from tale_shared.research.search import load_results

    results = {r.id: r for r in load_results(args.runs)}
    if args.id not in results:
        raise ValueError(f"no item {args.id!r} in {args.runs}")
    print(f"plot: {plot_search_trajectory(results[args.id], args.out)}")
    return 0


def _id_rows(path: str) -> list[dict[str, object]]:
    """The rows of a JSONL file that carry an ``"id"`` (items, bench rows, search results)."""
    from tale_shared._io import iter_json_lines

    rows = [row for _, row, problem in iter_json_lines(path) if problem is None]
    return [row for row in rows if isinstance(row, dict) and "id" in row]


def _selected_items(args: argparse.Namespace) -> list[Item]:
    """``--data`` after ``--offset``, less the ``--exclude`` ids, sampled (``--limit``,
    ``--seed``)."""
    from tale_shared.research.datasets import load_items, sample_items

    pool = load_items(args.data)[args.offset :]
    if args.exclude:
        left_out = {str(row["id"]) for path in args.exclude for row in _id_rows(path)}
        pool = [item for item in pool if item.id not in left_out]
    return sample_items(pool, args.limit, seed=args.seed)


def _add_item_options(p: argparse.ArgumentParser, *, data_required: bool = True) -> None:
    p.add_argument("--data", required=data_required, help='JSONL with "id", "question", "answer"')
    p.add_argument("--limit", type=positive_int, default=None, help="a seeded sample of N items")
    p.add_argument("--seed", type=int, default=0, help="the seed of the --limit sample")
    p.add_argument("--offset", type=int, default=0, help="sample after the first K items")
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="JSONL",
        help="leave out the items whose ids are in this file before sampling (repeatable)",
    )


def cmd_agent_bench(args: argparse.Namespace) -> int:
    from tale_shared._io import check_writable
    from tale_shared.research.agent_bench import (
        agent_runner,
        agent_table,
        load_agent_rows,
        parse_agent_config,
        run_agent_bench,
    )
    from tale_shared.research.bench import baseline_candidates, summarize_bench

    configs = [parse_agent_config(c) for c in args.configs.split(",") if c.strip()]
    names = [c.name for c in configs]
    for base in baseline_candidates(args.baseline):
        if base not in names:
            raise ValueError(f"the baseline {base!r} must be one of --configs")
    if (args.tasks is None) == (args.data is None):
        raise ValueError("give --data (tool-optional items) or --tasks dev|heldout, not both")
    if args.tasks is not None:
        from tale_shared.research.agent_tasks import generate_tasks
        from tale_shared.research.datasets import sample_items

        tasks: list[Item] = list(
            generate_tasks(args.tasks, per_template=args.per_template, seed=args.seed)
        )
        items: list[Any] = sample_items(tasks, args.limit, seed=args.seed)
        source = f"tool-necessary tasks, {args.tasks} templates"
    else:
        items = _selected_items(args)
        source = Path(args.data).name
    check_writable(args.out)
    if not args.summary_only:
        runner = agent_runner(
            args.framework,
            args.model,
            threads=args.threads,
            lora=args.lora,
            max_tokens=args.max_tokens,
            recursion_limit=args.recursion_limit,
            **({"agent": args.llama_agent} if args.framework == "llama-index" else {}),
        )
        print(
            f"agent-bench ({args.framework}): {len(configs)} configurations x {len(items)} "
            f"items with {runner.model_name} -> {args.out}",
            file=sys.stderr,
        )
        run_agent_bench(runner, items, configs, args.out)
    ids = {item.id for item in items}
    rows = [r for r in load_agent_rows(args.out) if r.id in ids]
    summaries = summarize_bench(rows, names, baseline=args.baseline)
    title = f"agents ({args.framework}), {source}: {summaries[0].n} items"
    return _report(args, agent_table(summaries, rows), summaries, title)


def _report(args: argparse.Namespace, table: str, summaries: Any, title: str) -> int:
    """Print the table; write it to ``--table`` and the Pareto plot to ``--plot`` if asked."""
    from tale_shared.research.bench import plot_pareto

    print(table)
    if args.table:
        with atomic_writer(args.table) as fh:
            fh.write(table + "\n")
    if args.plot:
        print(f"plot: {plot_pareto(summaries, args.plot, title=title)}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from tale_shared._io import check_writable
    from tale_shared.methods import parse_method
    from tale_shared.research.bench import (
        OracleEstimator,
        baseline_candidates,
        bench_table,
        load_rows,
        run_bench,
        summarize_bench,
    )
    from tale_shared.research.search import load_results

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:  # refuse a bad spec before the model loads
        if m != "tale":
            parse_method(m)
    for base in baseline_candidates(args.baseline):
        if base not in methods:
            raise ValueError(f"the baseline {base!r} must be one of --methods")
    oracle = None
    if any(m.startswith("oracle") for m in methods):
        if not args.oracle:
            raise ValueError("the oracle method needs --oracle SEARCH.jsonl (tale search)")
        oracle = OracleEstimator.from_search(load_results(args.oracle))
    items = _selected_items(args)
    check_writable(args.out)
    if not args.summary_only:
        # on Ray each replica loads the model; the driver only writes rows
        model = None if args.ray is not None else _model(args)
        name = model.model_name if model is not None else redact(args.model)
        print(
            f"bench: {len(methods)} methods x {len(items)} items with {name} -> {args.out}",
            file=sys.stderr,
        )
        if args.ray is not None:
            from tale_shared.research.distributed import run_bench_on_ray

            run_bench_on_ray(
                args.model,
                items,
                methods,
                args.out,
                max_tokens=args.max_tokens,
                oracle=oracle,
                **_ray_options(args),
            )
        else:
            assert model is not None
            run_bench(
                model,
                items,
                methods,
                args.out,
                max_tokens=args.max_tokens,
                oracle=oracle,
                concurrency=args.concurrency,
                by_method=args.by_method,
            )
    ids = {item.id for item in items}
    rows = [r for r in load_rows(args.out) if r.id in ids]
    summaries = summarize_bench(rows, methods, baseline=args.baseline)
    title = f"{Path(args.data).name}: {summaries[0].n} items, {redact(args.model)}"
    return _report(args, bench_table(summaries), summaries, title)


def cmd_exemplars(args: argparse.Namespace) -> int:
    from tale_shared._io import check_writable
    from tale_shared.research.exemplars import save_exemplars, select_exemplars
    from tale_shared.research.search import load_results

    check_writable(args.out)
    exemplars = select_exemplars(load_results(args.runs), args.k)
    if not exemplars:
        raise ValueError(f"{args.runs} has no correct optimal-budget answer to use")
    print(f"wrote {len(exemplars)} exemplars to {save_exemplars(exemplars, args.out)}")
    return 0


def cmd_following(args: argparse.Namespace) -> int:
    from tale_shared.research.bench import load_rows
    from tale_shared.research.following import budget_following, following_table, plot_following

    rows = [row for path in args.rows for row in load_rows(path)]
    found = budget_following(rows)
    if not found:
        raise ValueError("no model answered one item at two or more tale-fixed:<N>@<style> budgets")
    table = following_table(found)
    print(table)
    if args.table:
        with atomic_writer(args.table) as fh:
            fh.write(table + "\n")
    if args.plot:
        print(f"plot: {plot_following(found, args.plot)}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the research commands to the ``tale`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--model",
        default=DEFAULT_LOCAL_MODEL,
        help="local model name, .gguf path, an OpenAI-compatible URL[#MODEL], or provider:model",
    )
    common.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="NAME",
        help="a served model's key: the environment variable that holds it (never put a key "
        "in the URL)",
    )
    common.add_argument(
        "--threads", type=positive_int, default=None, help="CPU threads (default: cores)"
    )
    add_adapter_options(common)
    common.add_argument(
        "--max-tokens", type=positive_int, default=512, help="output cap per model call"
    )
    served = argparse.ArgumentParser(add_help=False)
    served.add_argument(
        "--concurrency",
        type=positive_int,
        default=1,
        help="requests in flight (for a served model: --model http://host:port/v1[#MODEL])",
    )
    distributed = argparse.ArgumentParser(add_help=False)
    distributed.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run on Ray (a local instance, or ADDRESS such as ray://head:10001)",
    )
    distributed.add_argument(
        "--replicas", type=positive_int, default=None, help="model replicas on Ray"
    )

    p = sub.add_parser(
        "search",
        parents=[common, served, distributed],
        help="optimal budget search over a data set",
    )
    p.add_argument("--data", required=True, help='JSONL with "id", "question", "answer"')
    p.add_argument("--out", required=True, help="results JSONL (appended; reruns resume)")
    p.add_argument("--limit", type=positive_int, default=None, help="the first N items only")
    p.add_argument("--style", default=None, help="prompt style (default: the model's profile)")
    p.set_defaults(func=cmd_search, reads=("data", "lora", "model"), writes=("out",))

    p = sub.add_parser("train-estimator", help="fit the regression estimator on search results")
    p.add_argument("runs", help="search results JSONL (tale search), training items only")
    p.add_argument("--out", required=True, help="where to save it (JSON, safe to load)")
    p.add_argument(
        "--folds", type=positive_int, default=5, help="cross-validation folds for the report"
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="compare with the heuristic (and zero-shot with --model) estimators",
    )
    p.add_argument("--model", default=None, help="model for the zero-shot comparison")
    p.add_argument(
        "--threads", type=positive_int, default=None, help="CPU threads (default: cores)"
    )
    p.set_defaults(func=cmd_train, reads=("runs", "model"), writes=("out",))

    p = sub.add_parser(
        "calibrate",
        parents=[common, served, distributed],
        help="pick the prompt style a model follows",
    )
    p.add_argument("--data", default=str(GSM8K_TRAIN), help="training questions (JSONL)")
    p.add_argument("--n", type=positive_int, default=6, help="questions per style and budget")
    p.add_argument("--budgets", default="50,100,200", help="comma-separated budgets to state")
    p.add_argument("--dry-run", action="store_true", help="measure, do not save the profile")
    p.set_defaults(func=cmd_calibrate, reads=("data", "lora", "model"), writes=())

    p = sub.add_parser(
        "export",
        help="TALE-PT data (SFT pairs, DPO triples, self-training) or TokenSkip data",
    )
    p.add_argument(
        "kind",
        choices=["sft", "dpo", "tokenskip", "self"],
        help="sft/dpo: from a search file; tokenskip: compressed CoTs; self: each item's "
        "shortest correct answer over search and benchmark rows files (TALE-PT by "
        "self-training), part of them under a stated budget",
    )
    p.add_argument(
        "runs",
        nargs="+",
        help="a search file; tokenskip: one or more search or benchmark rows files (rows "
        "need --data), an item taken once",
    )
    p.add_argument(
        "--format",
        choices=["messages", "trl"],
        default="messages",
        help="messages: chat-messages JSONL; trl: prompt/completion (or chosen/rejected)",
    )
    p.add_argument("--out", default=None, help="output JSONL (default: beside the input)")
    p.add_argument(
        "--data", default=None, help="tokenskip from benchmark rows: the items file they ran on"
    )
    p.add_argument(
        "--ratios", default=None, help="tokenskip: comma-separated ratios (default 1.0,...,0.5)"
    )
    p.add_argument(
        "--model", default=None, help="self: only this model's answers (as rows name it)"
    )
    p.add_argument(
        "--budget-share",
        type=float,
        default=0.5,
        help="self: the share of examples whose prompt states a budget (default 0.5)",
    )
    p.add_argument(
        "--style", default=None, help="self: the budget sentence's style (default: system)"
    )
    p.add_argument("--seed", type=int, default=0, help="self: which examples state a budget")
    p.add_argument(
        "--leave-out",
        action="append",
        default=[],
        metavar="JSONL",
        help="self: never train on the items whose ids are in this file (repeatable)",
    )
    p.set_defaults(func=cmd_export, reads=("runs", "data", "leave_out"), writes=("out",))

    p = sub.add_parser(
        "train",
        help="LoRA training on exported data: TALE-PT (sft, dpo), TokenSkip; merge an adapter, "
        "or write it as a llama.cpp adapter (gguf)",
    )
    p.add_argument(
        "kind",
        choices=["sft", "dpo", "tokenskip", "merge", "gguf"],
        help="sft, dpo, tokenskip: train a LoRA adapter; merge: into the base; gguf: for llama.cpp",
    )
    p.add_argument("data", help="exported JSONL (tale export ...), or the adapter (merge, gguf)")
    p.add_argument("--base", default=None, help="HF model folder, .gguf file or embedded model")
    p.add_argument("--out", default=None, help="folder for checkpoints, adapter and card")
    p.add_argument("--epochs", type=float, default=None, help="passes over the data")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--lora-r", type=positive_int, default=None, help="LoRA rank")
    p.add_argument("--lora-alpha", type=positive_int, default=None, help="LoRA alpha")
    p.add_argument("--beta", type=float, default=None, help="DPO beta")
    p.add_argument("--batch-size", type=positive_int, default=1, help="examples per step")
    p.add_argument(
        "--grad-accum", type=positive_int, default=4, help="steps whose gradients add up"
    )
    p.add_argument(
        "--max-length", type=positive_int, default=1024, help="tokens per example, at most"
    )
    p.add_argument(
        "--max-steps", type=int, default=-1, help="stop after N optimizer steps (-1: epochs)"
    )
    p.add_argument(
        "--save-steps",
        type=positive_int,
        default=50,
        help="checkpoint every N steps (a rerun resumes from the last one)",
    )
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument(
        "--gguf",
        default=None,
        metavar="FILE",
        help="after training, also write the adapter as a llama.cpp LoRA GGUF (its card beside)",
    )
    p.add_argument(
        "--gguf-type",
        choices=["f16", "f32"],
        default="f16",
        help="the GGUF adapter's tensor type (default f16: half the size of f32)",
    )
    p.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="recompute activations in the backward pass: less memory, slower steps",
    )
    p.set_defaults(func=cmd_train_model, reads=("data", "base"), writes=("out", "gguf"))

    p = sub.add_parser("elasticity", parents=[common], help="plot output tokens against budget")
    p.add_argument("question", help="the question to ask at every budget")
    p.add_argument("--answer", default=None, help="gold answer, to mark correctness")
    p.add_argument(
        "--budgets", default="10,20,50,100,200,400", help="comma-separated budgets to state"
    )
    p.add_argument("--style", default=None, help="prompt style (default: the model's profile)")
    p.add_argument("--out", default="elasticity.png", help="the plot (PNG)")
    p.set_defaults(func=cmd_elasticity, reads=("lora", "model"), writes=("out",))

    p = sub.add_parser(
        "bench",
        parents=[common, served, distributed],
        help="benchmark methods side by side (resumable)",
    )
    _add_item_options(p)
    p.add_argument(
        "--methods",
        default="vanilla,direct,tale-ep,chain-of-draft,tale",
        help="comma-separated method specs; `tale methods` lists them",
    )
    p.add_argument(
        "--by-method",
        action="store_true",
        help="run each method over all items before the next (how seconds should be measured)",
    )
    p.add_argument("--out", required=True, help="rows JSONL (appended; reruns resume)")
    p.add_argument(
        "--baseline",
        default="vanilla",
        help="the reference method; several, comma-separated: the most accurate of them",
    )
    p.add_argument("--oracle", default=None, help="search results for the oracle method")
    p.add_argument("--table", default=None, help="also write the Markdown table here")
    p.add_argument("--plot", default=None, help="Pareto plot (accuracy vs output tokens)")
    p.add_argument(
        "--summary-only", action="store_true", help="summarise --out without running anything"
    )

    p.set_defaults(
        func=cmd_bench,
        reads=("data", "exclude", "oracle", "lora", "model"),
        writes=("out", "table", "plot"),
    )

    p = sub.add_parser(
        "agent-bench",
        parents=[common],
        help="budgets inside a tool-using agent loop, side by side (resumable)",
    )
    p.add_argument(
        "--framework",
        choices=["langchain", "llama-index"],
        default="langchain",
        help="whose agent runs: LangChain create_agent or LlamaIndex ReActAgent",
    )
    _add_item_options(p, data_required=False)
    p.add_argument(
        "--tasks",
        choices=["dev", "heldout"],
        default=None,
        help="tool-necessary tasks (tale_shared.research.agent_tasks) from the dev or the "
        "held-out templates, in place of --data",
    )
    p.add_argument(
        "--per-template",
        type=positive_int,
        default=20,
        help="--tasks: seeded tasks per template (--seed seeds them)",
    )
    p.add_argument(
        "--configs",
        default="none,tale",
        help="comma-separated configurations (see tale_shared.research.agent_bench)",
    )
    p.add_argument("--recursion-limit", type=int, default=12, help="LangGraph steps per run")
    p.add_argument(
        "--llama-agent",
        choices=["react", "function"],
        default="react",
        help="LlamaIndex: ReActAgent (text protocol) or FunctionAgent (the LLM's tool calls)",
    )
    p.add_argument("--out", required=True, help="rows JSONL (appended; reruns resume)")
    p.add_argument("--baseline", default="none", help="the reference configuration")
    p.add_argument("--table", default=None, help="also write the Markdown table here")
    p.add_argument("--plot", default=None, help="Pareto plot (accuracy vs output tokens)")
    p.add_argument(
        "--summary-only", action="store_true", help="summarise --out without running anything"
    )
    p.set_defaults(
        func=cmd_agent_bench,
        reads=("data", "exclude", "lora", "model"),
        writes=("out", "table", "plot"),
    )

    p = sub.add_parser(
        "following",
        help="does a model follow stated budgets? (bench rows of tale-fixed:<N>@<style> methods)",
    )
    p.add_argument("rows", nargs="+", help="bench rows JSONL files (one or more models)")
    p.add_argument("--table", default=None, help="also write the Markdown table here")
    p.add_argument("--plot", default=None, help="median output tokens vs budget (PNG)")
    p.set_defaults(func=cmd_following, reads=("rows",), writes=("table", "plot"))

    p = sub.add_parser("exemplars", help="concise exemplars from search results (train items)")
    p.add_argument("runs", help="search results JSONL (tale search), training items only")
    p.add_argument("--k", type=positive_int, default=4, help="how many exemplars")
    p.add_argument("--out", required=True, help="the exemplars' JSON file")
    p.set_defaults(func=cmd_exemplars, reads=("runs",), writes=("out",))

    p = sub.add_parser("plot-search", help="plot one item's search trajectory")
    p.add_argument("runs", help="search results JSONL (tale search)")
    p.add_argument("--id", required=True, help="the item's id")
    p.add_argument("--out", default="search.png", help="the plot (PNG)")
    p.set_defaults(func=cmd_plot_search, reads=("runs",), writes=("out",))
