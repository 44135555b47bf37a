"""``TaleBudgetMiddleware``: a per-step token budget and a total budget for an agent run."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Annotated, Any

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ModelRequest,
    ModelResponse,
    PrivateStateAttr,
    hook_config,
)
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.messages.ai import add_usage
from langchain_core.runnables.config import ensure_config, patch_config
from langgraph.channels.untracked_value import UntrackedValue
from langgraph.runtime import Runtime
from typing_extensions import NotRequired

from langchain_tale._caps import with_cap
from langchain_tale._messages import method_messages, to_langchain
from langchain_tale._planned import ESTIMATOR_TAG
from langchain_tale._thinking import is_reasoning_model, settings_for, with_thinking
from langchain_tale.model_adapter import LangChainModel, model_name_of, usage_from_reply
from tale_shared.budget import TokenBudget
from tale_shared.caps import hard_cap
from tale_shared.estimators import BudgetEstimator
from tale_shared.methods import ANSWER_TOKENS, follow_up
from tale_shared.models import finish_reason_of
from tale_shared.pricing import PriceTable, default_price_table
from tale_shared.prompts import PromptStyle, join_instruction
from tale_shared.resolve import ResolvedMethod, resolve_method
from tale_shared.run_budget import (
    ExitBehavior,
    RunBudget,
    RunSpending,
    TaleBudgetExceededError,
)
from tale_shared.usage import TokenUsage


class TaleBudgetState(AgentState[Any]):
    """Agent state with the run's spending, private to the middleware."""

    tale_spent: NotRequired[Annotated[RunSpending, UntrackedValue, PrivateStateAttr]]
    """What the run has spent (as ``TaleLLM.spent``)."""


class TaleBudgetMiddleware(AgentMiddleware[TaleBudgetState, Any, Any]):
    """Gives every agent step a token budget, and the whole run a total budget.

    ``method`` is a :mod:`method spec <tale_shared.methods>`; by default the model's profile
    method, the same TALE ``TaleRunnable`` runs on it (:func:`tale_shared.resolve.resolve_method`,
    resolved per model); ``estimator``, ``style`` and ``cap_headroom`` replace the method's
    parts. Before each model call the estimator budgets the step from the task (the first
    human message), capped by the tokens left in the run; the budget sentence goes where the
    style places it (the agent's system prompt for a ``"system"`` style or a preamble, the
    last human message otherwise), the method's exemplars go after the system prompt, and the cap
    (``+force``'s headroom, or ``cap_headroom``) into the provider's ``max_tokens``. With
    ``+force``, a final-answer step the cap cut without an answer gets one follow-up call for
    it, merged into the step's reply; a step that calls a tool is never forced. With
    ``show_remaining`` (and ``total_tokens``) every step's system message also states the
    tokens left in the run (the Budget Tracker of Liu et al. 2025).
    After each call the model's reported usage (input + output tokens, and its USD cost when
    the price is known) is added to the run's private state; a provider that reports no usage
    has the call's whole prompt and reply (tool calls included) counted with the model's own
    counter instead, marked ``counted``. When ``total_tokens`` or
    ``total_usd`` is spent, ``exit_behavior`` decides: ``"end"`` finishes with a message
    saying so, ``"error"`` raises :class:`TaleBudgetExceededError`, ``"warn"`` warns and
    goes on.

    Example:
        .. code-block:: python

            from langchain.agents import create_agent
            from langchain_tale.middleware import TaleBudgetMiddleware

            agent = create_agent(
                model, tools=[get_weather],
                middleware=[TaleBudgetMiddleware(total_tokens=4000, exit_behavior="end")],
            )
    """

    state_schema = TaleBudgetState

    def __init__(
        self,
        *,
        method: str | None = None,
        estimator: BudgetEstimator | str | None = None,
        total_tokens: int | None = None,
        total_usd: float | None = None,
        exit_behavior: ExitBehavior = "end",
        style: str | None = None,
        cap_headroom: float | None = None,
        show_remaining: bool = False,
        price_table: PriceTable | None = None,
    ) -> None:
        """Set up the step and run budgets; nothing is called until the agent runs.

        Args:
            method: a method spec (``tale methods``); by default each model's profile method
                for agent steps, with ``+think`` for a reasoning model.
            estimator: a core estimator or a spec (``fixed:200``, ``heuristic``,
                ``regression``, ``zero-shot``), in place of the method's.
            total_tokens: the run's token budget: every call's input and output, the
                estimator's included.
            total_usd: the run's budget in USD (the model needs a known price).
            exit_behavior: when the run's budget is spent: ``"end"`` finishes with a message,
                ``"error"`` raises :class:`TaleBudgetExceededError`, ``"warn"`` goes on.
            style: the budget sentence's wording (``tale styles``), in place of the method's.
            cap_headroom: also cap each step at ``ceil(budget * headroom)`` tokens.
            show_remaining: state the tokens left in the run in every step's system message.
            price_table: the prices ``total_usd`` and costs are computed with.

        Raises:
            ValueError: a bad method, estimator or style spec, a ``cap_headroom`` that is not
                a finite number of at least 1, a ``total_usd`` that cannot be enforced,
                ``show_remaining`` without ``total_tokens``, or ``+think`` on a model with no
                thinking knob (at its first step).
        """
        super().__init__()
        self.run_budget = RunBudget(total_tokens, total_usd, exit_behavior)
        if show_remaining and total_tokens is None:
            raise ValueError("show_remaining states what is left of total_tokens: give one")
        self.show_remaining = show_remaining
        self.method = method
        self._options: dict[str, Any] = {
            "estimator": estimator,
            "style": style,
            "cap_headroom": cap_headroom,
        }
        # a bad spec fails here, not at the agent's first step
        self._default_step = resolve_method(None, method, agent=True, **self._options)
        self._steps: dict[str | None, ResolvedMethod] = {}
        self._steps_lock = threading.Lock()
        self.prices = price_table or default_price_table()

    def step_method(self, model: Any) -> ResolvedMethod:
        """The parts of the method a step on ``model`` gets (``method``, else the model's
        profile method for agent steps; explicit options replace its parts)."""
        name = model_name_of(model)
        with self._steps_lock:
            if name not in self._steps:
                # a reasoning model named no method: the step budget to its thinking knob
                reasoning = self.method is None and is_reasoning_model(model)
                step = resolve_method(
                    name, self.method, agent=True, reasoning=reasoning, **self._options
                )
                if step.method.think:
                    settings_for(model, 1)  # a model with no knob fails at its first step
                self._steps[name] = step
            return self._steps[name]

    # -- accounting --------------------------------------------------------------------------
    @staticmethod
    def _spent(state: Any) -> RunSpending:
        spent = state.get("tale_spent")
        return spent if isinstance(spent, RunSpending) else RunSpending()

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: TaleBudgetState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        message = self.run_budget.check(self._spent(state))
        if message is None:
            return None
        return {"jump_to": "end", "messages": [AIMessage(content=message)]}

    @hook_config(can_jump_to=["end"])
    async def abefore_model(
        self, state: TaleBudgetState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        return self.before_model(state, runtime)

    def after_model(self, state: TaleBudgetState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        messages = state.get("messages", [])
        last = messages[-1] if messages else None
        if not isinstance(last, AIMessage):
            return None
        meta = last.response_metadata or {}
        model = meta.get("model_name") or meta.get("model")
        counted = (meta.get("tale") or {}).get("counted_usage")
        if last.usage_metadata or not counted:
            usage = usage_from_reply(last)
        else:  # a silent provider: what wrap_model_call counted, prompt and tool calls included
            usage = TokenUsage.model_validate(counted)
        cost = self.run_budget.price(self.prices, model, usage)
        spent = self._spent(state).add(usage.total_tokens, cost)
        # the step's estimator call (zero-shot) counts toward the run too
        estimator = (meta.get("tale") or {}).get("estimator_usage")
        if estimator:
            est_usage = TokenUsage.model_validate(estimator)
            est_model = meta["tale"].get("estimator_model") or model
            est_cost = self.run_budget.price(self.prices, est_model, est_usage)
            spent = spent.add(est_usage.total_tokens, est_cost, step=False)
        return {"tale_spent": spent}

    async def aafter_model(
        self, state: TaleBudgetState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        return self.after_model(state, runtime)

    # -- the per-step budget -----------------------------------------------------------------
    @staticmethod
    def _task(messages: Sequence[BaseMessage]) -> str:
        humans = [m for m in messages if m.type == "human" and m.text.strip()]
        return humans[0].text if humans else "continue the task"

    def _step_tokens(self, request: ModelRequest[Any], budget: TokenBudget) -> int:
        """The step's budget: the estimate, no more than the tokens left in the run."""
        return self.run_budget.step_cap(budget.tokens, self._spent(request.state or {}))

    def _step_request(
        self, request: ModelRequest[Any], tokens: int | None, step: ResolvedMethod
    ) -> ModelRequest[Any]:
        """The step's request as the method asks it: the budget sentence and the hard cap
        (``tokens`` is ``None`` for a method without a budget: neither) and the exemplars."""
        overrides: dict[str, Any] = {}
        # the agent's system prompt is kept apart from its messages: the one rule runs on
        # both together, and what it puts in the system message goes back there
        system = [request.system_message] if request.system_message else []
        prompt = method_messages(
            [*system, *request.messages], step.style, tokens, step.exemplar_messages(tokens)
        )
        if prompt and isinstance(prompt[0], SystemMessage):
            if not system or prompt[0] is not system[0]:
                overrides["system_message"] = prompt[0]
            prompt = prompt[1:]
        if prompt != list(request.messages):
            overrides["messages"] = prompt
        cap = hard_cap(tokens, step.cap_headroom) if tokens and step.cap_headroom else None
        if tokens is not None and step.method.think:  # the step's budget to the thinking knob
            settings, _, model = with_thinking(
                dict(request.model_settings), request.model, tokens, cap
            )
            overrides["model_settings"] = settings
            if model is not request.model:
                overrides["model"] = model
        elif cap is not None:
            overrides["model_settings"] = with_cap(request.model_settings, request.model, cap)
        return request.override(**overrides) if overrides else request

    # -- budget forcing on the final-answer step ---------------------------------------------
    @staticmethod
    def _last_reply(response: ModelResponse[Any]) -> tuple[int, AIMessage] | None:
        result = list(response.result or [])
        for i in range(len(result) - 1, -1, -1):
            if isinstance(result[i], AIMessage):
                return i, result[i]  # type: ignore[return-value]
        return None

    def _forcing_request(
        self, request: ModelRequest[Any], response: ModelResponse[Any], step: ResolvedMethod
    ) -> ModelRequest[Any] | None:
        """The follow-up call that asks for the final answer, when the step needs forcing
        (:meth:`ResolvedMethod.needs_forcing`); ``None`` otherwise. It offers no tools."""
        found = self._last_reply(response)
        if found is None:
            return None
        reply = found[1]
        cut = finish_reason_of(reply.response_metadata, reply.additional_kwargs) == "length"
        if not step.needs_forcing(reply.text, cut=cut, calls_tools=bool(reply.tool_calls)):
            return None
        turns = to_langchain(follow_up([], reply.text))
        return request.override(
            messages=[*request.messages, *turns],  # type: ignore[list-item]
            tools=[],
            model_settings=with_cap(request.model_settings, request.model, ANSWER_TOKENS),
        )

    def _with_forced(
        self,
        request: ModelRequest[Any],
        response: ModelResponse[Any],
        forcing: ModelRequest[Any],
        forced: ModelResponse[Any],
    ) -> ModelResponse[Any]:
        """The step's reply with the forced answer appended, carrying both calls' usage: the
        provider's, added, or — when either call came back without usage — each call counted
        on its own prompt (the forcing call's prompt is the step's prompt, the reply and the
        follow-up turn), in ``response_metadata["tale"]["counted_usage"]``."""
        found, answer = self._last_reply(response), self._last_reply(forced)
        if found is None or answer is None:
            return response
        at, reply = found
        usage = reply.usage_metadata
        meta = reply.response_metadata or {}
        tale = {**meta.get("tale", {}), "forced": True}
        if usage and answer[1].usage_metadata:
            usage = add_usage(usage, answer[1].usage_metadata)
        else:
            counted = usage_from_reply(
                reply, _prompt_of(request), request.model
            ) + usage_from_reply(answer[1], _prompt_of(forcing), request.model)
            tale["counted_usage"] = counted.model_dump()
            usage = None
        merged = reply.model_copy(
            update={
                "content": f"{reply.text}\n\n{answer[1].text}",
                "usage_metadata": usage,
                "response_metadata": {**meta, "tale": tale},
            }
        )
        result = list(response.result)
        result[at] = merged
        return replace(response, result=result)

    @property
    def estimator(self) -> BudgetEstimator | None:
        """The estimator object of a model with no profile (``None`` for ``"zero-shot"``,
        built per call, and for a method without a budget)."""
        return self._default_step.slot.estimator

    @property
    def style(self) -> PromptStyle:
        """The prompt style of a model with no profile (each model's own is in
        :meth:`step_method`)."""
        return self._default_step.style

    def _estimator(self, request: ModelRequest[Any], step: ResolvedMethod) -> BudgetEstimator:
        def agent_model() -> LangChainModel:
            # the agent's own model, in the current run's config, tagged so that tracers
            # record the call as the estimator's
            config = patch_config(ensure_config(), run_name="tale_estimator")
            config["tags"] = [*config.get("tags", []), ESTIMATOR_TAG]
            return LangChainModel(request.model, config)

        estimator = step.slot.bind(agent_model)
        assert estimator is not None  # only budgeted steps ask for one
        return estimator

    @staticmethod
    def _accounted(
        request: ModelRequest[Any],
        response: ModelResponse[Any],
        budget: TokenBudget | None,
        tokens: int | None = None,
    ) -> Any:
        """The step's reply, carrying its budget (``response_metadata["tale"]["budget"]``,
        the tokens it was given) and what ``after_model`` adds to the run: its budget's
        estimator usage and, when the provider reported no usage, the call's tokens counted
        with the model's own counter — the whole prompt (system message, history, tool
        results) and the reply with its tool calls — marked ``source="counted"``."""
        result = list(response.result or [])
        at = next(
            (i for i in range(len(result) - 1, -1, -1) if isinstance(result[i], AIMessage)), None
        )
        if at is None:
            return response
        reply = result[at]
        assert isinstance(reply, AIMessage)
        tale: dict[str, Any] = {}
        if tokens is not None:
            tale["budget"] = tokens
        if budget is not None and budget.usage.total_tokens:
            tale["estimator_usage"] = budget.usage.model_dump()
            tale["estimator_model"] = budget.model
        counted_already = "counted_usage" in (reply.response_metadata or {}).get("tale", {})
        if not reply.usage_metadata and not counted_already:
            usage = usage_from_reply(reply, _prompt_of(request), request.model)
            tale["counted_usage"] = usage.model_dump()
        if not tale:
            return response
        meta = reply.response_metadata or {}
        result[at] = reply.model_copy(
            update={"response_metadata": {**meta, "tale": {**meta.get("tale", {}), **tale}}}
        )
        return replace(response, result=result)

    def _tracked(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        """With ``show_remaining``: the tokens left in the run, in the system message (the
        Budget Tracker, :meth:`RunBudget.tracker_sentence`)."""
        if not self.show_remaining:
            return request
        line = self.run_budget.tracker_sentence(self._spent(request.state or {}))
        if line is None:
            return request
        system = request.system_message
        content = join_instruction(system.text if system else "", line)
        return request.override(system_message=SystemMessage(content=content))

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        request = self._tracked(request)
        step = self.step_method(request.model)
        if not step.has_budget:  # a method without a budget: its exemplars and the run's totals
            request = self._step_request(request, None, step)
            return self._accounted(request, handler(request), None)  # type: ignore[no-any-return]
        budget = self._estimator(request, step).estimate(self._task(request.messages))
        tokens = self._step_tokens(request, budget)
        budgeted = self._step_request(request, tokens, step)
        response = handler(budgeted)
        forcing = self._forcing_request(budgeted, response, step)
        if forcing is not None:
            response = self._with_forced(budgeted, response, forcing, handler(forcing))
        return self._accounted(budgeted, response, budget, tokens)  # type: ignore[no-any-return]

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        request = self._tracked(request)
        step = self.step_method(request.model)
        if not step.has_budget:
            request = self._step_request(request, None, step)
            return self._accounted(request, await handler(request), None)  # type: ignore[no-any-return]
        budget = await self._estimator(request, step).aestimate(self._task(request.messages))
        tokens = self._step_tokens(request, budget)
        budgeted = self._step_request(request, tokens, step)
        response = await handler(budgeted)
        forcing = self._forcing_request(budgeted, response, step)
        if forcing is not None:
            response = self._with_forced(budgeted, response, forcing, await handler(forcing))
        return self._accounted(budgeted, response, budget, tokens)  # type: ignore[no-any-return]


def _prompt_of(request: ModelRequest[Any]) -> list[BaseMessage]:
    """Everything a model request sends: its system message and its messages."""
    system = [request.system_message] if request.system_message else []
    return [*system, *request.messages]


__all__ = ["TaleBudgetExceededError", "TaleBudgetMiddleware", "TaleBudgetState"]
