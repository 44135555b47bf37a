"""Which model a name refers to, whatever its spelling.

The same weights reach tale under many names: ``local/qwen2.5-coder-1.5b`` (embedded),
``qwen2.5-coder-1.5b-instruct-q4_k_m.gguf`` (llama-cpp-python's server),
``qwen2.5-coder:1.5b`` (Ollama), ``Qwen/Qwen2.5-Coder-1.5B-Instruct`` (vLLM, Hugging Face).
A profile measured on one of them holds for all: :func:`model_identity` reduces a name to
what decides behaviour — family, parameter count and instruct/base variant — and drops what
does not (provider prefixes, organisation, file extension, quantisation, ``GGUF``).

Example:
    >>> model_identity("Qwen/Qwen2.5-Coder-1.5B-Instruct") == model_identity("qwen2.5-coder:1.5b")
    True
    >>> model_identity("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    ModelIdentity(family='qwen2.5coder', size_b=1.5, variant='instruct')
    >>> model_identity("gpt-4o-mini") is None  # no parameter count in the name: no identity
    True
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

_PROVIDER_PREFIX = re.compile(r"^(?P<provider>[a-z_][a-z_-]*):(?![0-9])")
"""``openai:``, ``ollama:``, ``hosted_vllm:`` — a word with no digit before a colon whose
right side does not start with a digit (an Ollama tag such as ``:1.5b`` does)."""
_SEPARATORS = re.compile(r"[-_\s:]+|(?<!\d)\.|\.(?!\d)")
"""Split on dashes, underscores, colons and dots that are not inside a version (``2.5``)."""
_SIZE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[bm])$")
_INSTRUCT = frozenset({"instruct", "chat", "it", "inst"})
_NOISE = frozenset({"gguf", "ggml", "awq", "gptq", "fp16", "bf16", "f16", "f32", "latest"})
_QUANT = re.compile(r"^(?:q\d+|iq\d+|k|m|s|l|xs|xxs|0|1|f16|int4|int8|w4a16|w8a8)$")


@dataclass(frozen=True)
class ModelIdentity:
    """What decides how a model answers a prompt: family, size (billions) and variant."""

    family: str
    size_b: float
    variant: Literal["instruct", "base"]

    def matches(self, other: ModelIdentity) -> bool:
        return (
            self.family == other.family
            and self.variant == other.variant
            and math.isclose(self.size_b, other.size_b, rel_tol=1e-6)
        )


def model_identity(name: str) -> ModelIdentity | None:
    """The identity of the model called ``name``, or ``None`` when the name gives no family
    and parameter count (API models such as ``gpt-4o-mini``) or names a fine-tune
    (``local/qwen2.5-coder-1.5b+adapter``: a LoRA changes behaviour, so no profile carries
    over).

    The variant is ``base`` when the name says so (``...-base``), or when it is a Hugging Face
    id (``Org/Name``) without an instruct marker (``Qwen/Qwen2.5-Coder-1.5B`` is the base
    model); otherwise ``instruct`` — registry names, Ollama tags and GGUF files of chat models
    name the instruct weights.
    """
    text = name.strip().lower()
    if not text or "+" in text:
        return None
    while match := _PROVIDER_PREFIX.match(text):
        text = text[match.end() :]
    segments = [s for s in re.split(r"[/\\]", text) if s]  # POSIX and Windows paths
    if not segments:
        return None
    is_file = segments[-1].endswith(".gguf") or text.startswith(("/", ".", "~", "\\"))
    is_hub_id = len(segments) >= 2 and not is_file and segments[-2] != "local"
    last = segments[-1].removesuffix(".gguf")
    tokens = [t for t in _SEPARATORS.split(last) if t]
    size_at = next((i for i, t in enumerate(tokens) if _SIZE.match(t)), None)
    if size_at is None or size_at == 0:
        return None
    size_match = _SIZE.match(tokens[size_at])
    assert size_match is not None
    size = float(size_match["n"]) / (1000.0 if size_match["unit"] == "m" else 1.0)
    family = "".join(tokens[:size_at])
    rest = [t for t in tokens[size_at + 1 :] if t not in _NOISE and not _QUANT.match(t)]
    if "base" in rest:
        variant: Literal["instruct", "base"] = "base"
    elif any(t in _INSTRUCT for t in rest) or not is_hub_id:
        variant = "instruct"
    else:
        variant = "base"
    return ModelIdentity(family=family, size_b=size, variant=variant)
