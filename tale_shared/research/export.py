"""Training data from search results: TALE-PT SFT pairs and DPO triples, TokenSkip examples.

Two layouts: ``messages`` (the chat-messages JSONL that fine-tuning services take) and
``trl`` (``prompt``/``completion`` for SFT, ``prompt``/``chosen``/``rejected`` for DPO).
The prompt is the plain question prompt (no budget): the model should learn to be concise
without being told.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from tale_shared._io import same_file, write_jsonl
from tale_shared.answers import extract_answer
from tale_shared.compression import RATIOS, ImportanceScorer, rule_scorer, training_example
from tale_shared.prompts import get_style
from tale_shared.research.search import SearchResult, load_results

Layout = Literal["messages", "trl"]


def check_paths(runs: str | Path, out: str | Path) -> None:
    """Refuse to write an export over the search results it is read from."""
    if same_file(runs, out):
        raise ValueError(f"the output {out} is the input file: choose another --out")


def _usable(runs: str | Path) -> Iterator[SearchResult]:
    for r in load_results(runs):
        if r.error is None and r.optimal_text and r.vanilla_text and r.below_vanilla:
            yield r


def _prompt(result: SearchResult) -> str:
    return get_style("vanilla").render(result.question, None)[0].content


def export_sft(runs: str | Path, out: str | Path, *, layout: Layout = "messages") -> int:
    """Plain prompt -> the answer produced under the optimal budget. Returns the row count."""

    def rows() -> Iterator[dict[str, Any]]:
        for r in _usable(runs):
            prompt, answer = _prompt(r), r.optimal_text or ""
            if layout == "messages":
                yield {
                    "messages": [
                        {"role": "user", "content": prompt},
                        {"role": "assistant", "content": answer},
                    ]
                }
            else:
                yield {"prompt": prompt, "completion": answer}

    check_paths(runs, out)
    return write_jsonl(rows(), out)


def export_dpo(runs: str | Path, out: str | Path, *, layout: Layout = "messages") -> int:
    """chosen = the budgeted answer, rejected = the vanilla answer. Returns the row count."""

    def rows() -> Iterator[dict[str, Any]]:
        for r in _usable(runs):
            prompt = _prompt(r)
            if layout == "messages":
                yield {
                    "input": {"messages": [{"role": "user", "content": prompt}]},
                    "preferred_output": [{"role": "assistant", "content": r.optimal_text}],
                    "non_preferred_output": [{"role": "assistant", "content": r.vanilla_text}],
                }
            else:
                yield {"prompt": prompt, "chosen": r.optimal_text, "rejected": r.vanilla_text}

    check_paths(runs, out)
    return write_jsonl(rows(), out)


COT_METHODS = ("vanilla", "vanilla-paper")
"""The benchmark methods whose correct answers are plain chain of thought (TokenSkip data)."""


def correct_cots(
    runs: str | Path, data: str | Path | None = None, *, methods: Sequence[str] = COT_METHODS
) -> Iterator[tuple[str, str, str, str]]:
    """The model's own correct chain-of-thought answers as (id, question, reasoning, answer):
    from a search file (its vanilla answers), or from benchmark rows (``methods``' correct,
    uncut, unforced answers) joined by id with the items file ``data``. One per item."""
    from tale_shared._io import iter_json_lines

    first = next((row for _, row, problem in iter_json_lines(runs) if problem is None), None)
    seen: set[str] = set()
    if isinstance(first, dict) and "method" in first:  # benchmark rows
        if data is None:
            raise ValueError(f"{runs} holds benchmark rows: give the items file (--data) too")
        from tale_shared.research.bench import load_rows
        from tale_shared.research.datasets import load_items

        questions = {item.id: item.question for item in load_items(data)}
        for row in load_rows(runs):
            ok = row.correct and not row.cut and not row.forced and row.error is None
            if ok and row.method in methods and row.id in questions and row.id not in seen:
                seen.add(row.id)
                yield row.id, questions[row.id], row.text, row.answer or ""
        return
    for r in load_results(runs):
        if r.vanilla_correct and r.vanilla_text and r.id not in seen:
            seen.add(r.id)
            yield r.id, r.question, r.vanilla_text, extract_answer(r.vanilla_text) or r.gold


def export_tokenskip(
    runs: str | Path | Sequence[str | Path],
    out: str | Path,
    *,
    data: str | Path | None = None,
    ratios: Sequence[float] = RATIOS,
    seed: int = 0,
    scorer: ImportanceScorer = rule_scorer,
) -> int:
    """TokenSkip data: the model's own correct CoTs (:func:`correct_cots`: search files, or
    benchmark rows with their items file ``data``; several files are read in order, an item
    taken once), each compressed with a ratio drawn from ``ratios`` (one per CoT: the paper's
    data is no larger than its training set). Returns the number of examples written."""
    files = [runs] if isinstance(runs, (str, Path)) else list(runs)
    if not files:
        raise ValueError("give at least one search or benchmark rows file")
    for path in files:
        check_paths(path, out)
    rng = random.Random(seed)

    def rows() -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        for path in files:
            for item_id, question, text, answer in correct_cots(path, data):
                if item_id in seen:
                    continue
                seen.add(item_id)
                cot = text.replace(f"[[{answer}]]", "").strip()
                yield training_example(question, cot, answer, rng.choice(list(ratios)), scorer)

    return write_jsonl(rows(), out)


# -- TALE-PT by self-training: the model's own shortest correct answers ----------------------
BUDGET_GRID = 10
"""Stated budgets in self-training data are the target answer's own length rounded up to a
multiple of this many tokens (a budget a little above what the answer used)."""


NO_REASONING = frozenset({"direct"})
"""Methods whose answers show no reasoning: a correct one teaches the model to guess."""


class SelfAnswer(NamedTuple):
    """The shortest correct answer the model gave to one item, and where it came from."""

    id: str
    question: str
    text: str
    tokens: int
    source: str


def shortest_correct_answers(
    files: Sequence[str | Path], data: str | Path | None = None, *, model: str | None = None
) -> dict[str, SelfAnswer]:
    """Per item, the model's shortest correct answer over every file: benchmark rows (any
    method's correct answer that was neither cut at its cap nor forced; their questions come
    from the items file ``data``) and search files (the optimal-budget answer, else the
    correct vanilla answer). Only answers that end in the ``[[answer]]`` their prompt asked
    for are taken. ``model``: keep only that model's rows (a search file names its model
    too); rows of another model are never mixed in."""
    from tale_shared._io import iter_json_lines
    from tale_shared.answers import bracketed_answer
    from tale_shared.research.bench import load_rows
    from tale_shared.research.datasets import load_items

    questions = {item.id: item.question for item in load_items(data)} if data else {}
    best: dict[str, SelfAnswer] = {}

    def offer(answer: SelfAnswer) -> None:
        # an answer that was graded right without the [[answer]] its prompt asked for
        # (the grader reads the last number) would teach the tuned model to drop the format
        if answer.tokens <= 0 or bracketed_answer(answer.text) is None:
            return
        if answer.id not in best or answer.tokens < best[answer.id].tokens:
            best[answer.id] = answer

    for path in files:
        first = next((row for _, row, problem in iter_json_lines(path) if problem is None), None)
        name = Path(path).name
        if isinstance(first, dict) and "method" in first:  # benchmark rows
            if not questions:
                raise ValueError(f"{path} holds benchmark rows: give the items file (--data)")
            for row in load_rows(path):
                usable = row.correct and not row.cut and not row.forced and row.error is None
                if not usable or row.id not in questions or row.method in NO_REASONING:
                    continue
                if model is not None and row.model != model:
                    continue
                source = f"{name}:{row.method}"
                offer(SelfAnswer(row.id, questions[row.id], row.text, row.output_tokens, source))
            continue
        for r in load_results(path):
            if r.error is not None or (model is not None and r.model != model):
                continue
            if r.found and r.optimal_text and r.optimal_tokens:
                offer(SelfAnswer(r.id, r.question, r.optimal_text, r.optimal_tokens, name))
            if r.vanilla_correct and r.vanilla_text and r.vanilla_tokens:
                offer(SelfAnswer(r.id, r.question, r.vanilla_text, r.vanilla_tokens, name))
    return best


def stated_budget(tokens: int, grid: int = BUDGET_GRID) -> int:
    """The budget a self-training example states for an answer of ``tokens`` tokens.

    >>> stated_budget(83), stated_budget(90), stated_budget(1)
    (90, 90, 10)
    """
    return max(grid, math.ceil(tokens / grid) * grid)


def export_self_training(
    files: Sequence[str | Path],
    out: str | Path,
    *,
    data: str | Path | None = None,
    model: str | None = None,
    budget_share: float = 0.5,
    style: str = "system",
    grid: int = BUDGET_GRID,
    seed: int = 0,
    leave_out: Iterable[str] = (),
) -> int:
    """TALE-PT data by self-training: each item's shortest correct answer
    (:func:`shortest_correct_answers`) as the reply to the plain question prompt — no
    exemplars, no budget: the model learns to be brief by itself — or, for a seeded
    ``budget_share`` of the items, to the prompt in ``style`` stating the budget
    :func:`stated_budget` (the answer's length rounded up to ``grid``), so that the tuned
    model can also be told a budget and keep to it. ``leave_out``: item ids held back for
    choosing (never trained on). Returns the number of examples written."""
    if not 0 <= budget_share <= 1:
        raise ValueError(f"budget_share must be in [0, 1], got {budget_share}")
    for path in files:
        check_paths(path, out)
    budgeted = get_style(style)
    if not budgeted.uses_budget:
        raise ValueError(f"style {style!r} states no budget: choose one that does")
    plain = get_style("vanilla")
    held = set(leave_out)
    answers = shortest_correct_answers(files, data, model=model)
    rng = random.Random(seed)

    def rows() -> Iterator[dict[str, Any]]:
        for item_id in sorted(answers):
            answer = answers[item_id]
            with_budget = rng.random() < budget_share
            if item_id in held:
                continue
            if with_budget:
                budget = stated_budget(answer.tokens, grid)
                prompt = budgeted.render(answer.question, budget)
            else:
                budget, prompt = None, plain.render(answer.question, None)
            messages = [{"role": m.role, "content": m.content} for m in prompt]
            messages.append({"role": "assistant", "content": answer.text.strip()})
            yield {
                "messages": messages,
                "id": item_id,
                "budget": budget,
                "answer_tokens": answer.tokens,
                "source": answer.source,
            }

    return write_jsonl(rows(), out)
