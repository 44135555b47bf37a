"""Query records as OpenTelemetry spans, following the GenAI semantic conventions.

Each finished query becomes a ``tale.query`` span (budget, estimator, style, method, totals)
with one child span per model call, named ``chat <model>`` with ``gen_ai.operation.name``,
``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` / ``output_tokens`` and
``tale.role`` (``estimator`` or ``answer``). Call spans are laid end to end from the query's
start (the tracers keep each call's duration, not its start). Question and answer text are
left out unless ``record_content=True`` (the conventions make content opt-in).

Extra ``otel``: ``pip install 'tale-reasoning[otel]'``. Send to any backend with the SDK's
exporters, e.g. OTLP::

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    handler = TaleCallbackHandler()          # or TaleTracer()
    handler.ledger.add_listener(OTelExporter(provider))
"""

from __future__ import annotations

from typing import Any

from tale_shared._optional import require
from tale_shared.usage import CallRecord, QueryRecord

OTEL_INSTALL = "pip install 'tale-reasoning[otel]'  (opentelemetry-api and opentelemetry-sdk)"


def _trace() -> Any:
    return require("opentelemetry.trace", f"OpenTelemetry export needs {OTEL_INSTALL}")


def _set(span: Any, attributes: dict[str, Any]) -> None:
    span.set_attributes({k: v for k, v in attributes.items() if v is not None})


class OTelExporter:
    """Turns each :class:`~tale_shared.usage.QueryRecord` into spans; use it as a ledger
    listener (``tracer.ledger.add_listener(OTelExporter())``) or call it on records.

    Example:
        .. code-block:: python

            exporter = OTelExporter(provider)   # the global provider when None
            with tale_usage() as tracer:
                tracer.ledger.add_listener(exporter)
                chain.invoke({"question": "..."})
    """

    def __init__(self, tracer_provider: Any = None, *, record_content: bool = False) -> None:
        trace = _trace()
        self._trace = trace
        self._tracer = trace.get_tracer("tale", tracer_provider=tracer_provider)
        self.record_content = record_content

    def __call__(self, record: QueryRecord) -> None:
        trace = self._trace
        start = int(record.started_at.timestamp() * 1e9)
        end = start + int(record.latency_s * 1e9)
        query = self._tracer.start_span(
            "tale.query", start_time=start, kind=trace.SpanKind.INTERNAL
        )
        _set(
            query,
            {
                "tale.query_id": record.query_id,
                "tale.budget": record.budget,
                "tale.estimator": record.estimator,
                "tale.style": record.style,
                "tale.method": record.method,
                "tale.cost_usd": record.cost_usd,
                "tale.cap_exceeded": record.cap_exceeded,
                "gen_ai.usage.input_tokens": record.usage.input_tokens,
                "gen_ai.usage.output_tokens": record.usage.output_tokens,
                "tale.question": record.question if self.record_content else None,
                "tale.answer": record.answer if self.record_content else None,
            },
        )
        if record.error:
            query.set_status(trace.Status(trace.StatusCode.ERROR, record.error))
        context = trace.set_span_in_context(query)
        at = start
        for call in record.calls:
            at = self._call_span(call, at, context)
        query.end(end_time=max(end, at))

    def _call_span(self, call: CallRecord, start: int, context: Any) -> int:
        trace = self._trace
        end = start + int(call.latency_s * 1e9)
        span = self._tracer.start_span(
            f"chat {call.model}" if call.model else "chat",
            context=context,
            start_time=start,
            kind=trace.SpanKind.CLIENT,
        )
        _set(
            span,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": call.model,
                "gen_ai.response.model": call.model,
                "gen_ai.usage.input_tokens": call.usage.input_tokens,
                "gen_ai.usage.output_tokens": call.usage.output_tokens,
                "tale.role": call.role,
                "tale.usage_source": call.usage.source,
                "tale.cost_usd": call.cost_usd,
                "tale.cap": call.cap,
                "tale.cap_exceeded": call.cap_exceeded,
            },
        )
        if call.error:
            span.set_status(trace.Status(trace.StatusCode.ERROR, call.error))
        span.end(end_time=end)
        return end
