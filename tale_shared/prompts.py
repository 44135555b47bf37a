"""Budget prompt styles: how a token budget is put into a prompt.

The paper's wording ("Let's think step by step and use less than N tokens") is the reference
style ``"paper"``. Small local models ignore it but follow a budget stated in words, so other
styles exist and one is chosen per model (see :mod:`tale_shared.profiles`).

Every style is a :class:`PromptStyle` with a *placement* (the budget sentence goes at the end
of the last user message, or into the system message) and an ``instruction(budget)``. The
framework adapters use those two to place the budget inside their own message types;
:meth:`PromptStyle.render` builds a full standalone prompt for the CLI and the benchmarks.

Example:
    >>> style = get_style("words")
    >>> style.instruction(100)
    'Solve this step by step, showing each calculation briefly, in at most 75 words.'
    >>> [m.role for m in style.render("What is 2+3?", 100)]
    ['user']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

from tale_shared._validation import require_question

Role = Literal["system", "user", "assistant"]
Placement = Literal["user", "system"]


@dataclass(frozen=True)
class Message:
    """A chat message in the core's own, framework-free form."""

    role: Role
    content: str


ANSWER_FORMAT = "Give the final answer as a number in double brackets at the end, e.g. [[42]]."
"""The answer-format line of the paper's GSM8K prompt; answers parse with
:func:`tale_shared.answers.extract_answer`."""

COT_CUE = "Let's think step by step."
WORDS_PER_TOKEN = 0.75
"""English averages about 0.75 words per token; used to convert a token budget to words."""


@dataclass(frozen=True)
class PromptStyle:
    """One way of stating a budget.

    Attributes:
        name: registry name (``get_style(name)``).
        description: one line for ``tale styles`` and docs.
        template: the budget sentence; ``{budget}`` is the token budget and ``{words}`` the
            budget converted to words. Empty for the vanilla (no budget) style.
        placement: ``"user"`` appends the sentence to the last user message, ``"system"``
            puts it in the system message.
        answer_format: the answer-format line used by :meth:`render`.
        format_first: put the answer format *before* the budget sentence, as the paper does.
            Measured on a 1.5B model, that order makes it skip reasoning, so only the
            reference style keeps it.
        words_per_token: the conversion for ``{words}``.
    """

    name: str
    description: str
    template: str
    placement: Placement = "user"
    answer_format: str = ANSWER_FORMAT
    format_first: bool = False
    words_per_token: float = WORDS_PER_TOKEN
    uses_budget: bool = field(default=True)

    def words_for(self, budget: int) -> int:
        """The budget in words (at least 1)."""
        return max(1, math.floor(budget * self.words_per_token + 0.5))

    def instruction(self, budget: int | None) -> str:
        """The budget sentence for ``budget`` tokens."""
        if self.uses_budget:
            if budget is None:
                raise ValueError(f"style {self.name!r} needs a budget")
            if budget < 1:
                raise ValueError(f"budget must be a positive number of tokens, got {budget}")
        if budget is None:
            return self.template
        return self.template.format(budget=budget, words=self.words_for(budget))

    def apply(self, messages: Sequence[Message], budget: int | None) -> list[Message]:
        """Insert the budget sentence into an existing conversation (core messages)."""
        return place_sentence(
            messages,
            self.placement,
            self.instruction(budget),
            role_of=lambda m: m.role,
            merge=lambda m, sentence: Message(m.role, join_instruction(m.content, sentence)),
            new=Message,
        )

    def render(
        self, question: str, budget: int | None, *, answer_format: bool = True
    ) -> list[Message]:
        """A complete prompt for ``question`` under ``budget`` tokens."""
        question = require_question(question)
        sentence = self.instruction(budget)
        fmt = self.answer_format if answer_format else ""
        if self.placement == "system":
            user = join_instruction(question, " ".join(p for p in (COT_CUE, fmt) if p))
            return [Message("system", sentence), Message("user", user)]
        parts = [fmt, sentence] if self.format_first else [sentence, fmt]
        return [Message("user", join_instruction(question, " ".join(p for p in parts if p)))]

    def with_options(self, **changes: object) -> PromptStyle:
        """A copy with some fields changed (e.g. ``words_per_token`` after calibration)."""
        return replace(self, **changes)  # type: ignore[arg-type]


M = TypeVar("M")


def place_sentence(
    messages: Sequence[M],
    placement: Placement,
    sentence: str,
    *,
    role_of: Callable[[M], str],
    merge: Callable[[M, str], M],
    new: Callable[[Role, str], M],
) -> list[M]:
    """Put a budget sentence into a conversation of any message type — the one placement rule.

    ``"system"``: merged into a leading system message, or a new system message first.
    ``"user"``: merged into the last user message, or a new user message at the end.
    The adapters pass how to read a message's role (``"system"``/``"user"``/other), merge a
    sentence into one, and make a new one.

    Example:
        >>> place_sentence(["u:hi"], "system", "be brief", role_of=lambda m: "user",
        ...                merge=lambda m, s: m, new=lambda role, s: f"{role[0]}:{s}")
        ['s:be brief', 'u:hi']
    """
    out = list(messages)
    if placement == "system":
        if out and role_of(out[0]) == "system":
            out[0] = merge(out[0], sentence)
        else:
            out.insert(0, new("system", sentence))
        return out
    for i in range(len(out) - 1, -1, -1):
        if role_of(out[i]) == "user":
            out[i] = merge(out[i], sentence)
            return out
    out.append(new("user", sentence))
    return out


def join_instruction(text: str, sentence: str) -> str:
    """Append ``sentence`` to ``text`` as its own paragraph (no-op for an empty sentence)."""
    if not sentence:
        return text
    text = text.rstrip()
    return f"{text}\n\n{sentence}" if text else sentence


_STYLES: dict[str, PromptStyle] = {}


def register_style(style: PromptStyle, *, replace_existing: bool = False) -> PromptStyle:
    """Add a style to the registry so that ``get_style(style.name)`` finds it."""
    if style.name in _STYLES and not replace_existing:
        raise ValueError(f"a prompt style named {style.name!r} is already registered")
    _STYLES[style.name] = style
    return style


def get_style(style: str | PromptStyle) -> PromptStyle:
    """Look a style up by name (a :class:`PromptStyle` is returned unchanged)."""
    if isinstance(style, PromptStyle):
        return style
    try:
        return _STYLES[style]
    except KeyError:
        known = ", ".join(sorted(_STYLES))
        raise ValueError(f"unknown prompt style {style!r}; known styles: {known}") from None


def list_styles() -> list[PromptStyle]:
    return [_STYLES[name] for name in sorted(_STYLES)]


VANILLA = register_style(
    PromptStyle(
        name="vanilla",
        description="plain chain of thought, no budget (the baseline)",
        template=COT_CUE,
        uses_budget=False,
    )
)
PAPER = register_style(
    PromptStyle(
        name="paper",
        description="the TALE paper's wording, format line first (the reference)",
        template="Let's think step by step and use less than {budget} tokens.",
        format_first=True,
    )
)
TOKENS = register_style(
    PromptStyle(
        name="tokens",
        description="the paper's token wording with the answer format after it",
        template="Let's think step by step and use less than {budget} tokens.",
    )
)
WORDS = register_style(
    PromptStyle(
        name="words",
        description="the budget converted to words, asking for brief shown calculations",
        # On GSM8K train (10 items, Qwen2.5-Coder-1.5B) this wording kept more answers right
        # (5/10, 243 tokens) than "Let's think step by step and answer in at most N words"
        # with the bracket example (3/10, 201 tokens), which often skipped the reasoning.
        template=(
            "Solve this step by step, showing each calculation briefly, in at most {words} words."
        ),
        answer_format="Finish with the final answer in double brackets.",
    )
)
SYSTEM = register_style(
    PromptStyle(
        name="system",
        description="the budget stated in the system message",
        template=(
            "You are a concise problem solver. Keep each answer shorter than {budget} tokens: "
            "show only the steps that are needed."
        ),
        placement="system",
    )
)
DIRECT = register_style(
    PromptStyle(
        name="direct",
        description="the answer only, no reasoning (the lower reference)",
        template="Answer directly, without showing any reasoning.",
        uses_budget=False,
    )
)
CHAIN_OF_DRAFT = register_style(
    PromptStyle(
        name="chain-of-draft",
        description="Chain-of-Draft: a five-word draft per step, answer after ####",
        template=(
            "Think step by step, but only keep a minimum draft for each thinking step, "
            "with 5 words at most."
        ),
        answer_format="Return the answer at the end of the response after a separator ####.",
        uses_budget=False,
    )
)
