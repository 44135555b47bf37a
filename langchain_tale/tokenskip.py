"""``TokenSkipRunnable``: ask a TokenSkip-tuned chat model for a compressed CoT at a ratio."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import patch_config
from pydantic import Field

from langchain_tale._caps import with_cap
from langchain_tale._messages import coerce_input
from langchain_tale._planned import ANSWER_TAG, PlannedModelCall, PreparedCall
from tale_shared.answers import extract_answer
from tale_shared.budget import budget_metadata
from tale_shared.caps import cap_from_params
from tale_shared.compression import RATIOS, check_trained_ratio
from tale_shared.methods import TOKENSKIP_STYLE, Method


def _formatted(messages: list[BaseMessage], tokenskip: Method) -> list[BaseMessage]:
    """The messages with the last human message in TokenSkip's layout."""
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if message.type == "human" and isinstance(message.content, str):
            text = tokenskip.question_text(message.content)
            return [*messages[:i], message.model_copy(update={"content": text}), *messages[i + 1 :]]
    raise ValueError("TokenSkip needs a text question in a human message")


class TokenSkipRunnable(PlannedModelCall):
    """A chat model tuned with TokenSkip data (``tale export tokenskip``, ``tale train
    tokenskip``), asked for a CoT compressed to ``gamma``: the question goes out in exactly the
    layout the training data had (:func:`~tale_shared.compression.tokenskip_prompt`, the one
    formatter both use). ``gamma`` must be one of ``trained_ratios``; ``max_tokens`` (when
    given) is scaled by ``gamma`` into the call's cap. The reply carries
    ``response_metadata["tale"]`` with the method, ``gamma`` and the parsed ``answer``; the
    call is traced by :class:`~langchain_tale.TaleTracer` like any other. No budget is
    estimated: the ratio is the budget.

    It runs its call as ``TaleRunnable`` does (the same :class:`PlannedModelCall`: ``invoke``,
    ``ainvoke``, ``stream``, ``astream``, a child run per call) but is not one: it takes no
    method, estimator or style.

    An untuned model reads the separators as noise: this needs a TokenSkip model.

    Example:
        .. code-block:: python

            runnable = TokenSkipRunnable(llm=ChatLocalLlama(model="/models/qwen-tokenskip.gguf"),
                                         gamma=0.6, max_tokens=512)
            runnable.invoke("Natalia sold clips to 48 of her friends ...")
    """

    gamma: float = 0.5
    trained_ratios: tuple[float, ...] = RATIOS
    max_tokens: int | None = Field(default=None, ge=1)
    question_key: str = "question"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["langchain_tale", "tokenskip"]

    def model_post_init(self, context: Any) -> None:
        check_trained_ratio(self.gamma, self.trained_ratios)
        super().model_post_init(context)

    def _prepare(
        self, value: Any, child: RunnableConfig, call_kwargs: dict[str, Any]
    ) -> PreparedCall:
        question, plan = self._plan(value, child, call_kwargs)
        self._announce(plan, question, child)
        return plan

    async def _aprepare(
        self, value: Any, child: RunnableConfig, call_kwargs: dict[str, Any]
    ) -> PreparedCall:
        question, plan = self._plan(value, child, call_kwargs)
        await self._aannounce(plan, question, child)
        return plan

    def _plan(
        self, value: Any, child: RunnableConfig, call_kwargs: dict[str, Any]
    ) -> tuple[str, PreparedCall]:
        """The call in TokenSkip's layout, its cap scaled by ``gamma``."""
        question, messages = coerce_input(value, self.question_key)
        tokenskip = Method(style=TOKENSKIP_STYLE, gamma=self.gamma)
        kwargs = with_cap(call_kwargs, self.llm, tokenskip.answer_cap(self.max_tokens))
        method = tokenskip.spec
        tale = {
            **budget_metadata(method, None, TOKENSKIP_STYLE),  # the ratio is the budget
            "gamma": self.gamma,
            "cap": cap_from_params(kwargs),
        }
        config = patch_config(child)
        config["tags"] = [*config.get("tags", []), ANSWER_TAG]
        config["metadata"] = {**config.get("metadata", {}), "tale": {"method": method}}
        return question, PreparedCall(_formatted(messages, tokenskip), config, kwargs, tale)

    @staticmethod
    def _tag(message: BaseMessage, tale: dict[str, Any]) -> Any:
        if message.type == "ai":  # a whole reply (a stream's chunks are "AIMessageChunk")
            tale = {**tale, "answer": extract_answer(message.text)}
        return PlannedModelCall._tag(message, tale)
