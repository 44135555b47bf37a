"""From what a user asked for to the method that runs — one function for every entry point.

``TalePipeline``, ``TaleRunnable``, ``TaleBudgetMiddleware``, ``TaleLLM`` and the query
transform all take ``method=`` (default: the model's profile method, see
:func:`tale_shared.profiles.method_for`) and may replace its parts with ``estimator=``,
``style=`` and ``cap_headroom=``. :func:`resolve_method` turns those into the same
:class:`ResolvedMethod` everywhere: the method as it runs (its spec names what was replaced),
the prompt style, the estimator, the cap's headroom and the exemplars. What an entry point
cannot run (early exit needs a cached prefix, TokenSkip has its own runnables) it refuses
itself.

In an agent (``agent=True``), budget forcing applies to the **final-answer step** only: a
step the cap cut that holds neither a tool call nor a bracketed answer gets one short
follow-up call asking for the final answer (:func:`tale_shared.methods.follow_up`); a step
that calls a tool is never forced.

Example:
    >>> parts = resolve_method("gpt-4o-mini", "tale-fixed:80@system+force1.5", agent=True)
    >>> parts.style.name, parts.cap_headroom, parts.forces_answer
    ('system', 1.5, True)
    >>> parts.needs_forcing("I will compute 3 * 4 first and", cut=True, calls_tools=False)
    True
    >>> parts.needs_forcing("", cut=True, calls_tools=True)
    False
    >>> resolve_method("gpt-4o-mini", "tale-heuristic@paper", style="words").method.spec
    'tale-heuristic@words'
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tale_shared.caps import check_cap_headroom
from tale_shared.estimators import BudgetEstimator, EstimatorSlot, resolve_estimator
from tale_shared.methods import (
    Exemplar,
    Method,
    exemplar_turns,
    for_reasoning_model,
    load_exemplars,
    should_force,
)
from tale_shared.profiles import agent_method_for, method_for, prompt_style_for, style_for
from tale_shared.prompts import Message, PromptStyle


@dataclass(frozen=True)
class ResolvedMethod:
    """The parts of a method as an entry point runs it (build it with :func:`resolve_method`)."""

    method: Method
    """The method as it runs: ``estimator=``/``style=`` given in place of its own are in its
    spec, so that records and tables name it truly."""
    style: PromptStyle
    slot: EstimatorSlot
    cap_headroom: float | None
    exemplars: tuple[Exemplar, ...] = ()

    @property
    def has_budget(self) -> bool:
        """Whether calls get a budget (a method without an estimator states none)."""
        return self.slot.estimator is not None or self.slot.zero_shot

    @property
    def forces_answer(self) -> bool:
        return self.method.forces_answer

    def needs_forcing(self, text: str, *, cut: bool, calls_tools: bool = False) -> bool:
        """Budget forcing's rule (:func:`~tale_shared.methods.should_force`); a reply that
        calls a tool is an agent's step on its way, never forced."""
        return not calls_tools and should_force(text, cut=cut, force=self.forces_answer)

    def exemplar_messages(self, budget: int | None) -> list[Message]:
        """The exemplars as earlier turns, asked the way the question is (core messages)."""
        return exemplar_turns(self.style, self.exemplars, budget=budget)


def resolve_method(
    model: str | None,
    method: str | Method | None = None,
    *,
    estimator: BudgetEstimator | str | None = None,
    style: str | PromptStyle | None = None,
    cap_headroom: float | None = None,
    reasoning: bool = False,
    agent: bool = False,
) -> ResolvedMethod:
    """Resolve an entry point's options for ``model`` (its name, for the profile).

    ``method`` defaults to ``"tale"``, the model's profile method (``agent=True``: its method
    for agent steps); a ``reasoning`` model named no method gets ``+think`` (the budget to its
    thinking knob). ``estimator``, ``style`` and ``cap_headroom`` replace the method's own
    parts. The oracle estimator only knows benchmark items: it needs an estimator object
    (``tale_shared.research.bench`` builds one), and agent steps refuse it, as they refuse
    early exit and TokenSkip.
    """
    resolved = (agent_method_for if agent else method_for)(model, method or "tale")
    if method is None:
        resolved = for_reasoning_model(resolved, reasoning)
    if agent and resolved.early_exit is not None:
        raise ValueError("early exit (+exit) probes one answer; it does not apply to agent steps")
    if agent and resolved.is_tokenskip:
        raise ValueError(f"{resolved.spec} is not a step budget: agent steps take a TALE method")
    spec = estimator if estimator is not None else resolved.estimator
    if spec == "oracle":
        raise ValueError(
            "the oracle estimator only knows benchmark items: pass estimator=OracleEstimator(...) "
            "(tale_shared.research.bench builds one)"
            + ("; agent steps take a real estimator" if agent else "")
        )
    chosen = style_for(model, prompt_style_for(model, resolved, style=style, estimator=estimator))
    slot = resolve_estimator(spec)
    named = spec if isinstance(spec, str) or spec is None else slot.spec
    if chosen.uses_budget and named is None:
        raise ValueError(f"style {chosen.name!r} needs an estimator for its budget")
    if not resolved.is_tokenskip and (chosen.name, named) != (resolved.style, resolved.estimator):
        # the method as it runs, so that records and tables name it truly
        resolved = replace(resolved, style=chosen.name, estimator=named, label=None)
    headroom = check_cap_headroom(cap_headroom)
    return ResolvedMethod(
        method=resolved,
        style=chosen,
        slot=slot,
        cap_headroom=headroom if headroom is not None else resolved.force,
        exemplars=tuple(load_exemplars()[: resolved.exemplars]),
    )


__all__ = ["ResolvedMethod", "resolve_method"]
