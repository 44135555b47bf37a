"""``TaleLLM``: per-step budgets and a total budget for LlamaIndex agents.

LlamaIndex agents (``FunctionAgent``, ``ReActAgent``, ``AgentWorkflow``) forward no per-call
options to their LLM, so the budget travels inside the LLM: wrap any LLM in ``TaleLLM`` and
hand that to the agent.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    TextBlock,
)
from llama_index.core.llms import LLM
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    field_serializer,
    field_validator,
)

from llama_index_tale._thinking import is_reasoning_model, settings_for, with_thinking
from llama_index_tale.compression import compressed_history
from llama_index_tale.llm_adapter import (
    LlamaIndexModel,
    call_cap,
    model_name_of,
    usage_from_reply,
    with_max_tokens,
)
from tale_shared.budget import TokenBudget
from tale_shared.caps import check_cap_headroom, hard_cap
from tale_shared.compression import ContextCompressor
from tale_shared.estimators import BudgetEstimator, resolve_estimator
from tale_shared.methods import ANSWER_TOKENS, follow_up
from tale_shared.models import finish_reason_of
from tale_shared.pricing import PriceTable, default_price_table
from tale_shared.prompts import (
    Message,
    PromptStyle,
    conversation_prompt,
    join_instruction,
    place_sentence,
)
from tale_shared.resolve import ResolvedMethod, resolve_method
from tale_shared.run_budget import ExitBehavior, RunBudget, RunLedger, RunSpending, StepRecord
from tale_shared.usage import TokenUsage

if TYPE_CHECKING:
    from llama_index.core.tools import BaseTool


T = TypeVar("T")


def _single(item: T) -> Generator[T, None, None]:
    yield item


def _chat_message(message: Message) -> ChatMessage:
    return ChatMessage(role=MessageRole(message.role), content=message.content)


def _with_sentence(message: ChatMessage, sentence: str) -> ChatMessage:
    """The message with the sentence added; its other blocks and kwargs are kept."""
    if len(message.blocks) <= 1 and all(isinstance(b, TextBlock) for b in message.blocks):
        blocks: list[Any] = [TextBlock(text=join_instruction(message.content or "", sentence))]
    else:  # images, documents...: add a text block
        blocks = [*message.blocks, TextBlock(text=sentence)]
    return message.model_copy(update={"blocks": blocks})


def _user(prompt: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.USER, content=prompt)


def _as_completion(response: ChatResponse) -> CompletionResponse:
    """A chat step's reply as a completion (text, delta, raw and the forcing mark)."""
    return CompletionResponse(
        text=response.message.content or "",
        delta=response.delta,
        raw=response.raw,
        additional_kwargs={**response.additional_kwargs, **response.message.additional_kwargs},
    )


class TaleLLM(FunctionCallingLLM):
    """Wraps any LLM: each call gets a step budget, and the run a total.

    ``method`` is a :mod:`method spec <tale_shared.methods>`; by default the wrapped model's
    profile method, the same TALE ``TaleRunnable`` and ``TaleBudgetMiddleware`` run on it
    (:func:`tale_shared.resolve.resolve_method`); ``estimator``, ``style`` and ``cap_headroom``
    replace the method's parts. Before each call the estimator budgets the step from the
    task (the first user message), capped by the tokens left; the budget sentence goes where
    the style places it, the method's exemplars after the system message, and with ``+force`` a
    final-answer step the cap cut without an answer gets one follow-up call for it (a step
    that calls a tool never does). With ``show_remaining`` (and ``total_tokens``) every step's
    system message also states the tokens left in the run (the Budget Tracker of Liu et al.
    2025). After each call the provider-reported usage is added to
    the run's totals. When ``total_tokens`` or ``total_usd`` is spent, ``exit_behavior``
    decides: ``"end"`` answers with a message saying so instead of calling the model (the
    agent then finishes, since that answer calls no tool), ``"error"`` raises
    :class:`TaleBudgetExceededError`, ``"warn"`` warns and calls the model anyway.
    Tool calling is delegated to the wrapped LLM. Call :meth:`reset` between runs.

    Example:
        .. code-block:: python

            from llama_index.core.agent.workflow import FunctionAgent
            from llama_index_tale import TaleLLM

            llm = TaleLLM(llm=OpenAI(model="gpt-4o-mini"), total_tokens=5000)
            agent = FunctionAgent(tools=[multiply], llm=llm)
            await agent.run("What is 12.3 * 4.56?")
            llm.spent.tokens
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    llm: SerializeAsAny[LLM] = Field(description="the LLM each step calls")
    method: str | None = Field(
        default=None,
        description="a method spec; the wrapped model's profile method when not given",
    )
    estimator: BudgetEstimator | str | None = Field(
        default=None,
        description="a core BudgetEstimator or a spec string (the method's when not given)",
    )
    total_tokens: int | None = Field(
        default=None, ge=1, description="the run's token budget (all calls, estimator's too)"
    )
    total_usd: float | None = Field(
        default=None, gt=0, description="the run's budget in USD (needs a priced model)"
    )
    exit_behavior: ExitBehavior = Field(
        default="end",
        description="when the run's budget is spent: end (answer so), error (raise), warn",
    )
    style: str | None = Field(
        default=None, description="the budget sentence's wording (`tale styles`); the method's"
    )
    cap_headroom: float | None = Field(
        default=None,
        ge=1.0,
        description="also cap each step at ceil(budget * headroom) tokens (finite, at least 1)",
    )

    @field_validator("cap_headroom", mode="before")
    @classmethod
    def _finite_headroom(cls, value: Any) -> Any:
        return check_cap_headroom(value) if isinstance(value, (int, float)) else value

    show_remaining: bool = Field(
        default=False, description="state the tokens left in the run in each step's system"
    )
    context_ratio: float | None = Field(
        default=None, gt=0, le=1, description="compress the re-sent history to this ratio"
    )
    price_table: PriceTable | None = Field(
        default=None, exclude=True, description="prices for total_usd (the default table)"
    )

    _default_run: RunLedger = PrivateAttr(default_factory=RunLedger)
    _current_run: ContextVar[RunLedger | None] = PrivateAttr()
    _run_budget: RunBudget = PrivateAttr()
    _step: ResolvedMethod = PrivateAttr()
    _compressor: ContextCompressor | None = PrivateAttr(default=None)

    @field_serializer("estimator")
    def _estimator_spec(self, estimator: Any) -> str | None:
        """Serialised as its spec string (an estimator object by its spec, else its name)."""
        if estimator is None or isinstance(estimator, str):
            return estimator
        return resolve_estimator(estimator).spec

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # the method's parts, as every entry point resolves them ("zero-shot" asks the
        # wrapped LLM, bound per step)
        if self.show_remaining and self.total_tokens is None:
            raise ValueError("show_remaining states what is left of total_tokens: give one")
        self._step = resolve_method(
            model_name_of(self.llm),
            self.method,
            estimator=self.estimator,
            style=self.style,
            cap_headroom=self.cap_headroom,
            # a reasoning model named no method: the step budget to its thinking knob
            reasoning=self.method is None and is_reasoning_model(self.llm),
            agent=True,
        )
        if self._step.method.think:
            settings_for(self.llm, 1)  # a model with no knob fails here, not at a step
        if self.context_ratio is not None:
            self._compressor = ContextCompressor(self.context_ratio)
        self._current_run = ContextVar(f"tale_llm_run_{id(self)}", default=None)
        self._run_budget = RunBudget(self.total_tokens, self.total_usd, self.exit_behavior)

    @classmethod
    def class_name(cls) -> str:
        return "TaleLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return self.llm.metadata

    # -- accounting: spending belongs to a run ----------------------------------------------
    @contextmanager
    def run(self) -> Iterator[RunLedger]:
        """A run of its own: the calls made inside the block (and in the tasks started in it,
        such as an agent's workflow) spend from a fresh ledger, so concurrent runs never share
        one budget. Outside any block, calls share the instance's ledger (:meth:`reset`).

        Example:
            .. code-block:: python

                with llm.run() as ledger:
                    await agent.run("What is 12.3 * 4.56?")
                ledger.spent.tokens
        """
        ledger = RunLedger()
        token = self._current_run.set(ledger)
        try:
            yield ledger
        finally:
            self._current_run.reset(token)

    @property
    def current_run(self) -> RunLedger:
        """The ledger calls made here spend from: the enclosing :meth:`run`'s, else the
        instance's."""
        return self._current_run.get() or self._default_run

    @property
    def spent(self) -> RunSpending:
        """What the current run has spent: ``tokens``, ``cost_usd`` (``None`` once any call's
        price was unknown) and ``steps`` — as ``TaleBudgetMiddleware`` keeps in the agent's
        state (``tale_spent``)."""
        return self.current_run.spent

    def reset(self) -> None:
        """Start a new run on the current ledger: forget what was spent."""
        self.current_run.reset()

    def _prices(self) -> PriceTable:
        return (
            self.price_table if isinstance(self.price_table, PriceTable) else default_price_table()
        )

    def _add(
        self,
        model: str | None,
        usage: TokenUsage,
        *,
        step: bool = True,
        ledger: RunLedger | None = None,
    ) -> None:
        cost = self._run_budget.price(self._prices(), model, usage)
        (ledger or self.current_run).add(usage.total_tokens, cost, step=step)

    def _count(
        self,
        response: Any,
        messages: Sequence[ChatMessage] | str,
        ledger: RunLedger | None = None,
    ) -> None:
        """Add a call's usage to ``ledger`` (a stream passes the one its call started in)."""
        usage = usage_from_reply(response, messages)
        self._add(model_name_of(self.llm, response), usage, ledger=ledger)

    def _stop_message(self) -> str | None:
        """``None`` to go on; else the message to answer with instead of calling the model."""
        return self._run_budget.check(self.current_run.spent)

    # -- the step budget ---------------------------------------------------------------------
    @property
    def prompt_style(self) -> PromptStyle:
        return self._step.style

    @property
    def step(self) -> ResolvedMethod:
        """The method's parts each step gets (``method``, else the wrapped model's profile
        method for agent steps; explicit options replace its parts)."""
        return self._step

    def _step_cap(self, budget: TokenBudget) -> int:
        if budget.usage.total_tokens:  # an estimator that calls a model: part of the run
            self._add(budget.model, budget.usage, step=False)
        return self._run_budget.step_cap(budget.tokens, self.current_run.spent)

    def _estimator(self) -> BudgetEstimator | None:
        return self._step.slot.bind(lambda: LlamaIndexModel(self.llm, role="estimator"))

    def _step_budget(self, task: str) -> int | None:
        """The step's budget (``None``: a method without one)."""
        estimator = self._estimator()
        return None if estimator is None else self._step_cap(estimator.estimate(task))

    async def _astep_budget(self, task: str) -> int | None:
        """Async :meth:`_step_budget`: a model-calling estimator is awaited, never blocking."""
        estimator = self._estimator()
        return None if estimator is None else self._step_cap(await estimator.aestimate(task))

    @staticmethod
    def _task(messages: Sequence[ChatMessage]) -> str:
        users = [m.content for m in messages if m.role == MessageRole.USER and m.content]
        return users[0] if users else "continue the task"

    def _step_cap_tokens(self, tokens: int | None) -> int | None:
        headroom = self._step.cap_headroom
        return None if headroom is None or tokens is None else hard_cap(tokens, headroom)

    def _step_llm(self, tokens: int | None) -> tuple[LLM, int | None]:
        """The LLM a step of ``tokens`` calls and its cap: with ``+think`` (a reasoning
        model), a copy with the provider's thinking knob set from the budget and the answer's
        room above it; with ``cap_headroom``, a copy capped at ``ceil(tokens * headroom)``
        (LlamaIndex LLMs fix ``max_tokens`` at construction)."""
        cap = self._step_cap_tokens(tokens)
        if tokens is not None and self._step.method.think:
            settings = settings_for(self.llm, tokens, cap)
            return with_thinking(self.llm, settings), settings.max_output_tokens
        return with_max_tokens(self.llm, cap), cap

    def _call(self, tokens: int | None, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` of the step's LLM (:meth:`_step_llm`), its cap announced to the
        tracer."""
        llm, cap = self._step_llm(tokens)
        with call_cap(cap):
            return getattr(llm, method)(*args, **kwargs)

    async def _acall(self, tokens: int | None, method: str, *args: Any, **kwargs: Any) -> Any:
        llm, cap = self._step_llm(tokens)
        with call_cap(cap):
            return await getattr(llm, method)(*args, **kwargs)

    def _step_prompt(
        self, messages: Sequence[ChatMessage], tokens: int | None
    ) -> list[ChatMessage]:
        if self._compressor is not None:  # the history the step re-sends, compressed
            messages = compressed_history(messages, self._compressor)
        if self.show_remaining:  # the Budget Tracker: what is left, in the system message
            line = self._run_budget.tracker_sentence(self.current_run.spent)
            if line is not None:
                messages = place_sentence(
                    messages,
                    "system",
                    line,
                    role_of=lambda m: str(m.role.value),
                    merge=_with_sentence,
                    new=lambda role, text: ChatMessage(role=MessageRole(role), content=text),
                )
        shots = [_chat_message(m) for m in self._step.exemplar_messages(tokens)]
        return conversation_prompt(
            self._step.style,
            messages,
            tokens,
            shots,
            role_of=lambda m: str(m.role.value),
            merge=_with_sentence,
            new=lambda role, sentence: ChatMessage(role=MessageRole(role), content=sentence),
        )

    def _log_step(
        self,
        tokens: int | None,
        response: ChatResponse,
        prompt: Sequence[ChatMessage],
        ledger: RunLedger | None = None,
    ) -> None:
        """Note the step on the run's ledger: its budget, output tokens and tool calls."""
        usage = usage_from_reply(response, prompt)
        calls = 1 if self._calls_tools(response) else 0
        (ledger or self.current_run).record_step(StepRecord(tokens, usage.output_tokens, calls))

    # -- budget forcing on the final-answer step ---------------------------------------------
    def _calls_tools(self, response: ChatResponse) -> bool:
        if response.message.additional_kwargs.get("tool_calls"):
            return True
        if isinstance(self.llm, FunctionCallingLLM):
            try:
                return bool(
                    self.llm.get_tool_calls_from_response(response, error_on_no_tool_call=False)
                )
            except Exception:  # a reply the wrapped LLM cannot read as tool calls
                return False
        return False

    def _forcing_prompt(
        self, prompt: Sequence[ChatMessage], response: ChatResponse
    ) -> list[ChatMessage] | None:
        """The follow-up call's messages when this final-answer step needs its answer forced
        (:meth:`~tale_shared.resolve.ResolvedMethod.needs_forcing`), else ``None``."""
        if not self._step.forces_answer:
            return None
        text = response.message.content or ""
        reason = finish_reason_of(
            response.raw, response.additional_kwargs, response.message.additional_kwargs
        )
        if not self._step.needs_forcing(
            text, cut=reason == "length", calls_tools=self._calls_tools(response)
        ):
            return None
        return [*prompt, *(_chat_message(m) for m in follow_up([], text))]

    def _forced(self, response: ChatResponse, answer: ChatResponse) -> ChatResponse:
        """The step's reply with the forced answer appended."""
        extra = "\n\n" + (answer.message.content or "")
        text = (response.message.content or "") + extra
        kwargs = {**response.message.additional_kwargs, "tale": {"forced": True}}
        message = ChatMessage(role=MessageRole.ASSISTANT, content=text, additional_kwargs=kwargs)
        return ChatResponse(message=message, delta=extra, raw=answer.raw)

    def _force(self, prompt: list[ChatMessage], response: ChatResponse) -> ChatResponse:
        forcing = self._forcing_prompt(prompt, response)
        if forcing is None:
            return response
        with call_cap(ANSWER_TOKENS):
            answer = with_max_tokens(self.llm, ANSWER_TOKENS).chat(forcing)
        self._count(answer, forcing)
        return self._forced(response, answer)

    async def _aforce(self, prompt: list[ChatMessage], response: ChatResponse) -> ChatResponse:
        forcing = self._forcing_prompt(prompt, response)
        if forcing is None:
            return response
        with call_cap(ANSWER_TOKENS):
            answer = await with_max_tokens(self.llm, ANSWER_TOKENS).achat(forcing)
        self._count(answer, forcing)
        return self._forced(response, answer)

    @staticmethod
    def _stopped(message: str) -> ChatResponse:
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=message), delta=message
        )

    # -- chat --------------------------------------------------------------------------------
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        if (stop := self._stop_message()) is not None:
            return self._stopped(stop)
        tokens = self._step_budget(self._task(messages))
        prompt = self._step_prompt(messages, tokens)
        response: ChatResponse = self._call(tokens, "chat", prompt, **kwargs)
        self._count(response, prompt)
        self._log_step(tokens, response, prompt)
        return self._force(prompt, response)

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        if (stop := self._stop_message()) is not None:
            return self._stopped(stop)
        tokens = await self._astep_budget(self._task(messages))
        prompt = self._step_prompt(messages, tokens)
        response: ChatResponse = await self._acall(tokens, "achat", prompt, **kwargs)
        self._count(response, prompt)
        self._log_step(tokens, response, prompt)
        return await self._aforce(prompt, response)

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        if (stop := self._stop_message()) is not None:
            return _single(self._stopped(stop))
        tokens = self._step_budget(self._task(messages))
        prompt = self._step_prompt(messages, tokens)
        inner = self._call(tokens, "stream_chat", prompt, **kwargs)
        ledger = self.current_run

        def gen() -> Generator[ChatResponse, None, None]:
            last = None
            for last in inner:
                yield last
            if last is not None:
                self._count(last, prompt, ledger)
                self._log_step(tokens, last, prompt, ledger)
                forced = self._force(prompt, last)
                if forced is not last:
                    yield forced

        return gen()

    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        stop = self._stop_message()
        prompt: list[ChatMessage] = []
        inner = None
        tokens: int | None = None
        if stop is None:
            tokens = await self._astep_budget(self._task(messages))
            prompt = self._step_prompt(messages, tokens)
            inner = await self._acall(tokens, "astream_chat", prompt, **kwargs)
        ledger = self.current_run

        async def gen() -> AsyncGenerator[ChatResponse, None]:
            if inner is None:
                yield self._stopped(stop or "")
                return
            last = None
            async for last in inner:
                yield last
            if last is not None:
                self._count(last, prompt, ledger)
                self._log_step(tokens, last, prompt, ledger)
                forced = await self._aforce(prompt, last)
                if forced is not last:
                    yield forced

        return gen()

    # -- completion: a one-message chat, so that it gets everything a chat step does ----------
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """The prompt as a one-message chat step (:meth:`chat`): the same budget placement,
        exemplars, forcing, step log and run totals as every other entry point."""
        return _as_completion(self.chat([_user(prompt)], **kwargs))

    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return _as_completion(await self.achat([_user(prompt)], **kwargs))

    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        chunks = self.stream_chat([_user(prompt)], **kwargs)
        return (_as_completion(chunk) for chunk in chunks)

    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        chunks = await self.astream_chat([_user(prompt)], **kwargs)

        async def gen() -> AsyncGenerator[CompletionResponse, None]:
            async for chunk in chunks:
                yield _as_completion(chunk)

        return gen()

    # -- tool calling: delegated to the wrapped LLM ------------------------------------------
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        if not isinstance(self.llm, FunctionCallingLLM):
            raise TypeError(f"{type(self.llm).__name__} does not support tool calling")
        return self.llm._prepare_chat_with_tools(
            tools,
            user_msg=user_msg,
            chat_history=chat_history,
            verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls,
            tool_required=tool_required,
            **kwargs,
        )

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        if not isinstance(self.llm, FunctionCallingLLM):
            raise TypeError(f"{type(self.llm).__name__} does not support tool calling")
        return self.llm.get_tool_calls_from_response(
            response, error_on_no_tool_call=error_on_no_tool_call, **kwargs
        )
