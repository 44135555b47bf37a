"""The agent benchmark: a budget inside a tool-using agent loop, measured.

Two kinds of task. *Tool optional*: a maths word problem (GSM8K, SVAMP) solved by an agent with
one tool, a calculator that evaluates arithmetic and cannot run code
(:func:`tale_shared.calculator.calculate`). *Tool necessary*
(:mod:`tale_shared.research.agent_tasks`): questions whose numbers only a tool knows — a
catalogue's prices, facts in a document set — from templates split into dev and held-out.
The run ends with the final answer in the usual ``[[answer]]`` form and is graded like
``tale bench``.
Each framework runs its own agent — LangChain ``create_agent`` with the middleware, LlamaIndex
``ReActAgent`` with ``TaleLLM`` — through a runner that the framework's package registers under
the ``tale.agent_runners`` entry point, so this module knows neither framework.

A **configuration** is named by a spec: parts joined by ``&``::

    none                     the agent with nothing added (the reference)
    tale                     TALE's step budgets with the model's profile method
    tale=<method spec>       ... with that method (e.g. tale=tale-heuristic@system)
    total=<N>                a run total of N tokens (alone: a total only, no step budgets)
    tracker                  the tokens left in the run stated to the agent at every step
                             (the Budget Tracker of Liu et al. 2025); needs total=<N>
    calls=<N>                LangChain's ModelCallLimitMiddleware(run_limit=N): the anchor a
                             LangChain user has today
    context=<ratio>          older tool results compressed to ``ratio`` of their tokens
    tool-first               the embedded model's first reply must call a tool (a grammar;
                             ``ChatLocalLlama``/``LocalLlamaLLM(tool_first=True)``): a plain-
                             agent lever, no budget
    demo                     a worked example of the task family with the task's own tools
                             before the question (:mod:`tale_shared.tool_demo`); tool-
                             necessary tasks only
    answer-tool              the final answer is a call to the ``final_answer`` tool, so every
                             reply is a call (LangChain ``ToolStrategy``; LlamaIndex a
                             ``return_direct`` tool with ``LocalLlamaLLM(tool_required=True)``)
    plan                     each forced call begins with a short plan in words
                             (``plan_calls=True``): the model says what it knows and what it
                             will do before it acts; needs tool-first or answer-tool

Per run the row holds: solved or not, every call's input and output tokens (the estimator's
and forced answers' included), agent steps, tool calls, recursion-limit hits, empty final
replies and wall time. Rows are :class:`~tale_shared.research.bench.BenchRow` s with agent
fields, so ``tale bench``'s summary, paired intervals, table and Pareto plot apply.

Example:
    >>> parse_agent_config("tale=tale-heuristic@system&total=1500&tracker").total_tokens
    1500
    >>> parse_agent_config("none").adds_nothing
    True
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from tale_shared.research._tables import markdown_table
from tale_shared.research.agent_tasks import (
    CALCULATOR_DESCRIPTION,
    DEMOS,
    AgentTask,
    ToolSpec,
    task_tools,
    tool_system_prompt,
)
from tale_shared.research.bench import (
    BenchRow,
    MethodSummary,
    bench_table,
    done_pairs,
    load_rows,
)
from tale_shared.research.datasets import Item
from tale_shared.research.jobs import Output, run_jobs
from tale_shared.tool_demo import ToolDemo
from tale_shared.usage import QueryRecord

AGENT_SYSTEM_PROMPT = (
    "You solve maths word problems. Use the calculator tool for the arithmetic. When you "
    "know the result, reply with the final answer as a number in double brackets, "
    "e.g. [[42]]."
)
"""The agent's system prompt in every configuration and framework."""

RECURSION_LIMIT = 12
"""LangGraph steps per run (about five model calls with their tool calls)."""


@dataclass(frozen=True)
class AgentConfig:
    """One configuration of the benchmark (see the module docstring for the spec)."""

    name: str
    method: str | None = None
    total_tokens: int | None = None
    tracker: bool = False
    call_limit: int | None = None
    context_ratio: float | None = None
    tool_first: bool = False
    demo: bool = False
    answer_tool: bool = False
    plan_calls: bool = False

    @property
    def adds_nothing(self) -> bool:
        """The reference: the agent with nothing of tale's or LangChain's added."""
        return (
            self.method is None
            and self.total_tokens is None
            and self.call_limit is None
            and self.context_ratio is None
            and not self.tool_first
            and not self.demo
            and not self.answer_tool
            and not self.plan_calls
        )

    @property
    def budget_method(self) -> str | None:
        """The method the budget adapter runs: ``"vanilla"`` (no step budget) when only a
        run total or the tracker is asked for; ``None`` when no budget adapter is needed."""
        if self.method is not None:
            return self.method
        return "vanilla" if self.total_tokens is not None else None


def parse_agent_config(spec: str) -> AgentConfig:
    """An :class:`AgentConfig` from its spec; a bad one raises ``ValueError`` saying why."""
    name = spec.strip()
    if not name:
        raise ValueError("empty agent configuration")
    fields: dict[str, object] = {}
    for part in (p.strip() for p in name.split("&")):
        key, _, value = part.partition("=")
        try:
            if key == "none" and not value:
                continue
            if key == "tale":
                fields["method"] = value or "tale"
            elif key == "total":
                fields["total_tokens"] = _positive(int(value), part)
            elif key == "tracker" and not value:
                fields["tracker"] = True
            elif key == "tool-first" and not value:
                fields["tool_first"] = True
            elif key == "demo" and not value:
                fields["demo"] = True
            elif key == "answer-tool" and not value:
                fields["answer_tool"] = True
            elif key == "plan" and not value:
                fields["plan_calls"] = True
            elif key == "calls":
                fields["call_limit"] = _positive(int(value), part)
            elif key == "context":
                ratio = float(value)
                if not 0 < ratio <= 1:
                    raise ValueError(f"{part!r}: the ratio must be in (0, 1]")
                fields["context_ratio"] = ratio
            else:
                raise ValueError(f"unknown part {part!r}")
        except ValueError as exc:
            raise ValueError(
                f"cannot read agent configuration {spec!r}: {exc} (parts: none, tale[=METHOD], "
                "total=N, tracker, calls=N, context=RATIO, tool-first, demo, answer-tool, "
                "plan, joined by &)"
            ) from None
    config = AgentConfig(name=name, **fields)  # type: ignore[arg-type]
    if config.tracker and config.total_tokens is None:
        raise ValueError(f"{spec!r}: the tracker states the tokens left of total=N; give one")
    if config.plan_calls and not (config.tool_first or config.answer_tool):
        raise ValueError(
            f"{spec!r}: a plan is written before a forced call; add tool-first or answer-tool"
        )
    if config.method is not None:
        from tale_shared.resolve import resolve_method

        resolve_method(None, config.method, agent=True)  # a bad method spec fails now, not mid-run
    return config


def _positive(value: int, part: str) -> int:
    if value < 1:
        raise ValueError(f"{part!r} must be positive")
    return value


TRACE_CHARS = 200
"""A traced tool call is cut to this many characters."""


def trace_call(name: str, arguments: Any, result: Any) -> str:
    """One line of a run's tool trace: ``name(arguments) -> result``, cut to
    :data:`TRACE_CHARS`.

    >>> trace_call("calculator", {"expression": "2*3"}, "6")
    "calculator({'expression': '2*3'}) -> 6"
    """
    text = f"{name}({arguments}) -> {result}".replace("\n", " ")
    return text if len(text) <= TRACE_CHARS else text[: TRACE_CHARS - 3] + "..."


class StepLog(BaseModel):
    """One agent step: the budget it got (``None``: none), its output tokens, its tool calls
    (a call to the answer tool is the final answer, not counted)."""

    budget: int | None = None
    output_tokens: int = 0
    tool_calls: int = 0


class AgentRow(BenchRow):
    """One configuration on one item: a :class:`BenchRow` (``method`` is the configuration's
    name; tokens over every call) with what an agent run adds."""

    framework: str = ""
    steps: int = 0
    """The agent's model calls (its steps; estimator calls and forced answers not included)."""
    tool_calls: int = 0
    recursion_limit: bool = False
    """The run hit the framework's step limit before a final reply."""
    empty_final: bool = False
    """The run ended with an empty final reply."""
    step_log: list[StepLog] = Field(default_factory=list)
    """Each agent step: the budget it was given, its output tokens, its tool calls (where the
    framework's runner can tell; LangChain's can)."""
    step_method: str | None = None
    """The step method the configuration ran, resolved for the model (``tale`` names the
    profile's method when the run was made); ``None`` without a budget adapter."""
    template: str | None = None
    """A tool-necessary task's template (:mod:`~tale_shared.research.agent_tasks`); ``None``
    for a tool-optional item."""
    tool_trace: list[str] = Field(default_factory=list)
    """Each tool call the run made (a call to the answer tool is the final answer, not
    traced), in order, as ``name(arguments) -> result`` (cut at :data:`TRACE_CHARS`), so that
    a failed run can be read."""


@dataclass
class AgentRun:
    """What a framework's runner reports for one run (the core grades and counts it)."""

    final_text: str
    record: QueryRecord | None
    steps: int
    tool_calls: int
    seconds: float
    recursion_limit: bool = False
    step_log: list[StepLog] = field(default_factory=list)
    tool_trace: list[str] = field(default_factory=list)


class AgentRunner(Protocol):
    """A framework's agent: runs ``config`` on one question and reports the run. ``tools``
    (the core's specs, wrapped as the framework's own tools) and ``system_prompt`` replace the
    calculator and :data:`AGENT_SYSTEM_PROMPT` when given; ``demo`` is a worked example to put
    before the question (``config.demo``)."""

    framework: str
    model_name: str

    def run(
        self,
        config: AgentConfig,
        question: str,
        tools: Sequence[ToolSpec] | None = None,
        system_prompt: str | None = None,
        demo: ToolDemo | None = None,
    ) -> AgentRun: ...


def agent_row(runner: AgentRunner, config: AgentConfig, item: Item) -> AgentRow:
    """Run one configuration on one item; an error becomes a row with ``error`` set."""
    from tale_shared.answers import extract_answer, is_correct
    from tale_shared.profiles import agent_method_for

    method = config.budget_method
    resolved = agent_method_for(runner.model_name, method).name if method else None
    task = item if isinstance(item, AgentTask) else None
    try:
        if task is None:
            if config.demo:
                raise ValueError("'demo' is for tool-necessary tasks (--tasks dev|heldout)")
            run = runner.run(config, item.question)
        else:
            run = runner.run(
                config,
                item.question,
                task_tools(task.tools),
                tool_system_prompt(answer_tool=config.answer_tool),
                DEMOS[task.family] if config.demo else None,
            )
    except Exception as exc:
        return AgentRow(
            method=config.name,
            id=item.id,
            framework=runner.framework,
            error=repr(exc),
            step_method=resolved,
            template=task.template if task else None,
        )
    record = run.record
    usage = record.usage if record is not None else None
    return AgentRow(
        method=config.name,
        id=item.id,
        framework=runner.framework,
        correct=is_correct(run.final_text, item.answer),
        answer=extract_answer(run.final_text),
        output_tokens=usage.output_tokens if usage else 0,
        input_tokens=usage.input_tokens if usage else 0,
        cached_input_tokens=usage.cached_input_tokens if usage else 0,
        estimator_tokens=record.estimator_usage.total_tokens if record else 0,
        calls=record.n_calls if record else 0,
        seconds=run.seconds,
        usage_source=usage.source if usage else "none",
        model=runner.model_name,
        text=run.final_text,
        steps=run.steps,
        tool_calls=run.tool_calls,
        recursion_limit=run.recursion_limit,
        empty_final=not run.final_text.strip(),
        step_log=run.step_log,
        tool_trace=run.tool_trace,
        step_method=resolved,
        template=task.template if task else None,
    )


def load_agent_rows(path: str | Path) -> list[AgentRow]:
    """The rows of an agent benchmark file (the last per configuration and item)."""
    return load_rows(path, AgentRow)


def run_agent_bench(
    runner: AgentRunner,
    items: Sequence[Item],
    configs: Sequence[AgentConfig],
    out: str | Path,
    *,
    progress: bool = True,
) -> int:
    """Run every (configuration, item) pair not yet in ``out``, one configuration over all
    items before the next (as a user runs one setup); rows are appended as they finish, so
    a rerun resumes. Returns how many runs were made."""
    path = Path(out)
    done = done_pairs(path, runner.model_name)
    todo = [(c, item) for c in configs for item in items if (c.name, item.id) not in done]

    def run_one(job: tuple[AgentConfig, Item]) -> AgentRow:
        return agent_row(runner, *job)

    output = Output[AgentRow](path, AgentRow.model_dump_json, f"agents ({runner.framework})", "run")
    run_jobs(todo, run_one, output, progress=progress)
    return len(todo)


def agent_table(summaries: Sequence[MethodSummary], rows: Sequence[AgentRow]) -> str:
    """``tale bench``'s table, then the agent columns per configuration (means over the
    summarised items): steps, tool calls, recursion-limit hits, empty final replies."""
    ids_by_config = {s.method: s for s in summaries}
    common = common_ids(rows, list(ids_by_config))
    agent = markdown_table(
        [
            "configuration",
            "steps",
            "tool calls",
            "runs with a tool call",
            "recursion-limit hits",
            "empty final replies",
        ],
        (
            [
                name,
                f"{statistics.mean(r.steps for r in mine):.2f}",
                f"{statistics.mean(r.tool_calls for r in mine):.2f}",
                f"{sum(r.tool_calls > 0 for r in mine) / len(mine):.0%}",
                sum(r.recursion_limit for r in mine),
                sum(r.empty_final for r in mine),
            ]
            for name in ids_by_config
            if (mine := [r for r in rows if r.method == name and r.id in common])
        ),
    )
    steps = step_table([r for r in rows if r.id in common and r.method in ids_by_config])
    return f"{bench_table(summaries)}\n\n{agent}\n\n{steps}"


def step_table(rows: Sequence[AgentRow]) -> str:
    """What a tool-calling step gets against a final-answer step, per configuration: mean
    budget and output tokens of each kind of step (runs whose runner logged its steps)."""

    def kind(step: StepLog) -> str:
        return "tool call" if step.tool_calls else "final answer"

    cells: dict[tuple[str, str], list[StepLog]] = {}
    for row in rows:
        for step in row.step_log:
            cells.setdefault((row.method, kind(step)), []).append(step)

    def mean_budget(steps: list[StepLog]) -> str:
        budgets = [s.budget for s in steps if s.budget is not None]
        return f"{statistics.mean(budgets):.0f}" if budgets else "-"

    return markdown_table(
        ["configuration", "step", "steps", "mean budget", "mean output tokens"],
        (
            [
                config,
                step_kind,
                len(steps),
                mean_budget(steps),
                f"{statistics.mean(s.output_tokens for s in steps):.0f}",
            ]
            for (config, step_kind), steps in sorted(cells.items())
        ),
    )


def common_ids(rows: Sequence[AgentRow], configs: Sequence[str]) -> set[str]:
    """The tasks every one of ``configs`` ran without an error (the items a paired summary
    compares)."""
    ok = [r for r in rows if r.error is None]
    sets = [{r.id for r in ok if r.method == c} for c in configs]
    return set.intersection(*sets) if sets else set()


RunnerFactory = Callable[..., AgentRunner]
"""What a ``tale.agent_runners`` entry point names: ``factory(model, threads=..., lora=...,
max_tokens=...)`` gives that framework's :class:`AgentRunner`."""


def agent_runner(framework: str, model: str, **options: object) -> AgentRunner:
    """The runner the installed framework package registers for ``framework``
    (``langchain`` or ``llama-index``), on ``model``."""
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group="tale.agent_runners")}
    if framework not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise ValueError(
            f"no agent runner for {framework!r} (installed: {known}); "
            'pip install "tale-reasoning[agents]" for LangChain, "[llama-index]" for LlamaIndex'
        )
    factory: RunnerFactory = found[framework].load()
    return factory(model, **options)


__all__ = [
    "AGENT_SYSTEM_PROMPT",
    "CALCULATOR_DESCRIPTION",
    "RECURSION_LIMIT",
    "AgentConfig",
    "AgentRow",
    "AgentRun",
    "AgentRunner",
    "StepLog",
    "agent_row",
    "agent_runner",
    "agent_table",
    "common_ids",
    "load_agent_rows",
    "parse_agent_config",
    "run_agent_bench",
    "step_table",
]
