"""Any OpenAI-compatible endpoint (vLLM, llama.cpp's server, TGI, hosted APIs) as a core
:class:`~tale_shared.models.ChatModel`, for the research tools that run many calls.

Sends ``max_tokens`` (what compatible servers read), takes usage from the reply, and retries
429 and 5xx replies and connection errors — one retry policy (tenacity: exponential backoff
with jitter; a ``Retry-After`` header wins, clamped to ``[0, max_retry_after_s]``), the only
retry layer between a caller and the server. One pooled HTTP client per thread-safe sync use
and one per event loop. A reply without ``usage`` is counted with tiktoken and marked
``source="counted"``. Safe to call from many threads or tasks at once:
``tale bench``, ``tale search`` and ``tale calibrate`` keep ``--concurrency N`` requests in
flight.

Example:
    .. code-block:: python

        model = ServedModel("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-Coder-1.5B-Instruct")
        model.complete([Message("user", "What is 2 + 3?")], max_tokens=32).usage
        # or: tale bench --model http://127.0.0.1:8000/v1#Qwen/... --concurrency 16
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from tale_shared._redact import redact
from tale_shared.models import Completion, ModelCallError, normalize_finish_reason
from tale_shared.prompts import Message
from tale_shared.tokens import count_texts, get_token_counter
from tale_shared.usage import TokenUsage

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
"""Where an OpenAI-compatible client looks for its key when none is given."""


class _Retryable(Exception):
    """A reply to retry (429, 5xx), with the server's ``Retry-After`` if it sent one."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = response.headers.get("retry-after")


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


async def _asleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class ServedModel:
    """An OpenAI-compatible chat completions endpoint; temperature 0 by default.

    The key is sent as a bearer token: ``api_key``, else the environment variable named by
    ``api_key_env`` (``OPENAI_API_KEY`` by default, as OpenAI's own clients read it; ``None``:
    send none). Never put it in the URL: a URL is printed in messages and written in rows
    (tale redacts a user, password or ``api_key``/``token`` parameter it finds there, but the
    server's own logs keep them).
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str | None = DEFAULT_API_KEY_ENV,
        temperature: float = 0.0,
        timeout_s: float = 600.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_retry_after_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.display_url = redact(self.base_url)
        """The URL as messages show it (credentials replaced by ``***``)."""
        if api_key is None and api_key_env:
            api_key = os.environ.get(api_key_env) or None
        self.temperature = temperature
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_retry_after_s = max_retry_after_s
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=self._headers, timeout=timeout_s, transport=transport)
        self._timeout_s = timeout_s
        self._async_transport = async_transport
        self._lock = threading.Lock()
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._model = model or self._first_model()

    @classmethod
    def from_spec(cls, spec: str, **kwargs: Any) -> ServedModel:
        """``URL`` or ``URL#MODEL`` (``http://127.0.0.1:8000/v1#qwen``)."""
        url, _, model = spec.partition("#")
        return cls(url, model or None, **kwargs)

    @property
    def model_name(self) -> str:
        return self._model

    def _first_model(self) -> str:
        response = self._send(lambda: self._client.get(f"{self.base_url}/models"))
        try:
            body = response.json()
        except ValueError:
            body = None
        models = body.get("data") if isinstance(body, dict) else None
        first = models[0] if isinstance(models, list) and models else None
        if not isinstance(first, dict) or not first.get("id"):
            what = "no model" if not models else "a model list without ids"
            raise ModelCallError(
                f"{self.display_url}/models lists {what}; name the model: {self.display_url}#MODEL"
            )
        return str(first["id"])

    def _body(self, messages: Sequence[Message], max_tokens: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": self.temperature,
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return body

    # -- one retry policy, sync and async ---------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        """Seconds before the next try: the server's ``Retry-After`` (seconds) clamped to
        ``[0, max_retry_after_s]`` — a negative one is read as "now", a day-long one waits
        ``max_retry_after_s`` — else exponential backoff with jitter."""
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _Retryable) and error.retry_after is not None:
            try:
                wanted = float(error.retry_after)
            except ValueError:
                wanted = math.nan
            if math.isfinite(wanted):
                return min(max(wanted, 0.0), self.max_retry_after_s)
        attempt = max(0, state.attempt_number - 1)
        return float(self.backoff_s * (2**attempt) * (0.5 + random.random()))

    def _policy(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.max_retries + 1),
            "wait": self._wait,
            "retry": retry_if_exception_type((_Retryable, httpx.TransportError)),
            "reraise": True,
        }

    def _checked(self, response: httpx.Response) -> httpx.Response:
        """The reply to keep; raises :class:`_Retryable` for one to retry, and
        :class:`ModelCallError` for a client error (never retried)."""
        if response.status_code in RETRY_STATUS:
            raise _Retryable(response)
        if response.is_error:
            raise ModelCallError(redact(f"{self.display_url}: {response.text[:300]}"))
        return response

    def _failed(self, exc: Exception) -> ModelCallError:
        if isinstance(exc, _Retryable):
            return ModelCallError(
                f"{self.display_url}: still failing after {self.max_retries} retries "
                f"(HTTP {exc.response.status_code})"
            )
        return ModelCallError(redact(f"{self.display_url}: {exc!r}"))

    def _send(self, call: Callable[[], httpx.Response]) -> httpx.Response:
        try:
            for attempt in Retrying(sleep=_sleep, **self._policy()):
                with attempt:
                    return self._checked(call())
        except (_Retryable, httpx.TransportError) as exc:
            raise self._failed(exc) from exc
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    def _async_client(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop (connections belong to a loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._aclients.get(loop)
            if client is None or client.is_closed:
                client = httpx.AsyncClient(
                    headers=self._headers,
                    timeout=self._timeout_s,
                    transport=self._async_transport,
                    limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
                )
                self._aclients[loop] = client
            return client

    async def _asend(self, body: dict[str, Any]) -> httpx.Response:
        url = f"{self.base_url}/chat/completions"
        client = self._async_client()
        try:
            async for attempt in AsyncRetrying(sleep=_asleep, **self._policy()):
                with attempt:
                    return self._checked(await client.post(url, json=body))
        except (_Retryable, httpx.TransportError) as exc:
            raise self._failed(exc) from exc
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    def close(self) -> None:
        """Close the pooled HTTP clients (the async ones of loops that are still open)."""
        self._client.close()
        with self._lock:
            clients = list(self._aclients.items())
            self._aclients.clear()
        for loop, client in clients:
            if not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(client.aclose())

    def _reply(self, response: httpx.Response) -> dict[str, Any]:
        """The reply's JSON object; :class:`ModelCallError` for a body that is not one."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            what = "not JSON" if data is None else f"a JSON {type(data).__name__}"
            raise ModelCallError(
                f"{self.display_url}: malformed chat completion (the body is {what}, not an object)"
            )
        return data

    def _completion(
        self, data: dict[str, Any], started: float, messages: Sequence[Message]
    ) -> Completion:
        choice, text = _first_choice(data, self.display_url)
        usage = _reported_usage(data.get("usage"))
        if usage is None:  # no usable numbers: count, and say so
            counter = get_token_counter()
            n_in, method = count_texts(counter, (m.content for m in messages))
            n_out, _ = count_texts(counter, [text])
            usage = TokenUsage(
                input_tokens=n_in, output_tokens=n_out, source="counted", counter=method
            )
        model = data.get("model")
        return Completion(
            text=text,
            usage=usage,
            model=model if isinstance(model, str) and model else self._model,
            latency_s=time.perf_counter() - started,
            finish_reason=normalize_finish_reason(choice.get("finish_reason")),
        )

    def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None) -> Completion:
        started = time.perf_counter()
        body = self._body(messages, max_tokens)
        url = f"{self.base_url}/chat/completions"
        response = self._send(lambda: self._client.post(url, json=body))
        return self._completion(self._reply(response), started, messages)

    async def acomplete(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> Completion:
        started = time.perf_counter()
        response = await self._asend(self._body(messages, max_tokens))
        return self._completion(self._reply(response), started, messages)


def _first_choice(data: dict[str, Any], where: str) -> tuple[dict[str, Any], str]:
    """The first choice of a chat completion and its text; :class:`ModelCallError` naming
    what is wrong with a reply that has none. ``content`` may be a string or a list of parts
    (``{"type": "text", "text": ...}``, a valid OpenAI shape): the text parts are joined."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        got = "missing" if choices is None else f"a {type(choices).__name__}"
        if isinstance(choices, list):
            got = "empty" if not choices else f"a list whose first entry is {choices[0]!r:.40}"
        raise ModelCallError(
            f"{where}: malformed chat completion (choices is {got}, not a list of objects)"
        )
    choice = choices[0]
    message = choice.get("message")
    if message is None:
        message = {}
    if not isinstance(message, dict):
        raise ModelCallError(
            f"{where}: malformed chat completion (message is a {type(message).__name__}, "
            "not an object)"
        )
    content = message.get("content")
    if content is None:
        content = choice.get("text")  # a completions-style choice
    return choice, _content_text(content, where)


def _content_text(content: object, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    raise ModelCallError(
        f"{where}: malformed chat completion (content is a {type(content).__name__})"
    )


def _count(value: object) -> int | None:
    """A token count as a provider reports it: a whole number of at least 0, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


def _reported_usage(reported: object) -> TokenUsage | None:
    """The provider's usage when it gives both numbers (``prompt_tokens`` and
    ``completion_tokens``, whole and not negative); ``None`` — count with the tokenizer —
    when it sent none, only a total, nulls, negative numbers or not an object."""
    if not isinstance(reported, dict):
        return None
    n_in = _count(reported.get("prompt_tokens"))
    n_out = _count(reported.get("completion_tokens"))
    if n_in is None or n_out is None:
        return None
    details = reported.get("completion_tokens_details")
    reasoning = _count(details.get("reasoning_tokens")) if isinstance(details, dict) else None
    cached_details = reported.get("prompt_tokens_details")
    cached = (
        _count(cached_details.get("cached_tokens")) if isinstance(cached_details, dict) else None
    )
    return TokenUsage(
        input_tokens=n_in,
        output_tokens=n_out,
        reasoning_tokens=min(reasoning or 0, n_out),
        cached_input_tokens=min(cached or 0, n_in),
        source="provider",
    )
