"""Per-model defaults: which prompt style a model follows, and its packaged estimator.

A model's profile says which budget wording it actually follows and which method is its
default. Small local models ignore the paper's token wording (``../shared/docs/MEASURED.md``):
the embedded Qwen2.5-Coder-1.5B's built-in profile states the budget in the system message
with the method the benchmark chose, SmolLM2's in words; a model with no profile gets the
paper's ``"paper"`` style. A built-in profile holds for the same model under any name
(:mod:`tale_shared.model_identity`). ``tale calibrate`` measures a model and saves a profile
that takes precedence.

Example:
    >>> profile_for("local/qwen2.5-coder-1.5b").method
    'vanilla+ex3'
    >>> profile_for("gpt-4o-mini").style
    'paper'
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from tale_shared._io import atomic_writer
from tale_shared.estimators.regression import (  # re-exported: their old home
    default_regression_estimator,
    packaged_estimator_path,
)
from tale_shared.local.registry import LOCAL_PREFIX, cache_dir
from tale_shared.methods import Method, parse_method
from tale_shared.model_identity import model_identity
from tale_shared.prompts import PromptStyle, get_style

REFERENCE_STYLE = "paper"


DEFAULT_METHOD = "tale-heuristic"
"""The default method of a model with no profile: the heuristic estimator (no model call)
with the model's style (the paper's wording, which API models follow)."""


class ModelProfile(BaseModel):
    """How to prompt one model: its budget wording and its default method."""

    model: str
    style: str = REFERENCE_STYLE
    method: str = DEFAULT_METHOD
    agent_method: str | None = None
    """The method of one agent step, when the agent benchmark found a better one than
    ``method`` for tool-using runs; ``None``: agent steps use ``method`` too."""
    words_per_token: float | None = Field(default=None, gt=0)
    source: Literal["builtin", "calibrated", "default"] = "default"
    notes: str = ""
    measurements: dict[str, dict[str, float]] = Field(default_factory=dict)


TALE_PT_MODEL = f"{LOCAL_PREFIX}qwen2.5-coder-1.5b+tale-pt@f643e1e8"
"""The default embedded model as it loads by default: the base with the packaged TALE-PT
adapter (``tale_shared/data/adapters/tale-pt.gguf``), named by the adapter's digest."""

BUILTIN_PROFILES: dict[str, ModelProfile] = {
    f"{LOCAL_PREFIX}qwen2.5-coder-1.5b": ModelProfile(
        model=f"{LOCAL_PREFIX}qwen2.5-coder-1.5b",
        style="system",
        method="vanilla+ex3",
        source="builtin",
        notes=(
            "ignores 'less than N tokens' (r=0.27). Chosen by the written rule "
            "(benchmarks/results/default-selection-rule.md) on dev data only: on 200 fresh "
            "GSM8K train items the three concise exemplars with no budget sentence gave "
            "0.42x the stronger vanilla's output tokens at -0.5 points [-7.0, +6.0], the "
            "highest lower bound of the three finalists (no budgeted finalist's bound "
            "cleared -5 points; benchmarks/results/default-selection-confirm.md)"
        ),
    ),
    TALE_PT_MODEL: ModelProfile(
        model=TALE_PT_MODEL,
        style="system",
        method="vanilla",
        source="builtin",
        notes=(
            "the default model with tale's TALE-PT adapter (trained on its own short correct "
            "answers to GSM8K train questions): brief by itself, and it does not follow a "
            "stated budget (Spearman r 0.02 at budgets 25-200), so the default states none. "
            "Chosen by the written rule (benchmarks/results/tale-pt-selection-rule.md) on dev "
            "data only: with the plain prompt, 200 fresh GSM8K train items gave 0.41x the "
            "stronger vanilla's output tokens and 0.47x its cost at +4.0 points [-3.0, +11.5], "
            "and 40 math500-dev items 0.72x tokens at -2.5 points "
            "(benchmarks/results/tale-pt-selection.md)"
        ),
    ),
    f"{LOCAL_PREFIX}smollm2-135m": ModelProfile(
        model=f"{LOCAL_PREFIX}smollm2-135m",
        style="words",
        source="builtin",
        notes="test fixture; follows no wording reliably",
    ),
}


def profiles_dir() -> Path:
    return cache_dir() / "profiles"


def _profile_file(model: str) -> Path:
    return profiles_dir() / (re.sub(r"[^A-Za-z0-9._-]+", "_", model) + ".json")


def save_profile(profile: ModelProfile) -> Path:
    """Save a (calibrated) profile; it overrides the built-in one for that model."""
    path = _profile_file(profile.model)
    with atomic_writer(path) as fh:
        fh.write(profile.model_dump_json(indent=2))
    return path


class BrokenProfileWarning(UserWarning):
    """A saved profile could not be read; the built-in (or default) profile is used."""


_WARNED: set[tuple[str, float]] = set()


def profile_for(model: str | None) -> ModelProfile:
    """The profile of ``model``, first match wins:

    1. the profile ``tale calibrate`` saved for this exact name (it says so in every method
       label it gives; a saved profile that cannot be read is ignored with a
       :class:`BrokenProfileWarning`, once per file version);
    2. the built-in profile of the same model under any name — the same family, size and
       variant (:func:`~tale_shared.model_identity.model_identity`), so
       ``Qwen/Qwen2.5-Coder-1.5B-Instruct`` on vLLM or ``qwen2.5-coder:1.5b`` on Ollama gets
       the embedded ``local/qwen2.5-coder-1.5b``'s profile;
    3. the default: the paper's style, with a note that says how to calibrate the model.

    >>> profile_for("qwen2.5-coder:1.5b").model
    'local/qwen2.5-coder-1.5b'
    >>> profile_for("gpt-4o-mini").source
    'default'
    """
    if model:
        saved = _saved_profile(model)
        if saved is not None:
            return saved
        if model in BUILTIN_PROFILES:
            return BUILTIN_PROFILES[model]
        identity = model_identity(model)
        if identity is not None:
            for name, profile in BUILTIN_PROFILES.items():
                builtin = model_identity(name)
                if builtin is not None and builtin.matches(identity):
                    return profile
    name = model or "unknown"
    return ModelProfile(model=name, notes=default_profile_notes(name))


_PROVIDER_SPEC = re.compile(r"^[a-z_][a-z_-]*:(?![0-9])", re.I)
"""``provider:model`` (``openai:gpt-4o-mini``), not an Ollama tag (``qwen2.5-coder:7b``)."""


def calibrate_command(name: str, spec: str | None = None) -> str:
    """The ``tale calibrate`` command that measures the model called ``name``: with the
    ``--model`` spec it was loaded by (``spec``, what a command line knows), else the spec
    the name implies — an embedded model or GGUF file by its name, an API model as
    ``provider:model``; a bare name may be a served model's, whose URL only its user knows.

    >>> calibrate_command("weird-model-x", "http://127.0.0.1:8000/v1#weird-model-x")
    '`tale calibrate --model http://127.0.0.1:8000/v1#weird-model-x`'
    >>> print(calibrate_command("gpt-4o-mini").replace(" or ", "\\n"))
    `tale calibrate --model URL#gpt-4o-mini` (a served model)
    `tale calibrate --model provider:gpt-4o-mini` (an API model, e.g. openai:gpt-4o-mini)
    """
    from tale_shared._redact import redact
    from tale_shared.local.registry import LOCAL_PREFIX, MODELS

    if spec:
        return f"`tale calibrate --model {redact(spec)}`"
    if name.startswith(LOCAL_PREFIX):
        base, plus, _ = name.removeprefix(LOCAL_PREFIX).partition("+")
        lora = " --lora ADAPTER.gguf" if plus else ""
        return f"`tale calibrate --model {base}{lora}`"
    if name in MODELS or name.lower().endswith(".gguf") or _PROVIDER_SPEC.match(name):
        return f"`tale calibrate --model {name}`"
    if ":" in name:  # an Ollama tag (qwen2.5-coder:7b)
        return f"`tale calibrate --model ollama:{name}`"
    return (
        f"`tale calibrate --model URL#{name}` (a served model) or "
        f"`tale calibrate --model provider:{name}` (an API model, e.g. openai:{name})"
    )


def default_profile_notes(name: str, spec: str | None = None) -> str:
    """What the default profile says of a model that no profile matches, with the command
    that calibrates it (:func:`calibrate_command`)."""
    return (
        f"no profile matches {name!r}: the default (the paper's wording, {DEFAULT_METHOD}); "
        f"measure which wording it follows with {calibrate_command(name, spec)}"
    )


def _saved_profile(model: str) -> ModelProfile | None:
    path = _profile_file(model)
    if not path.is_file():
        return None
    try:
        return ModelProfile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as exc:
        key = (str(path), path.stat().st_mtime)
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(
                f"ignoring the broken saved profile {path} ({str(exc).splitlines()[0]}); "
                "using the built-in profile. Rerun `tale calibrate` or delete the file.",
                BrokenProfileWarning,
                stacklevel=3,
            )
    return None


def profile_label(profile: ModelProfile) -> str:
    """Where a profile came from, as method labels say it: ``saved profile``, ``profile
    local/qwen2.5-coder-1.5b`` (a built-in one, matched by name or identity) or ``no
    profile``."""
    if profile.source == "calibrated":
        return "saved profile"
    if profile.source == "builtin":
        return f"profile {profile.model}"
    return "no profile"


def style_for(model: str | None, style: str | PromptStyle | None = None) -> PromptStyle:
    """``style`` when given, else the style of ``model``'s profile (with its calibrated
    words-per-token conversion, when it has one)."""
    if style is not None:
        return get_style(style)
    profile = profile_for(model)
    chosen = get_style(profile.style)
    if profile.words_per_token:
        chosen = chosen.with_options(words_per_token=profile.words_per_token)
    return chosen


def method_for(model: str | None, method: str | Method = "tale") -> Method:
    """The :class:`~tale_shared.methods.Method` for ``model``: ``"tale"`` is its profile's
    default method; any other spec is parsed with the profile's style as the default style.

    >>> method_for("gpt-4o-mini").name
    'tale (tale-heuristic@paper; no profile)'
    >>> method_for("Qwen/Qwen2.5-Coder-1.5B-Instruct").name
    'tale (vanilla+ex3; profile local/qwen2.5-coder-1.5b)'
    >>> method_for("gpt-4o-mini", "tale-zero-shot").spec
    'tale-zero-shot@paper'
    """
    if isinstance(method, Method):
        return method
    profile = profile_for(model)
    if method.strip().lower() == "tale":
        resolved = parse_method(profile.method, default_style=profile.style)
        return replace(resolved, label=f"tale ({resolved.spec}; {profile_label(profile)})")
    resolved = parse_method(method, default_style=profile.style)
    if profile.source == "calibrated" and resolved.estimator is not None and "@" not in method:
        # the style came from the saved profile: the record says so
        return replace(resolved, label=f"{resolved.spec} (style from the saved profile)")
    return resolved


def prompt_style_for(
    model: str | None,
    method: Method,
    *,
    style: str | PromptStyle | None = None,
    estimator: object | None = None,
) -> str | PromptStyle:
    """The style a call on ``model`` is worded in, for every entry point: ``style`` when
    given; else the method's own — unless an ``estimator`` is given to a method without a
    budget (the embedded model's default ``vanilla+ex3``): then the profile's budget wording,
    so that the budget is stated the way the model follows, not computed and dropped.

    >>> qwen = method_for("local/qwen2.5-coder-1.5b")
    >>> prompt_style_for("local/qwen2.5-coder-1.5b", qwen)
    'vanilla'
    >>> prompt_style_for("local/qwen2.5-coder-1.5b", qwen, estimator="heuristic")
    'system'
    >>> prompt_style_for("gpt-4o-mini", parse_method("tale-heuristic@words"), estimator="fixed:40")
    'words'
    """
    if style is not None:
        return style
    if estimator is None or get_style(method.style).uses_budget:
        return method.style
    return profile_for(model).style


def agent_method_for(model: str | None, method: str | Method = "tale") -> Method:
    """The method of an agent step on ``model``: ``"tale"`` is its profile's agent method
    (its ``method`` unless the profile names a better one for agent steps); any other spec
    is resolved as :func:`method_for` does.

    >>> agent_method_for("gpt-4o-mini").name
    'tale (tale-heuristic@paper; no profile)'
    """
    if isinstance(method, str) and method.strip().lower() == "tale":
        profile = profile_for(model)
        if profile.agent_method:
            resolved = parse_method(profile.agent_method, default_style=profile.style)
            label = f"tale ({resolved.spec}; {profile_label(profile)}, agent steps)"
            return replace(resolved, label=label)
    return method_for(model, method)


__all__ = [
    "BUILTIN_PROFILES",
    "TALE_PT_MODEL",
    "BrokenProfileWarning",
    "ModelProfile",
    "agent_method_for",
    "default_regression_estimator",
    "method_for",
    "packaged_estimator_path",
    "profile_for",
    "profile_label",
    "prompt_style_for",
    "save_profile",
    "style_for",
]
