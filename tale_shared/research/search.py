"""The optimal token budget search of TALE, with the token-elasticity guard.

For a question with a known answer: run vanilla CoT; its output token count is the upper
bound. Binary-search between a lower bound and that bound; a budget is *feasible* when the
answer is correct **and** the output is shorter than at the last feasible budget (below some
budget models stop complying and write more: token elasticity). Finish with a greedy
refinement: try the budget equal to the tokens the best answer actually used. Items whose
vanilla answer is wrong are skipped, with the reason recorded.

Example:
    .. code-block:: python

        searcher = BudgetSearch(load_local_model())
        result = searcher.search(Item(id="1", question="...", answer="72"))
        result.optimal_budget, result.vanilla_tokens, result.calls  # (48, 212, 7)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from tale_shared._io import iter_json_lines
from tale_shared._redact import redact_optional
from tale_shared.answers import extract_answer, is_correct
from tale_shared.models import ChatModel, Completion, ModelCallError
from tale_shared.profiles import style_for
from tale_shared.prompts import Message, PromptStyle, get_style
from tale_shared.research.datasets import Item
from tale_shared.research.jobs import Output, arun_jobs, refuse_other_models
from tale_shared.usage import TokenUsage, sum_usage


class SearchStep(BaseModel):
    """One budget tried: what the model wrote under it."""

    budget: int | None
    output_tokens: int
    correct: bool
    feasible: bool
    answer: str | None
    stage: str = "binary"


class SearchResult(BaseModel):
    """The search for one item: its optimal budget and the whole trajectory."""

    id: str
    question: str
    gold: str
    model: str
    style: str
    vanilla_tokens: int | None = None
    vanilla_correct: bool | None = None
    vanilla_text: str | None = None
    optimal_budget: int | None = None
    optimal_tokens: int | None = None
    optimal_text: str | None = None
    trajectory: list[SearchStep] = Field(default_factory=list)
    calls: int = 0
    usage: TokenUsage = Field(default_factory=TokenUsage)
    skipped_reason: str | None = None
    error: str | None = None

    @field_validator("error", "model", mode="after")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        return redact_optional(value)

    @property
    def found(self) -> bool:
        return self.optimal_budget is not None

    @property
    def below_vanilla(self) -> bool:
        return (
            self.optimal_tokens is not None
            and self.vanilla_tokens is not None
            and self.optimal_tokens < self.vanilla_tokens
        )


class BudgetSearch:
    """Searches the smallest feasible budget per item on any core ``ChatModel``.

    ``style`` defaults to the model's profile. ``min_budget`` is the lower bound; the search
    stops when the interval is narrower than ``tolerance`` (a fraction of the upper bound,
    at least one token) or after ``max_steps`` budgeted calls.
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        style: str | PromptStyle | None = None,
        min_budget: int = 8,
        tolerance: float = 0.1,
        max_steps: int = 8,
        max_tokens: int = 512,
    ) -> None:
        self.model = model
        self.style = style_for(model.model_name, style)
        if not self.style.uses_budget:
            raise ValueError(f"style {self.style.name!r} takes no budget: nothing to search")
        self.vanilla = get_style("vanilla")
        self.min_budget = min_budget
        self.tolerance = tolerance
        self.max_steps = max_steps
        self.max_tokens = max_tokens

    def new_result(self, item: Item, error: str | None = None) -> SearchResult:
        """An empty result for ``item`` from this searcher (with ``error`` when it failed)."""
        return SearchResult(
            id=item.id,
            question=item.question,
            gold=item.answer,
            model=self.model.model_name,
            style=self.style.name,
            error=error,
        )

    # The search is written once, over an "ask" function; sync and async only supply it.
    def _plan(self, item: Item, ask: Callable[[int | None, int], Completion]) -> SearchResult:
        result = self.new_result(item)
        usages: list[TokenUsage] = []

        def run(budget: int | None, cap: int) -> Completion:
            completion = ask(budget, cap)
            usages.append(completion.usage)
            result.calls += 1
            return completion

        vanilla = run(None, self.max_tokens)
        result.vanilla_tokens = vanilla.usage.output_tokens
        result.vanilla_text = vanilla.text
        result.vanilla_correct = is_correct(vanilla.text, item.answer)
        if not result.vanilla_correct:
            result.skipped_reason = (
                f"vanilla answer {extract_answer(vanilla.text)!r} is wrong (gold {item.answer!r})"
            )
            result.usage = sum_usage(usages)
            return result

        best_tokens = result.vanilla_tokens
        lo, hi = self.min_budget - 1, max(self.min_budget, result.vanilla_tokens)

        def attempt(budget: int, stage: str) -> bool:
            nonlocal best_tokens
            # a reply as long as the best so far cannot be feasible: cap it there
            completion = run(budget, max(1, best_tokens))
            tokens = completion.usage.output_tokens
            correct = is_correct(completion.text, item.answer)
            feasible = correct and tokens < best_tokens
            result.trajectory.append(
                SearchStep(
                    budget=budget,
                    output_tokens=tokens,
                    correct=correct,
                    feasible=feasible,
                    answer=extract_answer(completion.text),
                    stage=stage,
                )
            )
            if feasible:
                best_tokens = tokens
                result.optimal_budget, result.optimal_tokens = budget, tokens
                result.optimal_text = completion.text
            return feasible

        width = max(1, int(self.tolerance * hi))
        steps = 0
        while hi - lo > width and steps < self.max_steps:
            mid = (lo + hi) // 2
            steps += 1
            if attempt(mid, "binary"):
                hi = mid
            else:
                lo = mid
        if result.optimal_budget is not None and result.optimal_tokens is not None:
            refined = result.optimal_tokens
            if self.min_budget <= refined < result.optimal_budget:
                attempt(refined, "greedy")
        if result.optimal_budget is None:
            result.skipped_reason = "no budget below vanilla gave a correct, shorter answer"
        result.usage = sum_usage(usages)
        return result

    def _messages(self, item: Item, budget: int | None) -> list[Message]:
        style = self.vanilla if budget is None else self.style
        return style.render(item.question, budget)

    def search(self, item: Item) -> SearchResult:
        return self._plan(
            item, lambda b, cap: self.model.complete(self._messages(item, b), max_tokens=cap)
        )

    async def asearch(self, item: Item, *, executor: Executor | None = None) -> SearchResult:
        """Search ``item`` with async model calls. The plan is sequential: it runs in a worker
        thread of ``executor`` (the loop's default one if ``None``, which has only CPU count
        + 4 threads) that drives the calls on the caller's loop, so that many items can be
        searched at once — as many as the executor has threads."""
        loop = asyncio.get_running_loop()

        def ask(budget: int | None, cap: int) -> Completion:
            call = self.model.acomplete(self._messages(item, budget), max_tokens=cap)
            return asyncio.run_coroutine_threadsafe(call, loop).result()

        return await loop.run_in_executor(executor, self._plan, item, ask)


# -- whole data sets: append as each item finishes, resume, retry ----------------------------
def finished_ids(path: Path, model_name: str | None = None) -> set[str]:
    """Ids already searched in ``path`` (items recorded with an error are searched again).

    With ``model_name`` (the model about to search), a file whose results came from another
    model raises ``ValueError`` rather than resume (its budgets are another model's)."""
    if not path.exists():
        return set()
    rows = [
        row
        for _, row, _ in iter_json_lines(path)  # a line cut by a crash: searched again
        if isinstance(row, dict) and row.get("error") is None and "id" in row
    ]
    if model_name is not None:
        refuse_other_models(
            path, (str(row["model"]) for row in rows if row.get("model")), model_name
        )
    return {str(row["id"]) for row in rows}


def load_results(path: str | Path) -> list[SearchResult]:
    """The last result per item id of a search file.

    Lines that are not JSON (the one line a crash may cut) are skipped; a line that is JSON
    but not a search result (``null``, a string, another file's rows) raises ``ValueError``
    naming the line and why, as does a file with no result at all.
    """
    latest: dict[str, SearchResult] = {}
    skipped: list[str] = []
    for n, row, problem in iter_json_lines(path):
        if problem is not None:
            skipped.append(f"line {n}: {problem}")
            continue
        try:
            result = SearchResult.model_validate(row)
        except ValueError as exc:
            first = str(exc).splitlines()
            why = " ".join(first[:3]) if isinstance(row, dict) else f"a {type(row).__name__}"
            raise ValueError(f"{path}:{n} is not a search result: {why}") from None
        latest[result.id] = result
    if not latest and skipped:
        raise ValueError(f"{path} holds no search result ({'; '.join(skipped[:3])})")
    return list(latest.values())


async def search_dataset(
    searcher: BudgetSearch,
    items: Sequence[Item],
    out: str | Path,
    *,
    concurrency: int = 1,
    retries: int = 2,
    progress: bool = True,
    on_result: Callable[[SearchResult], Awaitable[None] | None] | None = None,
) -> list[SearchResult]:
    """Search every item not yet in ``out``, appending each result as it finishes.

    A rerun with the same ``out`` resumes: finished items are never redone or lost. An error
    on an item is recorded with ``error`` set (and searched again on the next run); it never
    stops the others. A model call's failure (:class:`~tale_shared.models.ModelCallError`)
    was already retried by the model itself (a served model's one retry policy) and is
    recorded at once; other errors are retried ``retries`` times.
    """
    path = Path(out)
    done = finished_ids(path, searcher.model.model_name)
    todo = [item for item in items if item.id not in done]
    # one thread per item in flight: the loop's default executor would cap it at CPUs + 4
    executor = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="search")

    async def one(item: Item) -> SearchResult:
        error: BaseException | None = None
        for _ in range(retries + 1):
            try:
                return await searcher.asearch(item, executor=executor)
            except ModelCallError as exc:  # retried where it was made: no second layer
                return searcher.new_result(item, error=repr(exc))
            except Exception as exc:
                error = exc
        return searcher.new_result(item, error=repr(error))

    try:
        results = Output[SearchResult](path, SearchResult.model_dump_json, "search", "item")
        return await arun_jobs(
            todo, one, results, concurrency=concurrency, progress=progress, on_result=on_result
        )
    finally:
        executor.shutdown(wait=False)


def summarize_search(results: Iterable[SearchResult]) -> dict[str, float | int | None]:
    """Figures over a search file: calls per item, share with a feasible budget, medians.

    ``median_token_ratio`` is the median over found items of optimal tokens / vanilla tokens.
    """
    from statistics import mean, median

    every = list(results)
    rows = [r for r in every if r.error is None]
    searched = [r for r in rows if r.vanilla_correct]
    found = [r for r in searched if r.found]

    def mid(values: list[float]) -> float | None:
        return median(values) if values else None

    return {
        "items": len(rows),
        "vanilla_correct": len(searched),
        "with_feasible_budget": len(found),
        "share_feasible_of_correct": len(found) / len(searched) if searched else None,
        "calls_per_item": mean(r.calls for r in rows) if rows else None,
        "calls_per_searched_item": mean(r.calls for r in searched) if searched else None,
        "median_optimal_budget": mid([r.optimal_budget or 0 for r in found]),
        "median_optimal_tokens": mid([r.optimal_tokens or 0 for r in found]),
        "median_vanilla_tokens": mid([r.vanilla_tokens or 0 for r in searched]),
        "median_vanilla_tokens_of_found": mid([r.vanilla_tokens or 0 for r in found]),
        "median_token_ratio": mid(
            [(r.optimal_tokens or 0) / r.vanilla_tokens for r in found if r.vanilla_tokens]
        ),
        "errors": len(every) - len(rows),
    }
