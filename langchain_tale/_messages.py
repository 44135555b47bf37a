"""Conversions between LangChain messages and the core's messages."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.prompt_values import PromptValue

from tale_shared.prompts import Message, PromptStyle, conversation_prompt, join_instruction


def to_core(messages: Sequence[BaseMessage]) -> list[Message]:
    out = []
    for m in messages:
        role = {"system": "system", "human": "user", "ai": "assistant"}.get(m.type, "user")
        out.append(Message(role, m.text))  # type: ignore[arg-type]
    return out


def to_langchain(messages: Sequence[Message]) -> list[BaseMessage]:
    kinds: dict[str, type[BaseMessage]] = {
        "system": SystemMessage,
        "user": HumanMessage,
        "assistant": AIMessage,
    }
    return [kinds[m.role](content=m.content) for m in messages]


def coerce_input(value: Any, question_key: str) -> tuple[str, list[BaseMessage]]:
    """``(question, messages)`` for a string, messages, a PromptValue or a dict.

    The question is what the estimator sees: the dict's ``question_key``, the string itself,
    or the text of the last human message.
    """
    if isinstance(value, str):
        return value, [HumanMessage(content=value)]
    if isinstance(value, dict):
        if question_key not in value:
            raise ValueError(f"a dict input needs a {question_key!r} key; got keys {list(value)}")
        question = value[question_key]
        if not isinstance(question, str):
            raise TypeError(f"input[{question_key!r}] must be a string")
        if extra := sorted(k for k in value if k != question_key):
            warnings.warn(
                f"TaleRunnable sends the model only input[{question_key!r}]; the keys "
                f"{extra} are not in the prompt. Pass prompt= (a template over them) to use them.",
                stacklevel=4,
            )
        return question, [HumanMessage(content=question)]
    if isinstance(value, PromptValue):
        messages = value.to_messages()
    elif isinstance(value, Sequence):
        from langchain_core.messages import convert_to_messages

        messages = convert_to_messages(value)
    else:
        raise TypeError(
            "TaleRunnable takes a string, a list of messages, a PromptValue or a dict with "
            f"a {question_key!r} key, not {type(value).__name__}"
        )
    humans = [m for m in messages if m.type == "human"]
    if not humans:
        raise ValueError("the input has no human message to budget")
    return humans[-1].text, list(messages)


def method_messages(
    messages: Sequence[BaseMessage],
    style: PromptStyle,
    budget: int | None,
    exemplars: Sequence[Message] = (),
) -> list[BaseMessage]:
    """The method's prompt for a LangChain conversation: the core's one rule
    (:func:`tale_shared.prompts.conversation_prompt`) on LangChain messages — the style's
    sentence where it goes, the exemplar turns after the system message."""

    def merge(message: BaseMessage, sentence: str) -> BaseMessage:
        if isinstance(message.content, str):
            content: Any = join_instruction(message.content, sentence)
        else:  # multimodal content blocks: add a text block
            content = [*message.content, {"type": "text", "text": sentence}]
        return message.model_copy(update={"content": content})

    def new(role: str, sentence: str) -> BaseMessage:
        return SystemMessage(content=sentence) if role == "system" else HumanMessage(sentence)

    return conversation_prompt(
        style,
        messages,
        budget,
        to_langchain(exemplars),
        role_of=lambda m: {"human": "user"}.get(m.type, m.type),
        merge=merge,
        new=new,
    )
