"""OpenTelemetry tracing, when configured: with OTEL_EXPORTER_OTLP_ENDPOINT set (the
OpenTelemetry SDK's own setting, read with the rest of its OTEL_* variables by its
exporter), each GraphQL operation is traced by strawberry's OpenTelemetry extension
(parse, validate, every resolver) and exported over OTLP/HTTP in batches. Off by
default: nothing is imported or measured. Needs the `tracing` extra
(`pip install loyalty-platform[tracing]`; `make install` includes it)."""

from __future__ import annotations

from api.settings import SettingsError

_configured = False


def configure_tracing(service_name: str = "loyalty") -> None:
    """Install the process's tracer provider with the OTLP exporter (once per process)."""
    global _configured
    if _configured:
        return
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise SettingsError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: pip install 'loyalty-platform[tracing]'"
        ) from None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


def tracing_extension():
    """strawberry's OpenTelemetry extension (a class: strawberry makes one per request)."""
    from strawberry.extensions.tracing import OpenTelemetryExtension

    return OpenTelemetryExtension
