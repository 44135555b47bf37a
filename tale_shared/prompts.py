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

M = TypeVar("M")

COT_CUE = "Let's think step by step."
PAPER_ANSWER_FORMAT = (
    "Please give the response by strictly following this format: [[answer]], "
    "for example: Answer: [[42]]."
)
"""The answer-format line of the TALE paper's own prompts (its released code), for
``vanilla-paper``."""
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
        preamble: fixed instructions (no budget in them) for a system message that comes
            first. A style with a preamble and the budget sentence in the user message keeps
            the start of every prompt the same — instructions, then exemplars — so llama.cpp's
            prefix cache and providers' prompt caching reuse it; only the question and its
            budget are evaluated anew.
        question_prefix: written before the question (``"Q: "`` in the paper's prompt).
        separator: between the question and the instruction lines; ``"\n\n"`` puts them in
            a paragraph of their own, ``"\n"`` gives the paper's one-line-each layout.
        in_conversations: whether an adapter adds the instruction to a conversation the user
            wrote (:func:`conversation_prompt`). ``False`` for the chain-of-thought baselines:
            their cue is part of the benchmark's question format, like the answer-format
            line, so a user's own prompt is sent as written.
    """

    name: str
    description: str
    template: str
    placement: Placement = "user"
    answer_format: str = ANSWER_FORMAT
    format_first: bool = False
    words_per_token: float = WORDS_PER_TOKEN
    uses_budget: bool = field(default=True)
    preamble: str = ""
    question_prefix: str = ""
    separator: str = "\n\n"
    in_conversations: bool = True

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
        """Insert the budget sentence (and the preamble) into a conversation (core messages)."""
        return self.place(
            messages,
            budget,
            role_of=lambda m: m.role,
            merge=lambda m, sentence: Message(m.role, join_instruction(m.content, sentence)),
            new=Message,
        )

    def place(
        self,
        messages: Sequence[M],
        budget: int | None,
        *,
        role_of: Callable[[M], str],
        merge: Callable[[M, str], M],
        new: Callable[[Role, str], M],
    ) -> list[M]:
        """Put this style into a conversation of any message type: the preamble into the
        system message, the budget sentence where :attr:`placement` says. The adapters pass
        how to read a message's role, merge text into one and make a new one (see
        :func:`place_sentence`)."""
        out = list(messages)
        if self.preamble:
            out = place_sentence(
                out, "system", self.preamble, role_of=role_of, merge=merge, new=new
            )
        return place_sentence(
            out,
            self.placement,
            self.instruction(budget),
            role_of=role_of,
            merge=merge,
            new=new,
        )

    def render(
        self, question: str, budget: int | None, *, answer_format: bool = True
    ) -> list[Message]:
        """A complete prompt for ``question`` under ``budget`` tokens."""
        question = self.question_prefix + require_question(question)
        sentence = self.instruction(budget)
        fmt = self.answer_format if answer_format else ""
        system = [Message("system", self.preamble)] if self.preamble else []
        if self.placement == "system":
            system = [Message("system", join_instruction(self.preamble, sentence))]
            parts = [COT_CUE, fmt]
        elif self.preamble:  # cue and format first, the budget last: all that changes at the end
            parts = [" ".join(p for p in (COT_CUE, fmt) if p), sentence]
        else:
            parts = [fmt, sentence] if self.format_first else [sentence, fmt]
        if self.separator == "\n\n":
            split = self.preamble and self.placement == "user"
            lines = parts if split else [" ".join(p for p in parts if p)]
            tail = "\n\n".join(p for p in lines if p)
        else:
            tail = self.separator.join(p for p in parts if p)
        user = f"{question}{self.separator}{tail}" if tail else question
        return [*system, Message("user", user)]

    def with_options(self, **changes: object) -> PromptStyle:
        """A copy with some fields changed (e.g. ``words_per_token`` after calibration)."""
        return replace(self, **changes)  # type: ignore[arg-type]


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


def after_system(
    messages: Sequence[M], turns: Sequence[M], *, role_of: Callable[[M], str]
) -> list[M]:
    """``turns`` (a method's worked examples) after the leading system message, before the
    conversation — where every entry point puts them, as :meth:`PromptStyle.render` does.
    Never in the middle of a transcript: an agent's history (tool results, a ReAct agent's
    observations) stays whole, and the start of every prompt stays the same for prefix caches.

    Example:
        >>> role = {"s": "system", "u": "user", "a": "assistant"}
        >>> after_system(["s:sys", "u:q"], ["u:ex", "a:ex"], role_of=lambda m: role[m[0]])
        ['s:sys', 'u:ex', 'a:ex', 'u:q']
    """
    out = list(messages)
    at = 0
    while at < len(out) and role_of(out[at]) == "system":
        at += 1
    return [*out[:at], *turns, *out[at:]]


def conversation_prompt(
    style: PromptStyle,
    messages: Sequence[M],
    budget: int | None,
    exemplars: Sequence[M] = (),
    *,
    role_of: Callable[[M], str],
    merge: Callable[[M, str], M],
    new: Callable[[Role, str], M],
) -> list[M]:
    """What a method sends for a conversation the user wrote — the one rule of every adapter
    (``TaleRunnable``, ``TaleBudgetMiddleware``, ``TaleLLM``, the query transform).

    The style's instruction goes where its placement says (:meth:`PromptStyle.place`; a
    budget style's only when there is a budget, Chain-of-Draft's and ``direct``'s always, the
    chain-of-thought baselines' never: see :attr:`PromptStyle.in_conversations`), and the
    exemplar turns after the system message (:func:`after_system`). The user's own words are
    kept: the chain-of-thought cue and the answer-format line that :meth:`PromptStyle.render`
    adds to a bare benchmark question are not added here.

    Example:
        >>> as_tuples = dict(role_of=lambda m: m[0], merge=lambda m, s: (m[0], m[1] + " " + s),
        ...                  new=lambda role, s: (role, s))
        >>> conversation_prompt(get_style("system"), [("user", "What is 3 + 5?")], 40,
        ...                     **as_tuples)[0][0]
        'system'
    """
    out = list(messages)
    states = budget is not None if style.uses_budget else style.in_conversations
    if states and (style.preamble or style.instruction(budget)):
        out = style.place(out, budget, role_of=role_of, merge=merge, new=new)
    return after_system(out, exemplars, role_of=role_of)


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
        in_conversations=False,
    )
)
VANILLA_PAPER = register_style(
    PromptStyle(
        name="vanilla-paper",
        description="the TALE paper's own chain-of-thought prompt: Q:, format line, cue",
        template="Let's think step by step:",
        answer_format=PAPER_ANSWER_FORMAT,
        format_first=True,
        question_prefix="Q: ",
        separator="\n",
        uses_budget=False,
        in_conversations=False,
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
CONCISE = register_style(
    PromptStyle(
        name="concise",
        description="fixed system instructions first, the budget last (prefix-cache friendly)",
        preamble="You are a concise problem solver: show only the steps that are needed.",
        template="Keep this answer shorter than {budget} tokens.",
    )
)
TOKENSKIP = register_style(
    PromptStyle(
        name="tokenskip",
        description="TokenSkip: the bare question (its ratio is added by tokenskip@<gamma>)",
        template="",
        answer_format="",
        uses_budget=False,
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
