"""What one agent step gets from a method — the same TALE whatever the entry point.

``TaleRunnable`` answers one question; ``TaleBudgetMiddleware`` (LangChain ``create_agent``)
and ``TaleLLM`` (LlamaIndex agents) budget each step of a tool-using run. All three resolve
their ``method=`` (default: the model's profile method, see
:func:`tale_shared.profiles.agent_method_for`) into the same parts: the prompt style, the
estimator, the hard cap's headroom, the exemplars and budget forcing. This module is the one
place the two agent adapters get them from, so a model gets one TALE in every framework.

In an agent, budget forcing applies to the **final-answer step** only: a step the cap cut
that holds neither a tool call nor a bracketed answer gets one short follow-up call asking
for the final answer (:func:`tale_shared.methods.follow_up`); a step that calls a tool is
never forced.

Example:
    >>> step = step_method("gpt-4o-mini", "tale-fixed:80@system+force1.5")
    >>> step.style.name, step.cap_headroom, step.forces_answer
    ('system', 1.5, True)
    >>> step.needs_forcing("I will compute 3 * 4 first and", cut=True, calls_tools=False)
    True
    >>> step.needs_forcing("", cut=True, calls_tools=True)
    False
"""

from __future__ import annotations

from dataclasses import dataclass

from tale_shared.caps import check_cap_headroom
from tale_shared.estimators import BudgetEstimator, EstimatorSlot, resolve_estimator
from tale_shared.methods import Exemplar, Method, exemplar_turns, load_exemplars, should_force
from tale_shared.profiles import agent_method_for, prompt_style_for, style_for
from tale_shared.prompts import Message, PromptStyle


@dataclass(frozen=True)
class StepMethod:
    """The parts of a method an agent step uses (build it with :func:`step_method`)."""

    method: Method
    style: PromptStyle
    slot: EstimatorSlot
    cap_headroom: float | None
    exemplars: tuple[Exemplar, ...] = ()

    @property
    def budgeted(self) -> bool:
        """Whether steps get a budget (a method without an estimator only keeps the run's
        totals)."""
        return self.slot.estimator is not None or self.slot.zero_shot

    @property
    def forces_answer(self) -> bool:
        return self.method.forces_answer

    def needs_forcing(self, text: str, *, cut: bool, calls_tools: bool) -> bool:
        """Budget forcing's rule for an agent step: only a final-answer step (no tool call)
        that the cap cut without a bracketed answer."""
        return not calls_tools and should_force(text, cut=cut, force=self.forces_answer)

    def exemplar_messages(self, budget: int | None) -> list[Message]:
        """The exemplars as earlier turns, asked the way this step is (core messages)."""
        return exemplar_turns(self.style, self.exemplars, budget=budget)


def step_method(
    model: str | None,
    method: str | Method | None = None,
    *,
    estimator: BudgetEstimator | str | None = None,
    style: str | PromptStyle | None = None,
    cap_headroom: float | None = None,
) -> StepMethod:
    """Resolve an agent adapter's options for ``model`` (its name, for the profile).

    ``method`` defaults to ``"tale"``, the model's profile method for agent steps;
    ``estimator``, ``style`` and ``cap_headroom`` given explicitly replace the method's own
    parts. Early exit (answer probing) does not apply to agent steps and is refused, as is
    the oracle estimator (it only knows benchmark items).
    """
    resolved = agent_method_for(model, method if method is not None else "tale")
    if resolved.early_exit is not None:
        raise ValueError("early exit (+exit) probes one answer; it does not apply to agent steps")
    if resolved.is_tokenskip:
        raise ValueError(f"{resolved.spec} is not a step budget: agent steps take a TALE method")
    spec = estimator if estimator is not None else resolved.estimator
    if spec == "oracle":
        raise ValueError("the oracle estimator only knows benchmark items, not agent steps")
    cap_headroom = check_cap_headroom(cap_headroom)
    return StepMethod(
        method=resolved,
        style=style_for(model, prompt_style_for(model, resolved, style=style, estimator=estimator)),
        slot=resolve_estimator(spec),
        cap_headroom=cap_headroom if cap_headroom is not None else resolved.force,
        exemplars=tuple(load_exemplars()[: resolved.exemplars]),
    )


__all__ = ["StepMethod", "step_method"]
