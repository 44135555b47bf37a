"""Reasoning methods: one way to turn a question into model calls and an answer.

A :class:`Method` is made of independent parts, so that methods combine:

- ``style``: how the prompt is worded (``vanilla`` CoT, ``direct``, ``chain-of-draft``, or a
  budget wording: ``paper``, ``tokens``, ``words``, ``system``; see ``tale styles``);
- ``estimator``: where a budget style gets its number (``heuristic``, ``regression``,
  ``zero-shot``, ``fixed:N``, or ``oracle``: each searched item's optimal budget);
- ``exemplars``: k worked examples before the question whose reasoning is short — the
  model's own correct answers under their optimal budgets, from GSM8K *train* items — so the
  model imitates their length (Concise CoT, Renze & Guven 2024);
- ``force``: budget forcing (s1, Muennighoff et al. 2025): a hard cap at ``budget x force``;
  when the cap cuts the reasoning, the final answer is forced — the reply is continued after
  "Therefore, the final answer is [[" where the model can continue a reply (the embedded
  llama.cpp models), else one short follow-up call asks for it;
- ``escalate``: the budget shapes the reply but does not stop it: a reply that runs past its
  budget keeps going up to ``max_tokens`` (vanilla's cap), and only a reply cut there gets
  its answer forced. Granting another budget-sized step by continuing the same reply gives,
  under greedy decoding, exactly the tokens of one uncut reply, so this is escalation without
  the extra calls;
- ``gamma``: TokenSkip (Xia et al., 2025) on a model tuned with TokenSkip data: the bare
  question with the compression ratio after it (:func:`~tale_shared.compression.tokenskip_prompt`,
  the layout the training data had) and the output cap scaled by the ratio; no budget. On an
  untuned model the separators are noise;
- ``think``: the budget also goes through the provider's own thinking knob — Anthropic's
  ``thinking.budget_tokens``, Gemini's ``thinking_budget``/``thinking_level``, OpenAI's
  ``reasoning_effort``, Bedrock's Claude thinking, Ollama's ``think`` — chosen for a
  reasoning model automatically (:mod:`tale_shared.thinking` has the mapping);
- ``early_exit``: answer probing (Dynasor-CoT, Fu et al. 2024) for models that continue a
  reply from a cached prefix: every ``every`` tokens a probe reads the answer the model would
  give now; when ``agree`` probes in a row give the same answer, generation stops.

Every call a method makes is recorded (estimator, answer, forced answer, probes).

Methods are named by a spec string: a base, then ``+`` modifiers::

    direct | vanilla | chain-of-draft | tale-ep (zero-shot estimator, paper wording)
    tale-<estimator>[@<style>] | oracle[@<style>] | tale (the model's default method)
    tokenskip@<gamma> (a TokenSkip-tuned model, e.g. tokenskip@0.5)
    +ex<k>  +force[<headroom>]  +escalate  +exit[<every>x<agree>]  +think

Example:
    >>> m = parse_method("tale-heuristic@system+ex3+force1.5")
    >>> m.style, m.estimator, m.exemplars, m.force
    ('system', 'heuristic', 3, 1.5)
    >>> parse_method("tale-ep").spec
    'tale-zero-shot@paper'
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from tale_shared.answers import bracketed_answer, extract_answer
from tale_shared.compression.core import check_ratio, tokenskip_cap, tokenskip_prompt
from tale_shared.estimators import parse_estimator_spec
from tale_shared.models import ChatModel, Completion
from tale_shared.prompts import TOKENSKIP, Message, PromptStyle, get_style

FORCE_CUE = "\n\nTherefore, the final answer is [["
"""Appended to a reply the cap cut, so that the model writes the answer next (s1)."""
FOLLOW_UP = "Stop here. Reply with only the final answer in double brackets, e.g. [[42]]."
"""The follow-up message when a model cannot continue a reply."""
PROBE_CUE = "\n\nOh, I suddenly got the answer to the whole problem. The final answer is [["
"""Dynasor-CoT's probe, in this library's answer format."""
ANSWER_TOKENS = 12
"""Output cap of a forced answer or a probe: enough for a number and the closing ]]."""


@runtime_checkable
class ContinuesReplies(Protocol):
    """A model that can continue a partial assistant reply (prefill) — the embedded llama.cpp
    models do, reusing the cached prefix. Budget forcing and early exit use it."""

    def continue_reply(
        self, messages: Sequence[Message], partial: str, *, max_tokens: int
    ) -> Completion: ...

    async def acontinue_reply(
        self, messages: Sequence[Message], partial: str, *, max_tokens: int
    ) -> Completion: ...


@runtime_checkable
class ThinksWithBudget(Protocol):
    """A model with a thinking knob (an adapter's view of a reasoning model): a copy whose
    calls send a budget through it, and the output cap those calls need."""

    def with_thinking_budget(
        self, budget: int, answer_tokens: int | None = None
    ) -> tuple[ChatModel, int]: ...


@dataclass(frozen=True)
class EarlyExit:
    """Probe every ``every`` generated tokens; stop when ``agree`` probes in a row agree."""

    every: int = 32
    agree: int = 2

    def __post_init__(self) -> None:
        if self.every < 1 or self.agree < 1:
            raise ValueError("early exit needs every >= 1 and agree >= 1")


@dataclass(frozen=True)
class Exemplar:
    """A worked example: the question, a short correct answer and the budget it was made under."""

    question: str
    reasoning: str
    budget: int | None = None


@dataclass(frozen=True)
class Method:
    """A reasoning method; see the module docstring. Build one with :func:`parse_method`."""

    style: str = "vanilla"
    estimator: str | None = None
    exemplars: int = 0
    force: float | None = None
    early_exit: EarlyExit | None = None
    escalate: bool = False
    gamma: float | None = None
    think: bool = False
    label: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        style = get_style(self.style)
        if (self.gamma is not None) != (self.style == TOKENSKIP_STYLE):
            raise ValueError("TokenSkip is its own method: tokenskip@<gamma>")
        if self.gamma is not None:
            check_ratio(self.gamma)
            if self.exemplars or self.force is not None or self.escalate or self.early_exit:
                raise ValueError(
                    "tokenskip@<gamma> takes no modifiers: the ratio is its only budget"
                )
        if style.uses_budget and self.estimator is None:
            raise ValueError(f"style {self.style!r} states a budget: it needs an estimator")
        if self.force is not None and (self.force < 1 or self.estimator is None):
            raise ValueError("force needs a budget (an estimator) and a headroom of at least 1")
        if self.exemplars < 0:
            raise ValueError("exemplars must be zero or more")
        if self.escalate and (self.estimator is None or self.force is not None):
            raise ValueError("escalate needs a budget (an estimator) and replaces force")
        if self.think and self.estimator is None:
            raise ValueError("think sends a budget to the thinking knob: it needs an estimator")

    @property
    def is_tokenskip(self) -> bool:
        """Whether this is TokenSkip (``tokenskip@<gamma>``) rather than a budget method."""
        return self.gamma is not None

    def question_text(self, question: str) -> str:
        """The question as this method asks it: TokenSkip's layout for ``tokenskip@<gamma>``,
        else unchanged."""
        return question if self.gamma is None else tokenskip_prompt(question, self.gamma)

    def answer_cap(self, max_tokens: int | None) -> int | None:
        """TokenSkip's output cap, ``max_tokens`` scaled by ``gamma`` (``None`` for every
        other method: their cap comes from the budget)."""
        return None if self.gamma is None else tokenskip_cap(max_tokens, self.gamma)

    @property
    def forces_answer(self) -> bool:
        """Whether a reply cut at its cap without an answer gets the answer forced: at the
        budget's cap (``+force``) or at ``max_tokens`` (``+escalate``)."""
        return self.force is not None or self.escalate

    @property
    def spec(self) -> str:
        """The canonical spec string (``parse_method(m.spec) == m``)."""
        if self.gamma is not None:
            return f"{TOKENSKIP_STYLE}@{self.gamma}"
        if self.estimator is None:
            base = self.style
        elif self.estimator == "oracle":
            base = f"oracle@{self.style}"
        else:
            base = f"tale-{self.estimator}@{self.style}"
        parts = [base]
        if self.exemplars:
            parts.append(f"ex{self.exemplars}")
        if self.force is not None:
            parts.append(f"force{self.force:g}")
        if self.escalate:
            parts.append("escalate")
        if self.early_exit is not None:
            parts.append(f"exit{self.early_exit.every}x{self.early_exit.agree}")
        if self.think:
            parts.append("think")
        return "+".join(parts)

    @property
    def name(self) -> str:
        """The label it was asked for by (``tale-ep``), else its spec."""
        return self.label or self.spec


_ESTIMATOR_STYLE = re.compile(r"^(?:tale-)?(?P<est>[a-z0-9_.:/\\~-]+?)(?:@(?P<style>[a-z-]+))?$")
_FORCE = re.compile(r"^force(?P<h>\d+(?:\.\d+)?)?$")
_EXIT = re.compile(r"^exit(?:(?P<every>\d+)x(?P<agree>\d+))?$")
_EX = re.compile(r"^ex(?P<k>\d+)$")
NO_BUDGET_STYLES = ("vanilla", "vanilla-paper", "direct", "chain-of-draft")
TOKENSKIP_STYLE = TOKENSKIP.name


def parse_method(spec: str | Method, *, default_style: str | None = None) -> Method:
    """A :class:`Method` from its spec string (see the module docstring).

    ``default_style`` is the style of a ``tale-<estimator>`` without ``@style`` (the model's
    profile style); ``"words"`` when not given. ``"tale"`` itself is resolved by
    :func:`tale_shared.profiles.method_for`, not here.
    """
    if isinstance(spec, Method):
        return spec
    text = spec.strip().lower()
    if not text:
        raise ValueError("empty method spec")
    base, *mods = text.split("+")
    label = spec.strip()
    if base in NO_BUDGET_STYLES:
        method = Method(style=base)
    elif base.startswith(f"{TOKENSKIP_STYLE}@"):
        gamma = base.partition("@")[2]
        try:
            value = float(gamma)
        except ValueError:
            raise ValueError(f"tokenskip needs a ratio: tokenskip@0.5, not {spec!r}") from None
        method = Method(style=TOKENSKIP_STYLE, gamma=value)  # checked by Method
    elif base == "tale-ep":
        method = Method(style="paper", estimator="zero-shot")
    elif base.startswith("oracle"):
        style = base.partition("@")[2] or default_style or "words"
        method = Method(style=style, estimator="oracle")
    elif base.startswith("tale-"):
        match = _ESTIMATOR_STYLE.match(base)
        if match is None:
            raise ValueError(f"cannot read method {spec!r}")
        parse_estimator_spec(match["est"])
        method = Method(style=match["style"] or default_style or "words", estimator=match["est"])
    else:
        raise ValueError(
            f"unknown method {spec!r}: use direct, vanilla, chain-of-draft, tale-ep, "
            "tale-<estimator>[@<style>], oracle[@<style>], tokenskip@<gamma> or tale, with "
            "+ex<k>, +force[<h>], +escalate, +exit[<every>x<agree>], +think"
        )
    for mod in mods:
        if m := _EX.match(mod):
            method = replace(method, exemplars=int(m["k"]))
        elif m := _FORCE.match(mod):
            method = replace(method, force=float(m["h"] or 1.5))
        elif mod == "escalate":
            method = replace(method, escalate=True)
        elif m := _EXIT.match(mod):
            every, agree = (int(m["every"]), int(m["agree"])) if m["every"] else (32, 2)
            method = replace(method, early_exit=EarlyExit(every, agree))
        elif mod == "think":
            method = replace(method, think=True)
        else:
            raise ValueError(f"unknown method modifier {mod!r} in {spec!r}")
    return replace(method, label=label)


def for_reasoning_model(method: Method, reasoning: bool) -> Method:
    """The automatic choice for a reasoning model: ``method`` with ``+think`` when it has a
    budget to send (every entry point calls this when its user named no method).

    >>> for_reasoning_model(parse_method("tale-heuristic@paper"), True).spec
    'tale-heuristic@paper+think'
    >>> for_reasoning_model(parse_method("vanilla"), True).spec
    'vanilla'
    """
    if reasoning and method.estimator is not None and not method.think and not method.gamma:
        return replace(method, think=True, label=None)
    return method


# -- exemplars ---------------------------------------------------------------------------------
def _packaged_exemplars() -> Path:
    return Path(str(resources.files("tale_shared") / "data" / "exemplars-gsm8k-train.json"))


@lru_cache(maxsize=8)
def load_exemplars(path: str | None = None) -> tuple[Exemplar, ...]:
    """Worked examples from a JSON file (default: the packaged GSM8K-train exemplars, the
    default model's own shortest correct answers under their optimal budgets)."""
    file = Path(path) if path else _packaged_exemplars()
    rows = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise ValueError(f"{file} must hold a JSON list of exemplars")
    return tuple(Exemplar(str(r["question"]), str(r["reasoning"]), r.get("budget")) for r in rows)


def exemplar_turns(
    style: PromptStyle, exemplars: Sequence[Exemplar], *, budget: int | None
) -> list[Message]:
    """The exemplars as earlier turns of the conversation, each asked the way the real
    question is (same style; a budget style states the exemplar's own budget)."""
    turns: list[Message] = []
    for ex in exemplars:
        ex_budget = (ex.budget or budget) if style.uses_budget else None
        asked = style.render(ex.question, ex_budget)
        turns.extend(m for m in asked if m.role != "system")
        turns.append(Message("assistant", ex.reasoning))
    return turns


def render(
    style: PromptStyle, question: str, budget: int | None, exemplars: Sequence[Exemplar] = ()
) -> list[Message]:
    """The full prompt: the style's system message (if any), the exemplar turns, the question."""
    asked = style.render(question, budget if style.uses_budget else None)
    if not exemplars:
        return asked
    system = [m for m in asked if m.role == "system"]
    rest = [m for m in asked if m.role != "system"]
    return [*system, *exemplar_turns(style, exemplars, budget=budget), *rest]


# -- running: one plan, driven sync or async ---------------------------------------------------
CallKind = Literal["answer", "forced", "probe"]


@dataclass(frozen=True)
class Request:
    """One model call a plan asks for: a fresh reply, or a continuation of ``partial``."""

    kind: CallKind
    messages: list[Message]
    max_tokens: int | None
    partial: str | None = None


@dataclass
class Outcome:
    """What the calls of one answer produced: the final text and each (kind, completion)."""

    text: str = ""
    calls: list[tuple[CallKind, Completion]] = field(default_factory=list)
    stopped_early: bool = False
    forced: bool = False
    cut: bool = False
    """The answer stopped at its output cap (before any forced answer)."""


AnswerPlan = Generator[Request, Completion, Outcome]


def _probe_answer(text: str) -> str | None:
    return extract_answer("[[" + text) if "]]" in text else None


def _cue(cue: str, text: str, think_close: str | None) -> str:
    """``cue`` after ``text``; a reasoning model still thinking (no ``think_close`` yet) has
    its thinking closed first, so that what follows is its answer (s1's budget forcing)."""
    if think_close is None or think_close in text:
        return cue
    return f"\n{think_close}\n\n{cue.lstrip()}"


def answer_plan(
    messages: list[Message],
    *,
    max_tokens: int | None,
    cap: int | None,
    force: bool,
    early_exit: EarlyExit | None,
    can_continue: bool,
    think_close: str | None = None,
) -> AnswerPlan:
    """The calls for one answer; yields :class:`Request` and receives each completion.
    ``think_close``: the model thinks inside tags that this string closes (a llama.cpp
    reasoning model): a forced answer or a probe closes the thinking first."""
    outcome = Outcome()
    limit = cap if cap is not None else max_tokens
    if early_exit is not None:
        if not can_continue:
            raise ValueError(
                "early exit needs a model that continues a reply from a cached prefix "
                "(the embedded llama.cpp models)"
            )
        total = limit or 512
        answers: list[str | None] = []
        while True:
            step = min(early_exit.every, total - _generated(outcome))
            chunk = yield Request("answer", messages, step, partial=outcome.text)
            outcome.calls.append(("answer", chunk))
            outcome.text += chunk.text
            if chunk.finish_reason != "length" or _generated(outcome) >= total:
                break
            cue = _cue(PROBE_CUE, outcome.text, think_close)
            probe = yield Request("probe", messages, ANSWER_TOKENS, partial=outcome.text + cue)
            outcome.calls.append(("probe", probe))
            answers.append(_probe_answer(probe.text))
            recent = answers[-early_exit.agree :]
            if len(recent) == early_exit.agree and recent[0] and len(set(recent)) == 1:
                outcome.text += cue + probe.text.split("]]")[0] + "]]"
                outcome.stopped_early = True
                return outcome
        cut = _generated(outcome) >= total
    else:
        reply = yield Request("answer", messages, limit)
        outcome.calls.append(("answer", reply))
        outcome.text = reply.text
        cut = reply.finish_reason == "length"
    outcome.cut = cut
    if should_force(outcome.text, cut=cut, force=force):
        outcome.forced = True
        if can_continue:
            cue = _cue(FORCE_CUE, outcome.text, think_close)
            forced = yield Request("forced", messages, ANSWER_TOKENS, partial=outcome.text + cue)
            outcome.text += cue + forced.text
        else:
            forced = yield Request("forced", follow_up(messages, outcome.text), ANSWER_TOKENS)
            outcome.text += "\n\n" + forced.text
        outcome.calls.append(("forced", forced))
    return outcome


def should_force(text: str, *, cut: bool, force: bool) -> bool:
    """Budget forcing's one rule, for every entry point: a method with ``+force`` whose reply
    the cap cut (finish reason ``length`` — each adapter reads its provider's spelling as
    that) and that holds no bracketed answer gets the final answer forced."""
    return force and cut and bracketed_answer(text) is None


def follow_up(messages: Sequence[Message], reply: str) -> list[Message]:
    """The messages of the follow-up call that asks a model that cannot continue its own
    reply for the final answer."""
    return [*messages, Message("assistant", reply), Message("user", FOLLOW_UP)]


def _generated(outcome: Outcome) -> int:
    return sum(c.usage.output_tokens for kind, c in outcome.calls if kind == "answer")


def run_plan(model: ChatModel, plan: AnswerPlan) -> Outcome:
    """Drive a plan with synchronous model calls."""
    try:
        request = next(plan)
        while True:
            request = plan.send(_call(model, request))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def arun_plan(model: ChatModel, plan: AnswerPlan) -> Outcome:
    """Drive a plan with awaited model calls."""
    try:
        request = next(plan)
        while True:
            request = plan.send(await _acall(model, request))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


CONTINUATION_CAP = 512
"""The cap of a continued reply whose request names none."""


def _sent_cap(request: Request) -> int | None:
    if request.partial is not None:
        return request.max_tokens or CONTINUATION_CAP
    return request.max_tokens


def _with_cap(reply: Completion, request: Request) -> Completion:
    """The reply with the cap its call was sent with, so its record can show the cap and
    whether the provider kept to it."""
    cap = _sent_cap(request)
    return reply if cap is None or reply.cap == cap else reply.model_copy(update={"cap": cap})


def _call(model: ChatModel, request: Request) -> Completion:
    if request.partial is not None:
        assert isinstance(model, ContinuesReplies)
        reply = model.continue_reply(
            request.messages, request.partial, max_tokens=request.max_tokens or CONTINUATION_CAP
        )
    else:
        reply = model.complete(request.messages, max_tokens=request.max_tokens)
    return _with_cap(reply, request)


async def _acall(model: ChatModel, request: Request) -> Completion:
    if request.partial is not None:
        assert isinstance(model, ContinuesReplies)
        reply = await model.acontinue_reply(
            request.messages, request.partial, max_tokens=request.max_tokens or CONTINUATION_CAP
        )
    else:
        reply = await model.acomplete(request.messages, max_tokens=request.max_tokens)
    return _with_cap(reply, request)
