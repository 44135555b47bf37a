"""The embedded local chat model: a GGUF file run by llama-cpp-python."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import os
import threading
import time
import weakref
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from tale_shared._io import sha256_file
from tale_shared._optional import require
from tale_shared.local.native_probe import check_native_runtime
from tale_shared.local.registry import (
    DEFAULT_LOCAL_MODEL,
    LOCAL_PREFIX,
    PACKAGED_ADAPTER,
    LocalModelError,
    resolve_adapter,
    resolve_model_path,
)
from tale_shared.models import Completion, ModelCallError
from tale_shared.prompts import Message
from tale_shared.usage import TokenUsage

LLAMA_INSTALL = (
    "pip install 'tale-reasoning[local]', or in a checkout `bash scripts/install.sh local` "
    "(builds llama-cpp-python from source without the AMX kernels, ~10 min)"
)


def _import_llama() -> Any:
    return require("llama_cpp", f"the embedded local model needs llama-cpp-python: {LLAMA_INSTALL}")


@dataclass(frozen=True)
class StreamChunk:
    """A piece of streamed text; the last chunk carries the usage and finish reason."""

    text: str
    usage: TokenUsage | None = None
    finish_reason: str | None = None


_LOADED: weakref.WeakSet[LocalChatModel] = weakref.WeakSet()
"""The models holding llama.cpp weights now (closed at interpreter exit)."""


@atexit.register
def close_loaded_models() -> None:
    """Close every loaded embedded model (registered with :mod:`atexit`)."""
    for model in list(_LOADED):
        with contextlib.suppress(Exception):
            model.close()


class LocalChatModel:
    """A local GGUF chat model, deterministic by default (temperature 0, top-k 1).

    Implements the core's :class:`~tale_shared.models.ChatModel` protocol; token usage is the
    runtime's own count with the model's tokenizer. Calls are serialised (llama.cpp contexts
    are not thread-safe); ``acomplete`` runs in a worker thread so the event loop is free.
    ``lora`` applies a llama.cpp LoRA adapter GGUF (``tale train gguf``) on top of the
    unchanged weights; by default (:data:`~tale_shared.local.registry.PACKAGED_ADAPTER`) the
    one tale ships for this model, if any; ``lora=None`` is the base model.

    Example:
        .. code-block:: python

            model = LocalChatModel("smollm2-135m")
            reply = model.complete([Message("user", "Hi")], max_tokens=8)
            reply.usage  # TokenUsage(input_tokens=31, output_tokens=8, ...)
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_LOCAL_MODEL,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        temperature: float = 0.0,
        seed: int = 0,
        default_max_tokens: int = 512,
        lazy: bool = True,
        lora: str | Path | None = PACKAGED_ADAPTER,
        lora_scale: float = 1.0,
    ) -> None:
        self.model = str(model)
        self.lora = resolve_adapter(model, lora)
        self.lora_scale = lora_scale
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.temperature = temperature
        self.seed = seed
        self.default_max_tokens = default_max_tokens
        self._name: str | None = None
        self._path: Path | None = None
        self._llama: Any = None
        self._adapter_digest: str | None = None
        self._lock = threading.RLock()
        if not lazy:
            self.load()

    @property
    def model_name(self) -> str:
        """``local/<name>``, priced at $0 by the core's price table. With a LoRA adapter,
        ``local/<name>+<adapter>@<sha256[:8]>`` (``*<scale>`` when not 1.0): the adapter's
        contents, not only its file name, so that rows made with one adapter are never
        resumed or compared as another's."""
        name = self._name if self._name is not None else self._resolve()[0]
        return LOCAL_PREFIX + name + self._adapter_tag()

    def _adapter_tag(self) -> str:
        if not self.lora:
            return ""
        with self._lock:
            if self._adapter_digest is None and Path(self.lora).is_file():
                self._adapter_digest = sha256_file(self.lora)[:8]
        tag = f"+{Path(self.lora).stem}"
        if self._adapter_digest is not None:  # a missing file is reported when it loads
            tag += f"@{self._adapter_digest}"
        return tag + (f"*{self.lora_scale:g}" if self.lora_scale != 1.0 else "")

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    def _resolve(self) -> tuple[str, Path]:
        if self._path is None or self._name is None:
            self._name, self._path = resolve_model_path(self.model)
        return self._name, self._path

    def load(self) -> LocalChatModel:
        """Resolve the weights (joining split packages on first use) and load them."""
        with self._lock:
            if self._llama is None:
                llama_cpp = _import_llama()
                _, path = self._resolve()
                if self.lora and not Path(self.lora).is_file():
                    raise LocalModelError(f"LoRA adapter {self.lora} not found")
                # a build that dies on this CPU is explained, not a bare "Illegal instruction"
                check_native_runtime(path, n_threads=self.n_threads)
                # llama.cpp's load notices reach Python's stderr through llama-cpp-python's
                # log callback, whose level table predates ggml's (a LoRA adapter's load
                # prints one warning per tensor): kept out of the user's terminal, and shown
                # only when the load fails
                notices = io.StringIO()
                try:
                    with contextlib.redirect_stderr(notices):
                        self._llama = llama_cpp.Llama(
                            model_path=str(path),
                            n_ctx=self.n_ctx,
                            n_threads=self.n_threads,
                            seed=self.seed,
                            verbose=False,
                            lora_path=self.lora,
                            lora_scale=self.lora_scale,
                        )
                except Exception as exc:
                    said = notices.getvalue().strip()[-2000:]
                    raise LocalModelError(
                        f"llama.cpp could not load {path}: {exc}"
                        + (f"\nllama.cpp said:\n{said}" if said else "")
                    ) from exc
                _LOADED.add(self)
        return self

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` (loaded on first access)."""
        return self.load()._llama

    def close(self) -> None:
        """Free the weights and the context now (a later call loads them again). Every
        loaded model is closed this way when the interpreter exits, before the modules
        llama-cpp-python's finaliser needs are torn down: a script ends quietly, without
        ``Exception ignored in: <function Llama.__del__>``."""
        with self._lock:
            llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()
        _LOADED.discard(self)

    def __enter__(self) -> LocalChatModel:
        return self.load()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` with the model's own tokenizer."""
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _params(
        self,
        messages: Sequence[Message],
        max_tokens: int | None,
        *,
        stop: Sequence[str] | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not messages:
            raise ValueError("no messages to send to the model")
        limit = self.default_max_tokens if max_tokens is None else max_tokens
        if limit < 1:
            raise ValueError(f"max_tokens must be positive, got {limit}")
        temp = self.temperature if temperature is None else temperature
        params: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": limit,
            "temperature": temp,
            "top_k": 1 if temp == 0 else 40,
            "seed": self.seed,
        }
        if stop:
            params["stop"] = list(stop)
        if json_schema is not None:  # llama.cpp turns the schema into a grammar
            params["response_format"] = {"type": "json_object", "schema": json_schema}
        return params

    def _generate(self, method: str, **params: Any) -> Completion:
        """One llama.cpp call (``create_chat_completion`` or ``create_completion``),
        serialised, as a :class:`Completion` with the runtime's own token counts."""
        llama = self.llama
        with self._lock:
            before = _evaluated_tokens(llama)
            start = time.perf_counter()
            try:
                response = getattr(llama, method)(**params)
            except Exception as exc:
                raise ModelCallError(f"{self.model_name} failed: {exc}") from exc
            latency = time.perf_counter() - start
            after = _evaluated_tokens(llama)
        choice = response["choices"][0]
        message = choice.get("message")
        usage = response.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        return Completion(
            text=(message.get("content") if message else choice.get("text")) or "",
            usage=TokenUsage(
                input_tokens=prompt_tokens,
                output_tokens=int(usage.get("completion_tokens", 0)),
                cached_input_tokens=reused_prefix(before, after, prompt_tokens),
                source="provider",
            ),
            model=self.model_name,
            latency_s=latency,
            finish_reason=choice.get("finish_reason"),
        )

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        stop: Sequence[str] | None = None,
        temperature: float | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        """One reply; ``stop`` sequences end it, ``temperature`` overrides the model's, and
        ``json_schema`` constrains it to JSON of that schema (a llama.cpp grammar: a forced
        tool call, see :func:`tale_shared.local.tool_layout.call_schema`)."""
        params = self._params(
            messages, max_tokens, stop=stop, temperature=temperature, json_schema=json_schema
        )
        return self._generate("create_chat_completion", **params)

    async def acomplete(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> Completion:
        return await asyncio.to_thread(self.complete, messages, max_tokens=max_tokens)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        stop: Sequence[str] | None = None,
        temperature: float | None = None,
    ) -> Generator[StreamChunk, None, None]:
        """Yield text as it is generated; the final chunk carries the usage.

        llama.cpp reports no usage while streaming, so input tokens are counted by rendering
        the chat template with the model's tokenizer, and output tokens are the generated
        tokens (one per streamed delta, checked against a re-tokenisation of the text).
        """
        params = self._params(messages, max_tokens, stop=stop, temperature=temperature)
        llama = self.llama
        with self._lock:
            pieces: list[str] = []
            deltas = 0
            finish: str | None = None
            for chunk in llama.create_chat_completion(stream=True, **params):
                choice = chunk["choices"][0]
                text = choice.get("delta", {}).get("content") or ""
                finish = choice.get("finish_reason") or finish
                if text:
                    deltas += 1
                    pieces.append(text)
                    yield StreamChunk(text=text)
            output = "".join(pieces)
            usage = TokenUsage(
                input_tokens=self._prompt_tokens(params["messages"]),
                output_tokens=max(deltas, self.count_tokens(output) if output else 0),
                source="provider",
            )
        yield StreamChunk(text="", usage=usage, finish_reason=finish)

    def format_prompt(self, messages: Sequence[Message]) -> str:
        """The prompt text the chat template makes of ``messages``, ready for the reply."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise LocalModelError(f"{self.model_name} has no chat template")
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self.llama.detokenize([self.llama.token_eos()]).decode("utf-8", "ignore"),
            bos_token=self.llama.detokenize([self.llama.token_bos()]).decode("utf-8", "ignore"),
        )
        chat = [{"role": m.role, "content": m.content} for m in messages]
        return str(formatter(messages=cast(Any, chat)).prompt)

    def _prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        try:
            prompt = self.format_prompt([Message(m["role"], m["content"]) for m in messages])  # type: ignore[arg-type]
            return len(self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
        except Exception:
            return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def continue_reply(
        self, messages: Sequence[Message], partial: str, *, max_tokens: int
    ) -> Completion:
        """Continue the assistant's reply ``partial`` to ``messages`` (prefill). llama.cpp
        reuses the evaluated prefix, so repeated continuations of a growing reply (budget
        forcing, early-exit probes) cost only their new tokens. ``usage.input_tokens`` is
        the whole prompt as sent (prefix included)."""
        params = self._params(messages, max_tokens)
        del params["messages"]
        return self._generate(
            "create_completion", prompt=self.format_prompt(messages) + partial, **params
        )

    async def acontinue_reply(
        self, messages: Sequence[Message], partial: str, *, max_tokens: int
    ) -> Completion:
        return await asyncio.to_thread(
            self.continue_reply, messages, partial, max_tokens=max_tokens
        )

    def __repr__(self) -> str:
        return f"LocalChatModel({self.model!r}, n_threads={self.n_threads})"


_SHARED: dict[str, LocalChatModel] = {}
_SHARED_LOCK = threading.Lock()


def _evaluated_tokens(llama: Any) -> list[int]:
    """The token ids llama.cpp holds evaluated in its context (empty if it cannot say)."""
    try:
        return [int(t) for t in llama.input_ids]
    except Exception:  # a runtime without input_ids: no cache figures, never a failed call
        return []


def reused_prefix(before: Sequence[int], after: Sequence[int], prompt_tokens: int) -> int:
    """How many prompt tokens llama.cpp took from its context instead of evaluating them:
    the common start of what it held before the call and the prompt it was sent. A prompt
    held whole still has its last token evaluated again (that refreshes the logits).

    >>> reused_prefix([1, 2, 3, 9], [1, 2, 3, 4, 5, 6], 5)
    3
    >>> reused_prefix([1, 2, 3], [1, 2, 3, 7], 3)
    2
    """
    shared = 0
    for a, b in zip(before, after[:prompt_tokens], strict=False):
        if a != b:
            break
        shared += 1
    return min(shared, max(prompt_tokens - 1, 0))


def shared_local_model(model: str | Path = DEFAULT_LOCAL_MODEL, **kwargs: Any) -> LocalChatModel:
    """The :class:`LocalChatModel` shared per (model, options) in this process; its weights
    load on its first call (its name, adapter digest included, needs no load)."""
    key = repr((str(model), sorted(kwargs.items())))
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = LocalChatModel(model, **kwargs)
        return _SHARED[key]


def load_local_model(model: str | Path = DEFAULT_LOCAL_MODEL, **kwargs: Any) -> LocalChatModel:
    """A loaded :class:`LocalChatModel`, shared per (model, options) in this process."""
    return shared_local_model(model, **kwargs).load()


def local_model_of(options: Any) -> LocalChatModel:
    """The shared model a framework wrapper's fields name (``model``, ``lora``, ``n_threads``,
    ``n_ctx``): ``ChatLocalLlama`` and ``LocalLlamaLLM`` both use it; it loads on first call."""
    return shared_local_model(
        options.model, n_threads=options.n_threads, n_ctx=options.n_ctx, lora=options.lora
    )


__all__ = [
    "LLAMA_INSTALL",
    "LocalChatModel",
    "LocalModelError",
    "StreamChunk",
    "load_local_model",
    "local_model_of",
    "shared_local_model",
]
