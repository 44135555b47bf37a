"""``TaleQueryTransform``: budget the query for the answer, keep the original for retrieval."""

from __future__ import annotations

import dataclasses
from contextvars import ContextVar
from typing import Any

from llama_index.core.indices.query.query_transform.base import BaseQueryTransform
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms import LLM
from llama_index.core.prompts import PromptTemplate
from llama_index.core.prompts.mixin import PromptDictType
from llama_index.core.schema import QueryBundle, QueryType
from llama_index.core.settings import Settings

from llama_index_tale._thinking import is_reasoning_model
from llama_index_tale.llm_adapter import LlamaIndexModel, model_name_of
from tale_shared._validation import require_question
from tale_shared.budget import TokenBudget, budget_metadata
from tale_shared.estimators import BudgetEstimator, EstimatorSlot
from tale_shared.estimators.zero_shot import ESTIMATOR_PROMPT
from tale_shared.methods import Method, for_reasoning_model
from tale_shared.profiles import (
    method_for,
    profile_for,
    profile_label,
    style_for,
)
from tale_shared.prompts import PromptStyle, conversation_prompt, join_instruction
from tale_shared.resolve import resolve_method

dispatcher = get_dispatcher(__name__)


class TaleBudgetEvent(BaseEvent):
    """Dispatched when a query's budget is known (the tracer attaches it to the query)."""

    question: str
    budget: int | None
    estimator: str | None
    style: str
    method: str | None = None
    fallback_reason: str | None = None

    @classmethod
    def class_name(cls) -> str:
        return "TaleBudgetEvent"


def worded_query(query: str, style: PromptStyle, budget: int | None) -> str:
    """The query with the style placed by the one placement rule: a query string has no
    system message, so what a style puts there (a ``"system"`` style's budget sentence, a
    preamble) leads the query and a ``"user"`` style's sentence follows it.

    >>> from tale_shared.prompts import get_style
    >>> print(worded_query("What is 3 + 5?", get_style("concise"), 40))
    You are a concise problem solver: show only the steps that are needed.
    <BLANKLINE>
    What is 3 + 5?
    <BLANKLINE>
    Keep this answer shorter than 40 tokens.
    """
    parts = conversation_prompt(
        style,
        [("user", query)],
        budget,
        role_of=lambda part: part[0],
        merge=lambda part, text: (part[0], join_instruction(part[1], text)),
        new=lambda role, text: (role, text),
    )
    return "\n\n".join(text for _, text in parts if text)


class TaleQueryTransform(BaseQueryTransform):
    """Estimates a token budget for the query and puts the budget instruction in ``query_str``.

    Retrieval keeps the original text: the result's ``embedding_strs`` equal the original
    query's (the inverse of HyDE, which changes what is embedded and keeps the query). The
    budget, estimator and style are written into the transform's ``metadata`` and kept on
    ``last_budget``. ``method`` is a :mod:`method spec <tale_shared.methods>` whose parts
    live in the prompt (a style and an estimator, e.g. ``"tale-heuristic@words"``,
    ``"tale-ep"``, ``"chain-of-draft"``); by default the part of the model's profile method
    that a query can carry (its style and estimator; see the README). ``estimator`` and
    ``style`` replace the method's own. A zero-shot estimator asks ``llm`` (``Settings.llm``
    when none is given); its prompt is exposed through the prompt mixin as
    ``"estimator_prompt"``. ``arun`` awaits the estimator instead of blocking the
    loop — use :class:`~llama_index_tale.TaleQueryEngine` for async queries.

    Example:
        .. code-block:: python

            from llama_index.core.query_engine import TransformQueryEngine
            from llama_index_tale import TaleQueryTransform

            transform = TaleQueryTransform(llm=llm, style="words")
            engine = TransformQueryEngine(index.as_query_engine(llm=llm), transform)
            engine.query("How many clips did Natalia sell in April and May?")
    """

    def __init__(
        self,
        llm: LLM | None = None,
        estimator: BudgetEstimator | str | None = None,
        style: str | PromptStyle | None = None,
        method: str | None = None,
    ) -> None:
        super().__init__()
        self._llm = llm
        self._estimator_prompt = PromptTemplate(ESTIMATOR_PROMPT)
        name = self._model_name()
        reasoning = self._llm is not None and is_reasoning_model(self._llm)
        if method is None:  # the default: the part of the profile method a query can carry
            # the profile's method as it is (no estimator built: only its parts are carried)
            profile_method = for_reasoning_model(method_for(name), reasoning)
            carried = dataclasses.replace(
                profile_method, exemplars=0, force=None, early_exit=None, escalate=False
            )
            # a profile method that states no budget (exemplars only): a transform's one
            # part is the budget, in the model's wording
            states_none = carried.estimator is None
            if estimator is None and states_none:
                estimator = "heuristic"
            parts = resolve_method(name, carried, estimator=estimator, style=style)
            resolved = for_reasoning_model(parts.method, reasoning)
            source = profile_label(profile_for(name))
            if states_none:
                label = f"tale ({resolved.spec}: the budget; {source}, whose method "
                label += f"{profile_method.spec} states none)"
            elif resolved.spec != profile_method.spec:
                label = f"tale ({resolved.spec}: query part; {source})"
            else:
                label = profile_method.name
            resolved = dataclasses.replace(resolved, label=label)
        else:
            parts = resolve_method(name, method, estimator=estimator, style=style)
            resolved = parts.method
        if resolved.is_tokenskip:
            raise ValueError(f"{resolved.spec} is worded by TokenSkipQueryTransform")
        if resolved.exemplars or resolved.force or resolved.early_exit:
            raise ValueError(
                f"{resolved.spec}: a query transform can only word the query (style and "
                "budget); exemplars, forcing and early exit need TalePipeline or TaleRunnable"
            )
        self._method = resolved
        self._slot: EstimatorSlot = parts.slot
        self._style = parts.style
        self._last_budget: ContextVar[TokenBudget | None] = ContextVar(
            f"tale_last_budget_{id(self)}", default=None
        )

    @classmethod
    def class_name(cls) -> str:
        return "TaleQueryTransform"

    @property
    def last_budget(self) -> TokenBudget | None:
        """The budget of the last query budgeted in *this* task or thread (concurrent
        ``aquery`` calls each see their own; the query's metadata holds it too)."""
        return self._last_budget.get()

    # -- prompt mixin ------------------------------------------------------------------------
    def _get_prompts(self) -> PromptDictType:
        return {"estimator_prompt": self._estimator_prompt}

    def _update_prompts(self, prompts: PromptDictType) -> None:
        if "estimator_prompt" in prompts:
            self._estimator_prompt = prompts["estimator_prompt"]  # type: ignore[assignment]

    # -- parts -------------------------------------------------------------------------------
    @property
    def llm(self) -> LLM:
        return self._llm or Settings.llm

    @property
    def resolved_method(self) -> Method:
        """The method this transform words queries by (``+think``: the engine also sends
        the budget through the answer LLM's thinking knob)."""
        return self._method

    def _model_name(self) -> str | None:
        """The model's name, or ``None`` when no LLM resolves (no ``llm``, no usable
        ``Settings.llm``): the default profile applies then."""
        try:
            return model_name_of(self.llm)
        except Exception:
            return None

    @property
    def estimator(self) -> BudgetEstimator | None:
        """The estimator, or ``None`` for a method without a budget."""
        return self._slot.bind(
            lambda: LlamaIndexModel(self.llm, role="estimator"),
            prompt=self._estimator_prompt.get_template(),
        )

    @property
    def style(self) -> PromptStyle:
        return style_for(self._model_name(), self._style)

    def _apply(
        self, query_bundle: QueryBundle, budget: TokenBudget | None, metadata: dict[str, Any]
    ) -> QueryBundle:
        style = self.style
        self._last_budget.set(budget)
        tale = budget_metadata(self._method.name, budget, style.name)
        metadata["tale"] = tale  # as LangChain's response_metadata["tale"]
        dispatcher.event(
            TaleBudgetEvent(
                question=query_bundle.query_str,
                budget=budget.tokens if budget else None,
                estimator=budget.estimator if budget else None,
                style=style.name,
                method=self._method.name,
                fallback_reason=budget.fallback_reason if budget else None,
            )
        )
        tokens = budget.tokens if budget and style.uses_budget else None
        return dataclasses.replace(
            query_bundle,
            query_str=worded_query(query_bundle.query_str, style, tokens),
            custom_embedding_strs=list(query_bundle.embedding_strs),
        )

    @staticmethod
    def _bundle(query: QueryType) -> QueryBundle:
        if isinstance(query, str):
            bundle = QueryBundle(query_str=query)
        elif isinstance(query, QueryBundle):
            bundle = query
        else:
            raise TypeError(
                f"TaleQueryTransform takes a query string or a QueryBundle, not "
                f"{type(query).__name__}"
            )
        require_question(bundle.query_str)
        return bundle

    def run(
        self, query_bundle_or_str: QueryType, metadata: dict[str, Any] | None = None
    ) -> QueryBundle:
        """Budget the query; ``metadata`` (when given) receives the budget fields."""
        return self._run(
            self._bundle(query_bundle_or_str), metadata if metadata is not None else {}
        )

    def _run(self, query_bundle: QueryBundle, metadata: dict[str, Any]) -> QueryBundle:
        query_bundle = self._bundle(query_bundle)
        estimator = self.estimator
        budget = estimator.estimate(query_bundle.query_str) if estimator else None
        return self._apply(query_bundle, budget, metadata)

    async def arun(self, query: QueryType, metadata: dict[str, Any] | None = None) -> QueryBundle:
        """Async :meth:`run`: the estimator's model call is awaited, not blocking the loop."""
        query_bundle = self._bundle(query)
        estimator = self.estimator
        budget = await estimator.aestimate(query_bundle.query_str) if estimator else None
        return self._apply(query_bundle, budget, metadata if metadata is not None else {})
