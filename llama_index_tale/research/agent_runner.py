"""The agent benchmark's LlamaIndex runner: ``ReActAgent`` with a calculator tool, its LLM
wrapped in :class:`~llama_index_tale.TaleLLM` as the configuration says, traced with
:class:`~llama_index_tale.TaleTracer`.

``ReActAgent`` by default: ReAct's text protocol (Thought / Action / Action Input /
Observation) runs on any LLM. ``agent="function"`` runs ``FunctionAgent`` instead, which needs
a function-calling LLM — the embedded ``LocalLlamaLLM`` is one, in its chat template's own
tool layout. ``TaleLLM`` works the same under both.

Registered as the ``llama-index`` entry of ``tale.agent_runners``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tale_shared._optional import require
from tale_shared.local.registry import PACKAGED_ADAPTER
from tale_shared.research.agent_bench import (
    AGENT_SYSTEM_PROMPT,
    RECURSION_LIMIT,
    AgentConfig,
    AgentRun,
    StepLog,
    trace_call,
)
from tale_shared.research.agent_tasks import ToolSpec, task_tools
from tale_shared.tool_demo import ANSWER_TOOL, ANSWER_TOOL_DESCRIPTION, ToolDemo, answer_text


class LlamaIndexAgentRunner:
    """Runs one configuration of the agent benchmark on one question with ``ReActAgent``."""

    framework = "llama-index"

    def __init__(
        self,
        model: str,
        *,
        threads: int | None = None,
        lora: str | None = PACKAGED_ADAPTER,
        max_tokens: int = 512,
        recursion_limit: int = RECURSION_LIMIT,
        agent: str = "react",
    ) -> None:
        if agent not in ("react", "function"):
            raise ValueError(f"agent must be 'react' or 'function', not {agent!r}")
        self.agent = agent
        require(
            "llama_index.core",
            'the LlamaIndex runner needs: pip install "tale-reasoning[llama-index]"',
        )

        from llama_index_tale.llms import LocalLlamaLLM
        from tale_shared.loading import is_api_model

        if is_api_model(model):
            raise ValueError(
                f"the LlamaIndex agent runner runs the embedded models (a name or a GGUF path), "
                f"not {model!r}"
            )
        self.llm = LocalLlamaLLM(model=model, n_threads=threads, lora=lora, max_tokens=max_tokens)
        self.model_name = self.llm.metadata.model_name
        # LangGraph counts a model step and its tool call as two; a ReAct iteration is one
        self.max_iterations = max(1, recursion_limit // 2)

    def agent_llm(self, config: AgentConfig) -> Any:
        """The LLM the agent gets: the model itself, or ``TaleLLM`` around it."""
        from llama_index_tale.agents import TaleLLM

        if config.call_limit is not None:
            raise ValueError("calls=N is LangChain's ModelCallLimitMiddleware; use max steps here")
        llm = self.llm
        if config.answer_tool and self.agent != "function":
            raise ValueError(
                "'answer-tool' needs the function-calling agent (--llama-agent function)"
            )
        forced = {
            "tool_first": config.tool_first,
            "tool_required": config.answer_tool,
            "plan_calls": config.plan_calls,
        }
        if any(forced.values()):  # a copy sharing the loaded model
            llm = llm.model_copy(update=forced)
        if config.budget_method is None and config.context_ratio is None:
            return llm
        return TaleLLM(
            llm=llm,
            method=config.budget_method or "vanilla",
            total_tokens=config.total_tokens,
            show_remaining=config.tracker,
            context_ratio=config.context_ratio,
        )

    def run(
        self,
        config: AgentConfig,
        question: str,
        tools: Sequence[ToolSpec] | None = None,
        system_prompt: str | None = None,
        demo: ToolDemo | None = None,
    ) -> AgentRun:
        return asyncio.run(self._run(config, question, tools, system_prompt, demo))

    async def _run(
        self,
        config: AgentConfig,
        question: str,
        tools: Sequence[ToolSpec] | None,
        system_prompt: str | None,
        demo: ToolDemo | None,
    ) -> AgentRun:
        from llama_index.core.agent.workflow import (
            AgentOutput,
            FunctionAgent,
            ReActAgent,
            ToolCallResult,
        )
        from llama_index.core.tools import FunctionTool
        from llama_index.core.workflow.errors import WorkflowRuntimeError

        from llama_index_tale.agents import TaleLLM
        from llama_index_tale.tool_demo import tool_demo_history
        from llama_index_tale.tracing import TaleTracer

        llm = self.agent_llm(config)
        own: list[Any] = [
            FunctionTool.from_defaults(fn=t.function, name=t.name, description=t.description)
            for t in tools or task_tools()
        ]
        history: list[Any] = []
        if demo is not None:
            if self.agent != "function":
                raise ValueError("'demo' needs the function-calling agent (--llama-agent function)")
            demo.check_tools([t.metadata.name for t in own])
            history = tool_demo_history(
                demo, answer_tool=ANSWER_TOOL if config.answer_tool else None
            )
        if config.answer_tool:
            own.append(
                FunctionTool.from_defaults(
                    fn=_final_answer,
                    name=ANSWER_TOOL,
                    description=ANSWER_TOOL_DESCRIPTION,
                    return_direct=True,
                )
            )
        kind = FunctionAgent if self.agent == "function" else ReActAgent
        agent = kind(tools=own, llm=llm, system_prompt=system_prompt or AGENT_SYSTEM_PROMPT)
        tool_calls = 0
        tool_trace: list[str] = []
        step_calls: list[int] = []  # tool calls of each agent step, in order
        final = ""
        hit_limit = False
        started = time.perf_counter()
        with TaleTracer() as tracer, llm.run() if isinstance(llm, TaleLLM) else _no_run() as ledger:
            handler = agent.run(
                user_msg=question, chat_history=history, max_iterations=self.max_iterations
            )
            try:
                async for event in handler.stream_events():
                    if isinstance(event, ToolCallResult) and event.tool_name != ANSWER_TOOL:
                        tool_calls += 1
                        tool_trace.append(
                            trace_call(event.tool_name, event.tool_kwargs, event.tool_output)
                        )
                    elif isinstance(event, AgentOutput):
                        # an answer-tool call is the final answer, not a tool step
                        step_calls.append(
                            sum(1 for c in event.tool_calls if c.tool_name != ANSWER_TOOL)
                        )
                result: Any = await handler
                final = str(result.response.content or "")
            except WorkflowRuntimeError as exc:
                if "Max iterations" not in str(exc):
                    raise
                hit_limit = True
        seconds = time.perf_counter() - started
        logged = ledger.steps if ledger is not None else []
        # ReAct's tool calls are read from the text by the agent, not by the LLM: take them
        # from the agent's own events where they line up with the LLM's steps
        step_log = [
            StepLog(
                budget=s.budget,
                output_tokens=s.output_tokens,
                tool_calls=step_calls[i] if len(step_calls) == len(logged) else s.tool_calls,
            )
            for i, s in enumerate(logged)
        ]
        answers = [c for r in tracer.records for c in r.calls if c.role == "answer"]
        if not logged and len(answers) == len(step_calls):  # no budget adapter: the tracer's
            step_log = [  # calls are the agent's steps
                StepLog(output_tokens=c.usage.output_tokens, tool_calls=n)
                for c, n in zip(answers, step_calls, strict=True)
            ]
        return AgentRun(
            final_text=final,
            record=tracer.records[-1] if tracer.records else None,
            steps=len(step_calls),
            tool_calls=tool_calls,
            seconds=seconds,
            recursion_limit=hit_limit,
            step_log=step_log,
            tool_trace=tool_trace,
        )


def _final_answer(answer: float) -> str:
    """The answer tool: ends the run with the answer in tale's ``[[answer]]`` form."""
    return answer_text(answer)


@contextmanager
def _no_run() -> Iterator[None]:
    yield None


def agent_runner(model: str, **options: Any) -> LlamaIndexAgentRunner:
    """The ``tale.agent_runners`` entry point."""
    return LlamaIndexAgentRunner(model, **options)
