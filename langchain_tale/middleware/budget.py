"""``TaleBudgetMiddleware``: a per-step token budget and a total budget for an agent run."""

from __future__ import annotations

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
from langchain_core.runnables.config import ensure_config, patch_config
from langgraph.channels.untracked_value import UntrackedValue
from langgraph.runtime import Runtime
from typing_extensions import NotRequired

from langchain_tale._caps import with_cap
from langchain_tale._messages import inject_budget
from langchain_tale._planned import ESTIMATOR_TAG
from langchain_tale.model_adapter import LangChainModel, usage_from_message
from tale_shared.budget import TokenBudget
from tale_shared.caps import hard_cap
from tale_shared.estimators import BudgetEstimator, resolve_estimator
from tale_shared.pricing import PriceTable, default_price_table
from tale_shared.prompts import get_style, join_instruction
from tale_shared.run_budget import (
    ExitBehavior,
    RunBudget,
    RunSpending,
    TaleBudgetExceededError,
)
from tale_shared.usage import TokenUsage


class TaleBudgetState(AgentState[Any]):
    """Agent state with the run's spending, private to the middleware."""

    tale_run_tokens: NotRequired[Annotated[int, UntrackedValue, PrivateStateAttr]]
    tale_run_cost_usd: NotRequired[Annotated[float | None, UntrackedValue, PrivateStateAttr]]
    tale_run_steps: NotRequired[Annotated[int, UntrackedValue, PrivateStateAttr]]


class TaleBudgetMiddleware(AgentMiddleware[TaleBudgetState, Any, Any]):
    """Gives every agent step a token budget, and the whole run a total budget.

    Before each model call the estimator budgets the step from the task (the first human
    message), capped by the tokens left in the run; the budget sentence goes where the style
    places it — the system message for ``style="system"`` (the default), the last human
    message for the others — and, with ``cap_headroom``, into the provider's ``max_tokens``.
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
        estimator: BudgetEstimator | str | None = None,
        total_tokens: int | None = None,
        total_usd: float | None = None,
        exit_behavior: ExitBehavior = "end",
        style: str = "system",
        cap_headroom: float | None = None,
        price_table: PriceTable | None = None,
    ) -> None:
        super().__init__()
        self.run_budget = RunBudget(total_tokens, total_usd, exit_behavior)
        # "zero-shot" asks the agent's own model: bound per call to the request's model
        self._slot = resolve_estimator(estimator if estimator is not None else "heuristic")
        self.style = get_style(style)
        self.cap_headroom = cap_headroom
        self.prices = price_table or default_price_table()

    # -- accounting --------------------------------------------------------------------------
    @staticmethod
    def _spent(state: Any) -> RunSpending:
        return RunSpending(
            tokens=int(state.get("tale_run_tokens", 0)),
            cost_usd=state.get("tale_run_cost_usd", 0.0),
            steps=int(state.get("tale_run_steps", 0)),
        )

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
            usage = usage_from_message(last)
        else:  # a silent provider: what wrap_model_call counted, prompt and tool calls included
            usage = TokenUsage.model_validate(counted)
        cost = self.prices.cost(model, usage)
        self.run_budget.warn_if_unpriced(model, cost)
        spent = self._spent(state).add(usage.total_tokens, cost)
        # the step's estimator call (zero-shot) counts toward the run too
        estimator = (meta.get("tale") or {}).get("estimator_usage")
        if estimator:
            est_usage = TokenUsage.model_validate(estimator)
            est_model = meta["tale"].get("estimator_model") or model
            est_cost = self.prices.cost(est_model, est_usage)
            self.run_budget.warn_if_unpriced(est_model, est_cost)
            spent = spent.add(est_usage.total_tokens, est_cost, step=False)
        return {
            "tale_run_tokens": spent.tokens,
            "tale_run_cost_usd": spent.cost_usd,
            "tale_run_steps": spent.steps,
        }

    async def aafter_model(
        self, state: TaleBudgetState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        return self.after_model(state, runtime)

    # -- the per-step budget -----------------------------------------------------------------
    @staticmethod
    def _task(messages: Sequence[BaseMessage]) -> str:
        humans = [m for m in messages if m.type == "human" and m.text.strip()]
        return humans[0].text if humans else "continue the task"

    def _budgeted(self, request: ModelRequest[Any], budget: TokenBudget) -> ModelRequest[Any]:
        tokens = self.run_budget.step_cap(budget.tokens, self._spent(request.state or {}))
        overrides: dict[str, Any] = {}
        style = self.style
        # the agent's system prompt is kept apart from its messages: what the style puts in
        # the system message (a preamble, a "system" budget sentence) goes there
        system_parts = [style.preamble] if style.preamble else []
        if style.placement == "system":
            system_parts.append(style.instruction(tokens))
        else:  # the one placement rule: the last human message
            sentence_only = style.with_options(preamble="")
            overrides["messages"] = inject_budget(request.messages, sentence_only, tokens)
        if system_parts:
            system = request.system_message
            content = system.text if system else ""
            for part in system_parts:
                content = join_instruction(content, part)
            overrides["system_message"] = SystemMessage(content=content)
        if self.cap_headroom is not None:
            overrides["model_settings"] = with_cap(
                request.model_settings, request.model, hard_cap(tokens, self.cap_headroom)
            )
        return request.override(**overrides)

    @property
    def estimator(self) -> BudgetEstimator | None:
        """The estimator object (``None`` for ``"zero-shot"``, built per call)."""
        return self._slot.estimator

    def _estimator(self, request: ModelRequest[Any]) -> BudgetEstimator:
        def agent_model() -> LangChainModel:
            # the agent's own model, in the current run's config, tagged so that tracers
            # record the call as the estimator's
            config = patch_config(ensure_config(), run_name="tale_estimator")
            config["tags"] = [*config.get("tags", []), ESTIMATOR_TAG]
            return LangChainModel(request.model, config)

        estimator = self._slot.bind(agent_model)
        assert estimator is not None  # the slot always holds one: "heuristic" by default
        return estimator

    @staticmethod
    def _accounted(
        request: ModelRequest[Any], response: ModelResponse[Any], budget: TokenBudget
    ) -> Any:
        """The step's reply, carrying what ``after_model`` adds to the run: its budget's
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
        if budget.usage.total_tokens:
            tale["estimator_usage"] = budget.usage.model_dump()
            tale["estimator_model"] = budget.model
        if not reply.usage_metadata:
            prompt = [request.system_message] if request.system_message else []
            usage = usage_from_message(reply, [*prompt, *request.messages], request.model)
            tale["counted_usage"] = usage.model_dump()
        if not tale:
            return response
        meta = reply.response_metadata or {}
        result[at] = reply.model_copy(
            update={"response_metadata": {**meta, "tale": {**meta.get("tale", {}), **tale}}}
        )
        return replace(response, result=result)

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        budget = self._estimator(request).estimate(self._task(request.messages))
        budgeted = self._budgeted(request, budget)
        return self._accounted(budgeted, handler(budgeted), budget)  # type: ignore[no-any-return]

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        budget = await self._estimator(request).aestimate(self._task(request.messages))
        budgeted = self._budgeted(request, budget)
        response = await handler(budgeted)
        return self._accounted(budgeted, response, budget)  # type: ignore[no-any-return]


__all__ = ["TaleBudgetExceededError", "TaleBudgetMiddleware", "TaleBudgetState"]
