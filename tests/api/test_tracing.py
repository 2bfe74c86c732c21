"""OpenTelemetry tracing (api/tracing.py): off unless OTEL_EXPORTER_OTLP_ENDPOINT is set;
on, a GraphQL request is traced (strawberry's OpenTelemetry extension) through the
process's tracer provider."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import api.tracing
from api.app import create_app
from api.settings import load_settings
from tests.api.conftest import Api, data

EXPORTED = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def in_memory_provider():
    """The test's provider stands for the OTLP one (a process has one provider)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTED))
    trace.set_tracer_provider(provider)
    yield


async def served(settings) -> list[str]:
    EXPORTED.clear()
    app = create_app(settings, manage_orm=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        result = await Api(client=client, settings=settings).gql("query OfficeList { branches { code } }", as_=("admin",))
    assert data(result)["branches"]
    return [span.name for span in EXPORTED.get_finished_spans()]


async def test_a_request_is_traced_when_configured(db, monkeypatch):
    monkeypatch.setattr(api.tracing, "_configured", True)  # keep the in-memory provider
    names = await served(replace(db, tracing=True))
    assert names == ["GraphQL Parsing", "GraphQL Validation", "GraphQL Resolving: branches", "GraphQL Query: OfficeList"]


async def test_nothing_is_traced_by_default(db):
    assert await served(db) == []


def test_the_standard_endpoint_setting_turns_it_on():
    assert load_settings(environ={}, dotenv=None).tracing is False
    assert load_settings(environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, dotenv=None).tracing is True
