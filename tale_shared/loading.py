"""Load a core model from a spec string: an embedded model, a GGUF file, an OpenAI-compatible
endpoint, or ``provider:model`` through a framework adapter.

Example:
    .. code-block:: python

        model = load_model("qwen2.5-coder-1.5b")           # the embedded default
        model = load_model("http://127.0.0.1:8000/v1#qwen")  # a served model
        model = load_model("openai:gpt-4o-mini")            # needs tale-reasoning[agents]
"""

from __future__ import annotations

from tale_shared.local.registry import PACKAGED_ADAPTER
from tale_shared.models import ChatModel

MODEL_LOADERS = "tale.model_loaders"
"""The entry-point group through which a framework adapter lends the core its API models
(``langchain_tale`` registers ``provider:model`` through ``init_chat_model``): the core
imports no adapter."""


def _load_api_model(spec: str) -> ChatModel:
    from importlib.metadata import entry_points

    missing = f"{spec} is an API model: pip install 'tale-reasoning[agents]'"
    for entry in entry_points(group=MODEL_LOADERS):
        try:
            loader = entry.load()
        except ImportError as exc:
            raise ImportError(f"{missing} ({exc})") from exc
        return loader(spec)  # type: ignore[no-any-return]
    raise ImportError(missing)


def is_api_model(spec: str) -> bool:
    """Whether ``spec`` names an API model (``provider:model``), not an embedded model name,
    a GGUF path or an OpenAI-compatible URL.

    >>> is_api_model("openai:gpt-4o-mini"), is_api_model("qwen2.5-coder-1.5b")
    (True, False)
    """
    from tale_shared.local.registry import MODELS

    served = spec.startswith(("http://", "https://"))
    return not served and ":" in spec and spec not in MODELS and not spec.endswith(".gguf")


def load_model(
    spec: str,
    threads: int | None = None,
    lora: str | None = PACKAGED_ADAPTER,
    *,
    api_key_env: str | None = "OPENAI_API_KEY",
) -> ChatModel:
    """A core ChatModel: a local model name or GGUF path (``lora``: a llama.cpp LoRA adapter
    GGUF on top; by default the adapter tale ships for the model, if any; ``None``: the base
    model), an OpenAI-compatible endpoint (``http://host:port/v1`` or ``...#MODEL``), or
    ``provider:model`` through LangChain's ``init_chat_model`` (e.g. ``openai:gpt-4o-mini``,
    needs ``tale-reasoning[agents]``). A served model's key comes from the environment
    variable ``api_key_env``, never from the URL."""
    from tale_shared._status import status
    from tale_shared.local import LocalChatModel

    served = spec.startswith(("http://", "https://"))
    api = is_api_model(spec)
    if lora not in (None, PACKAGED_ADAPTER) and (served or api):
        raise ValueError(f"--lora applies to local GGUF models, not {spec}")
    if served:
        from tale_shared.served import ServedModel

        return ServedModel.from_spec(spec, api_key_env=api_key_env)

    if api:
        return _load_api_model(spec)
    model = LocalChatModel(spec, n_threads=threads, lora=lora)
    with status(f"loading {spec}"):
        model.load()
    return model
