"""Does compression keep the reasoning? Compress the model's own correct CoTs, give the model
the question and the compressed CoT, and see whether it still gets the gold answer.

Per CoT (from the search results: the model's correct vanilla answers on training items, with
the final answer expression removed so it cannot simply be copied) and per requested ratio:
each importance scorer (``rule``, ``surprisal``...), against **random deletion** and
**truncation** to the same ratio, plus the uncompressed CoT (ratio 1.0). Rows are appended as
they finish (resumable, like the benchmark).

Example:
    .. code-block:: python

        rows = run_recoverability(model, results, [0.9, 0.7, 0.5], {"rule": rule_scorer},
                                  "recover.jsonl")
        print(recoverability_table(summarize_recoverability(load_recover_rows("recover.jsonl"))))
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel

from tale_shared._io import JsonlAppender, iter_json_lines
from tale_shared.answers import is_correct
from tale_shared.compression import ImportanceScorer, compress, kept_ratio, spans
from tale_shared.models import ChatModel
from tale_shared.prompts import Message
from tale_shared.research._tables import markdown_table
from tale_shared.research.search import SearchResult

RECOVER_PROMPT = (
    "Question: {question}\n\nA worked solution, with some words left out:\n{cot}\n\n"
    "What is the final answer? Reply with only the number in double brackets, like [[42]]."
)
BASELINES = ("random", "truncate")
_FINAL = re.compile(r"\\boxed\{[^{}]*\}|\[\[[^\]]*\]\]")


def without_final_answer(cot: str) -> str:
    """The CoT with its final-answer expressions (``\\boxed{..}``, ``[[..]]``) removed."""
    return _FINAL.sub("", cot).strip()


class RecoverRow(BaseModel):
    id: str
    method: str
    ratio: float
    actual_ratio: float
    correct: bool = False
    answer_text: str | None = None
    output_tokens: int = 0
    error: str | None = None


def random_deletion(cot: str, ratio: float, rng: random.Random) -> str:
    """Words dropped at random (nothing protected) down to ``ratio`` of the tokens."""
    return compress(cot, ratio, lambda tokens: [rng.random() for _ in tokens])


def truncation(cot: str, ratio: float, count: Callable[[str], int] | None = None) -> str:
    """The first ``ratio`` of the CoT's tokens."""
    if count is None:
        from tale_shared.tokens import count_tokens

        count = count_tokens
    total = max(1, count(cot))
    cut = 0
    for span in spans(cot):
        if count(cot[: span.end]) > ratio * total:
            break
        cut = span.end
    return cot[:cut].strip()


def variants(
    cot: str,
    ratio: float,
    scorers: Mapping[str, ImportanceScorer],
    rng: random.Random,
) -> dict[str, str]:
    """The CoT compressed to ``ratio`` by each scorer and each baseline."""
    out = {name: compress(cot, ratio, scorer) for name, scorer in scorers.items()}
    out["random"] = random_deletion(cot, ratio, rng)
    out["truncate"] = truncation(cot, ratio)
    return out


def load_recover_rows(path: str | Path) -> list[RecoverRow]:
    latest: dict[tuple[str, str, float], RecoverRow] = {}
    for _, row, problem in iter_json_lines(path):
        if problem is None and isinstance(row, dict):
            parsed = RecoverRow.model_validate(row)
            latest[(parsed.id, parsed.method, parsed.ratio)] = parsed
    return list(latest.values())


def run_recoverability(
    model: ChatModel,
    results: Sequence[SearchResult],
    ratios: Sequence[float],
    scorers: Mapping[str, ImportanceScorer],
    out: str | Path,
    *,
    seed: int = 0,
    max_tokens: int = 24,
    progress: bool = True,
) -> int:
    """Run every (CoT, method, ratio) not yet in ``out``; returns how many ran."""
    path = Path(out)
    done = (
        {(r.id, r.method, r.ratio) for r in load_recover_rows(path) if r.error is None}
        if path.exists()
        else set()
    )
    usable = [r for r in results if r.vanilla_correct and r.vanilla_text]
    todo: list[tuple[SearchResult, str, float, str]] = []
    for result in usable:
        cot = without_final_answer(result.vanilla_text or "")
        rng = random.Random(f"{seed}:{result.id}")
        if (result.id, "full", 1.0) not in done:
            todo.append((result, "full", 1.0, cot))
        for ratio in ratios:
            for method, text in variants(cot, ratio, scorers, rng).items():
                if (result.id, method, ratio) not in done:
                    todo.append((result, method, ratio, text))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="recover", unit="call")
    with JsonlAppender(path) as appender:
        for result, method, ratio, text in todo:
            full = without_final_answer(result.vanilla_text or "")
            prompt = RECOVER_PROMPT.format(question=result.question, cot=text)
            try:
                reply = model.complete([Message("user", prompt)], max_tokens=max_tokens)
            except Exception as exc:
                row = RecoverRow(
                    id=result.id, method=method, ratio=ratio, actual_ratio=0, error=repr(exc)
                )
            else:
                row = RecoverRow(
                    id=result.id,
                    method=method,
                    ratio=ratio,
                    actual_ratio=round(kept_ratio(full, text), 4),
                    correct=is_correct(reply.text, result.gold),
                    answer_text=reply.text,
                    output_tokens=reply.usage.output_tokens,
                )
            appender.write_line(row.model_dump_json())
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return len(todo)


class RecoverSummary(BaseModel):
    method: str
    ratio: float
    n: int
    mean_actual_ratio: float
    recovered: float


def summarize_recoverability(rows: Sequence[RecoverRow]) -> list[RecoverSummary]:
    groups: dict[tuple[str, float], list[RecoverRow]] = {}
    for r in rows:
        if r.error is None:
            groups.setdefault((r.method, r.ratio), []).append(r)
    return [
        RecoverSummary(
            method=method,
            ratio=ratio,
            n=len(g),
            mean_actual_ratio=sum(r.actual_ratio for r in g) / len(g),
            recovered=sum(r.correct for r in g) / len(g),
        )
        for (method, ratio), g in sorted(groups.items(), key=lambda kv: (-kv[0][1], kv[0][0]))
    ]


def recoverability_table(summaries: Sequence[RecoverSummary]) -> str:
    return markdown_table(
        ["method", "asked ratio", "actual ratio (mean)", "|actual - asked|", "recovered", "n"],
        [
            [
                s.method,
                f"{s.ratio:.1f}",
                f"{s.mean_actual_ratio:.3f}",
                f"{abs(s.mean_actual_ratio - s.ratio):.3f}",
                f"{100 * s.recovered:.1f}%",
                s.n,
            ]
            for s in summaries
        ],
    )


def plot_recoverability(summaries: Sequence[RecoverSummary], png: str | Path) -> Path:
    """Recovered share against the actual kept ratio, one line per method."""
    from tale_shared.research.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    full = [s for s in summaries if s.method == "full"]
    for method in sorted({s.method for s in summaries} - {"full"}):
        pts = sorted(
            [(s.mean_actual_ratio, s.recovered) for s in summaries if s.method == method]
            + [(1.0, f.recovered) for f in full]
        )
        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o", label=method)
    ax.set_xlabel("kept ratio of the CoT's tokens (actual)")
    ax.set_ylabel("answers recovered (%)")
    ax.invert_xaxis()
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
