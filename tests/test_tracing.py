"""OpenTelemetry spans, read back from the SDK's in-memory exporter, through every entry point."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from granian.constants import Interfaces
from granian.server.embed import Server
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from shoal import App
from shoal.testing import TestClient
from shoal.tracing import configured_tracer
from tests.apps.operations import build
from tests.servers import free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    memory.shutdown()


def traced_app(exporter: InMemorySpanExporter) -> App:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = build(tracer_provider=provider)

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("boom")

    return app


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


def check_request_span(span: ReadableSpan, request_id: str) -> None:
    assert span.name == "GET /items/{item_id:int}"
    assert f"{span.context.trace_id:032x}" == TRACE_ID  # joined the caller's trace
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "00f067aa0ba902b7"
    attributes = dict(span.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.route"] == "/items/{item_id:int}"
    assert attributes["url.path"] == "/items/5"
    assert attributes["http.response.status_code"] == 200
    assert attributes["shoal.request_id"] == request_id


def test_spans_in_process_with_the_database_as_a_child(exporter: InMemorySpanExporter) -> None:
    with TestClient(traced_app(exporter)) as client:
        response = client.get("/items/5", headers={"traceparent": PARENT})
        client.get("/rows")
        client.get("/livez")
        client.get("/fail")
        client.get("/nowhere")
    spans = server_spans(exporter)
    check_request_span(spans[0], response.headers["x-request-id"])
    rows, failed, unmatched = spans[1:]
    assert len(spans) == 4  # the probe is not traced
    [query] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert query.parent is not None and query.parent.span_id == rows.context.span_id
    assert query.name == "SELECT"
    assert dict(query.attributes or {}) == {
        "db.system.name": "sqlite",
        "db.namespace": "sqlite",
        "db.query.text": "SELECT 1 + 1",
    }
    assert failed.status.status_code is StatusCode.ERROR
    assert (unmatched.name, dict(unmatched.attributes or {})["http.response.status_code"]) == (
        "GET",
        404,
    )


async def test_spans_through_the_asgi_adapter(exporter: InMemorySpanExporter) -> None:
    app = traced_app(exporter)
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/items/5", headers={"traceparent": PARENT})
    finally:
        await app.shutdown()
    [span] = server_spans(exporter)
    check_request_span(span, response.headers["x-request-id"])


async def test_spans_through_the_rsgi_adapter_on_a_real_socket(
    exporter: InMemorySpanExporter,
) -> None:
    app = traced_app(exporter)
    port = free_port()
    server = Server(app, port=port, interface=Interfaces.RSGI, log_enabled=False)
    await app.startup()  # embedded in this loop: the lifespan is ours to run
    serving = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):  # until granian listens
                try:
                    response = await client.get(
                        f"http://127.0.0.1:{port}/items/5", headers={"traceparent": PARENT}
                    )
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
    finally:
        server.stop()  # type: ignore[no-untyped-call]
        await serving
        await app.shutdown()
    [span] = server_spans(exporter)
    check_request_span(span, response.headers["x-request-id"])
    assert dict(span.attributes or {})["client.address"] == "127.0.0.1"


def test_without_a_configured_provider_nothing_is_traced() -> None:
    assert configured_tracer() is None  # no global SDK provider in this test session
    app = App()
    with TestClient(app):
        assert app.compose() == app._dispatch  # no tracing wrapper on the request path
