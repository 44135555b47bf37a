"""Cost in USD from a maintained price table (``genai-prices``), with user overrides.

A model the table does not know costs ``None`` — unknown — never a silent $0. Models run by
tale's embedded llama.cpp runtime are named ``local/...`` and cost exactly $0 in API fees.

Example:
    >>> from tale_shared.usage import TokenUsage
    >>> table = PriceTable(overrides={"my-model": ModelPrice(input_per_mtok=1.0,
    ...                                                      output_per_mtok=2.0)})
    >>> table.cost("my-model", TokenUsage(input_tokens=1_000_000, output_tokens=500_000))
    2.0
    >>> table.cost("no-such-model", TokenUsage(input_tokens=10)) is None
    True
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from tale_shared.local.registry import LOCAL_PREFIX
from tale_shared.usage import TokenUsage

logger = logging.getLogger(__name__)


class ModelPrice(BaseModel):
    """A price in USD per million tokens. Reasoning tokens are billed as output tokens
    unless ``reasoning_per_mtok`` is given; input tokens read from a prompt cache as input
    tokens unless ``cached_input_per_mtok`` is given."""

    model_config = ConfigDict(frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    reasoning_per_mtok: float | None = Field(default=None, ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)

    def cost(self, usage: TokenUsage) -> float:
        reasoning_rate = (
            self.output_per_mtok if self.reasoning_per_mtok is None else self.reasoning_per_mtok
        )
        # Providers report reasoning tokens inside output tokens; bill the difference in rate.
        extra = (reasoning_rate - self.output_per_mtok) * usage.reasoning_tokens
        if self.cached_input_per_mtok is not None:
            extra += (self.cached_input_per_mtok - self.input_per_mtok) * usage.cached_input_tokens
        return (
            usage.input_tokens * self.input_per_mtok
            + usage.output_tokens * self.output_per_mtok
            + extra
        ) / 1_000_000


class PriceTable:
    """Looks up the cost of a model call.

    Order: ``overrides`` (exact model name), then ``local/...`` models ($0), then
    ``genai-prices``. Lookups are cached; the class is thread-safe.
    """

    def __init__(
        self,
        overrides: Mapping[str, ModelPrice] | None = None,
        *,
        provider: str | None = None,
    ) -> None:
        self.overrides = dict(overrides or {})
        self.provider = provider
        self._unknown: set[str] = set()
        self._lock = threading.Lock()

    def set_price(self, model: str, price: ModelPrice) -> None:
        with self._lock:
            self.overrides[model] = price
            self._unknown.discard(model)

    def cost(self, model: str | None, usage: TokenUsage) -> float | None:
        """Cost of ``usage`` on ``model`` in USD, or ``None`` when the price is unknown."""
        if not model:
            return None
        override = self.overrides.get(model)
        if override is not None:
            return override.cost(usage)
        if model.startswith(LOCAL_PREFIX):
            return 0.0
        with self._lock:
            if model in self._unknown:
                return None
        try:
            from genai_prices import Usage, calc_price

            calc = calc_price(
                Usage(
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cache_read_tokens=usage.cached_input_tokens or None,
                ),
                model_ref=model,
                provider_id=self.provider,
            )
            return float(calc.total_price)
        except LookupError:
            with self._lock:
                self._unknown.add(model)
            return None
        except Exception as exc:  # a broken price table must not break a query
            logger.warning("no price for %s: %s", model, exc)
            return None


_default_table = PriceTable()


def default_price_table() -> PriceTable:
    """The process-wide table used when none is given."""
    return _default_table
