"""The agent benchmark's LangChain runner: ``create_agent`` with a calculator tool and the
configuration's middleware, traced with :class:`~langchain_tale.TaleTracer`.

Registered as the ``langchain`` entry of ``tale.agent_runners``; ``tale agent-bench
--framework langchain`` finds it there (:mod:`tale_shared.research.agent_bench`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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
from tale_shared.tool_demo import ANSWER_TOOL, ANSWER_TOOL_SCHEMA, ToolDemo, answer_text


def _chat_model(model: str, threads: int | None, lora: str | None, max_tokens: int) -> Any:
    """The embedded model (a registered name or GGUF path), or ``provider:model``."""
    from tale_shared.loading import is_api_model

    if is_api_model(model):
        from langchain.chat_models import init_chat_model

        return init_chat_model(model, temperature=0, max_tokens=max_tokens)
    from langchain_tale.chat_models import ChatLocalLlama

    return ChatLocalLlama(model=model, n_threads=threads, lora=lora, max_tokens=max_tokens)


class LangChainAgentRunner:
    """Runs one configuration of the agent benchmark on one question with ``create_agent``."""

    framework = "langchain"

    def __init__(
        self,
        model: str,
        *,
        threads: int | None = None,
        lora: str | None = PACKAGED_ADAPTER,
        max_tokens: int = 512,
        recursion_limit: int = RECURSION_LIMIT,
    ) -> None:
        require(
            "langchain.agents",
            'the LangChain agent runner needs: pip install "tale-reasoning[agents]"',
        )
        self.chat = _chat_model(model, threads, lora, max_tokens)
        self.model_name = str(getattr(self.chat, "model_name", None) or model)
        self.recursion_limit = recursion_limit

    def middleware(self, config: AgentConfig) -> list[Any]:
        """The configuration's middleware, in the order the agent runs them."""
        from langchain.agents.middleware import ModelCallLimitMiddleware

        from langchain_tale.middleware import (
            TaleBudgetMiddleware,
            TaleContextCompressionMiddleware,
        )

        stack: list[Any] = []
        if config.context_ratio is not None:
            stack.append(TaleContextCompressionMiddleware(context_ratio=config.context_ratio))
        if config.budget_method is not None:
            stack.append(
                TaleBudgetMiddleware(
                    method=config.budget_method,
                    total_tokens=config.total_tokens,
                    show_remaining=config.tracker,
                )
            )
        if config.call_limit is not None:
            stack.append(ModelCallLimitMiddleware(run_limit=config.call_limit, exit_behavior="end"))
        return stack

    def run(
        self,
        config: AgentConfig,
        question: str,
        tools: Sequence[ToolSpec] | None = None,
        system_prompt: str | None = None,
        demo: ToolDemo | None = None,
    ) -> AgentRun:
        from langchain.agents import create_agent
        from langchain.agents.structured_output import ToolStrategy
        from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
        from langchain_core.tools import StructuredTool
        from langgraph.errors import GraphRecursionError

        from langchain_tale.callbacks import TaleTracer
        from langchain_tale.tool_demo import tool_demo_messages

        own = [
            StructuredTool.from_function(func=t.function, name=t.name, description=t.description)
            for t in tools or task_tools()
        ]
        chat = self.chat
        forced = {"tool_first": config.tool_first, "plan_calls": config.plan_calls}
        if any(forced.values()):  # a copy sharing the loaded model
            if "plan_calls" not in type(chat).model_fields:
                raise ValueError("tool-first and plan are levers of the embedded model")
            chat = chat.model_copy(update=forced)
        agent = create_agent(
            chat,
            tools=own,
            system_prompt=system_prompt or AGENT_SYSTEM_PROMPT,
            middleware=self.middleware(config),
            # every reply a call, the last one to the answer tool (tool_choice="any")
            response_format=ToolStrategy(ANSWER_TOOL_SCHEMA) if config.answer_tool else None,
        )
        history: list[Any] = []
        if demo is not None:
            demo.check_tools([t.name for t in own])
            history = tool_demo_messages(
                demo, answer_tool=ANSWER_TOOL if config.answer_tool else None
            )
        tracer = TaleTracer()
        started = time.perf_counter()
        messages: list[Any] = [*history, HumanMessage(question)]
        hit_limit = False
        answer: Any = None
        try:
            result = agent.invoke(
                {"messages": messages},
                {"callbacks": [tracer], "recursion_limit": self.recursion_limit},
            )
            messages = result["messages"]
            answer = result.get("structured_response")
        except GraphRecursionError:
            hit_limit = True
        seconds = time.perf_counter() - started
        replies = [m for m in messages[len(history) :] if isinstance(m, AIMessage)]
        # as the tool-call count: a call to the answer tool is the final answer, not traced
        asked = {c["id"]: c for m in replies for c in m.tool_calls if c["name"] != ANSWER_TOOL}
        tool_trace = [
            trace_call(asked[m.tool_call_id]["name"], asked[m.tool_call_id]["args"], m.text)
            for m in messages[len(history) :]
            if isinstance(m, ToolMessage) and m.tool_call_id in asked
        ]
        final = replies[-1] if replies and not hit_limit else None
        if config.answer_tool:
            final_text = answer_text(answer["answer"]) if isinstance(answer, dict) else ""
        else:
            final_text = final.text if final is not None and not final.tool_calls else ""
        return AgentRun(
            final_text=final_text,
            record=tracer.records[-1] if tracer.records else None,
            steps=len(replies),
            tool_calls=sum(1 for m in replies for c in m.tool_calls if c["name"] != ANSWER_TOOL),
            seconds=seconds,
            recursion_limit=hit_limit,
            tool_trace=tool_trace,
            step_log=[
                StepLog(
                    budget=((m.response_metadata or {}).get("tale") or {}).get("budget"),
                    output_tokens=m.usage_metadata["output_tokens"] if m.usage_metadata else 0,
                    # an answer-tool call is the final answer, not a tool step
                    tool_calls=sum(1 for c in m.tool_calls if c["name"] != ANSWER_TOOL),
                )
                for m in replies
            ],
        )


def agent_runner(model: str, **options: Any) -> LangChainAgentRunner:
    """The ``tale.agent_runners`` entry point."""
    return LangChainAgentRunner(model, **options)
