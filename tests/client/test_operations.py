"""The client in operations: required upstreams on /readyz, calls on /metrics, client spans."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shoal import App
from shoal.client import AppTransport, Retry, ServiceClient
from shoal.testing import AsyncTestClient
from tests.client import upstream as upstream_module
from tests.servers import free_port


class Users(ServiceClient):
    """The upstream the gateway needs."""


class Recommendations(ServiceClient):
    """An upstream the gateway can do without."""


def gateway(users: Users, recommendations: Recommendations, **options: Any) -> App:
    app = App(stall_threshold=None, **options)
    app.use(users)
    app.use(recommendations)

    @app.get("/hello/{user_id:int}")
    async def hello(user_id: int, users: Users) -> dict[str, Any]:
        return (await users.get(f"/users/{user_id}")).json()  # type: ignore[no-any-return]

    return app


async def test_only_required_upstreams_decide_readiness() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    required = Users("http://users", required=True, transport=AppTransport(upstream_module.app))
    app = gateway(required, Recommendations(nowhere))
    async with AsyncTestClient(app) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {"upstream users"}  # the optional one is not checked

    down = gateway(Users(nowhere, required=True), Recommendations(nowhere))
    async with AsyncTestClient(down) as client:
        refused = await client.get("/readyz")
    assert refused.status_code == 503
    assert refused.json()["checks"]["upstream users"]["status"] == "fail"


async def test_calls_are_on_metrics_by_upstream() -> None:
    users = Users("http://users", transport=AppTransport(upstream_module.app))
    app = gateway(users, Recommendations("http://recommendations", retry=Retry(attempts=1)))
    async with AsyncTestClient(app) as client:
        for user_id in (1, 2, 3):
            assert (await client.get(f"/hello/{user_id}")).status_code == 200
        text = (await client.get("/metrics")).text
    assert 'shoal_client_calls_total{upstream="users"} 3' in text
    assert 'shoal_client_calls_total{upstream="recommendations"} 0' in text
    assert 'shoal_client_attempt_duration_seconds_count{upstream="users"} 3' in text
    assert 'shoal_client_breaker_state{upstream="users",state="closed"} 1' in text
    assert 'shoal_client_breaker_state{upstream="users",state="open"} 0' in text


async def test_each_call_is_a_client_span_and_the_upstream_joins_the_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    users = Users("http://users", transport=AppTransport(upstream_module.app))
    app = gateway(users, Recommendations("http://recommendations"), tracer_provider=provider)

    @app.get("/echo")
    async def echo(users: Users) -> dict[str, Any]:
        return (await users.get("/echo/traced")).json()  # type: ignore[no-any-return]

    async with AsyncTestClient(app) as client:
        seen = (await client.get("/echo")).json()
    spans = exporter.get_finished_spans()
    [server] = [s for s in spans if s.kind is SpanKind.SERVER]
    [call] = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert call.parent is not None and call.parent.span_id == server.context.span_id
    assert (call.name, dict(call.attributes or {})["url.full"]) == (
        "GET",
        "http://users/echo/traced",
    )
    assert dict(call.attributes or {})["http.response.status_code"] == 200
    # the upstream received the client span's own context
    trace_id, span_id = f"{call.context.trace_id:032x}", f"{call.context.span_id:016x}"
    assert seen["traceparent"].startswith(f"00-{trace_id}-{span_id}-")
