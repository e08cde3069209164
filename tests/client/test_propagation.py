"""A service calling a real upstream while serving a request: deadline, id and trace passed on."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from shoal import App, ConfigurationError
from shoal.client import (
    Retry,
    ServiceClient,
    check_required,
    propagate,
    time_left,
    upstreams,
)
from shoal.testing import AsyncTestClient
from tests.servers import Server, free_port

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Upstream(ServiceClient):
    """The test upstream, as a named client."""


class Other(ServiceClient):
    """A second upstream (the same server, another name)."""


def gateway(url: str, **options: Any) -> tuple[App, Upstream]:
    app = App(stall_threshold=None)
    client = app.use(Upstream(url, **options))

    @app.get("/echo/{key}")
    async def echo(key: str, upstream: Upstream) -> Any:
        return (await upstream.get(f"/echo/{key}")).json()

    @app.get("/twice/{key}")
    async def twice(key: str, upstream: Upstream) -> Any:
        first, second = await asyncio.gather(
            upstream.get(f"/echo/{key}"), upstream.get(f"/echo/{key}")
        )
        return [first.json(), second.json()]

    @app.get("/sleep/{key}")
    async def sleep(key: str, seconds: float, upstream: Upstream) -> Any:
        return (await upstream.get(f"/sleep/{key}", params={"seconds": seconds})).json()

    @app.get("/late/{key}")
    async def late(key: str, upstream: Upstream) -> Any:
        await asyncio.sleep(0.2)  # spends the request's time before calling
        return (await upstream.get(f"/echo/{key}")).json()

    @app.get("/left")
    async def left() -> dict[str, float | None]:
        return {"left": time_left()}

    return app, client


async def upstream_hits(url: str, key: str) -> int:
    async with ServiceClient(url) as client:
        count: int = (await client.get(f"/hits/{key}")).json()["hits"]
        return count


async def test_request_id_and_trace_context_are_passed_on(upstream: Server) -> None:
    app, _ = gateway(upstream.url)
    headers = {"x-request-id": "req-42", "traceparent": TRACEPARENT, "tracestate": "v=1"}
    async with AsyncTestClient(app) as client:
        echo = (await client.get("/echo/a", headers=headers)).json()
        assert (echo["request_id"], echo["traceparent"], echo["tracestate"]) == (
            "req-42", TRACEPARENT, "v=1",
        )  # fmt: skip
        both = (await client.get("/twice/b", headers=headers)).json()
        assert [e["request_id"] for e in both] == ["req-42", "req-42"]
        # no incoming id: the request's own (generated) id goes on; a bad traceparent does not
        echo = (await client.get("/echo/c", headers={"traceparent": "nonsense"})).json()
        assert echo["request_id"] and echo["request_id"] != "req-42"
        assert echo["traceparent"] is None


async def test_the_remaining_time_is_sent_on(upstream: Server) -> None:
    app, _ = gateway(upstream.url)
    async with AsyncTestClient(app) as client:
        echo = (await client.get("/echo/d", headers={"x-request-timeout": "2.5"})).json()
        assert 1.5 < float(echo["timeout"]) <= 2.5
        # without a header: the client's own total timeout (5 s) is the bound
        echo = (await client.get("/echo/e")).json()
        assert 4.0 < float(echo["timeout"]) <= 5.0
        # a malformed header counts as absent
        for bad in ("soon", "-1", "0", "nan", "inf"):
            echo = (await client.get("/echo/f", headers={"x-request-timeout": bad})).json()
            assert 4.0 < float(echo["timeout"]) <= 5.0, bad
        left = (await client.get("/left", headers={"x-request-timeout": "3"})).json()["left"]
        assert 2.0 < left <= 3.0


async def test_a_call_is_cut_at_the_requests_deadline(upstream: Server) -> None:
    app, _ = gateway(upstream.url)
    async with AsyncTestClient(app) as client:
        started = time.monotonic()
        response = await client.get(
            "/sleep/g", params={"seconds": 3}, headers={"x-request-timeout": "0.3"}
        )
        assert time.monotonic() - started < 1.5
        assert response.status_code == 504
        assert response.json()["status"] == 504


async def test_a_call_that_cannot_finish_in_time_is_not_started(upstream: Server) -> None:
    key = uuid.uuid4().hex
    app, client_ = gateway(upstream.url)
    async with AsyncTestClient(app) as client:
        response = await client.get(f"/late/{key}", headers={"x-request-timeout": "0.1"})
        assert response.status_code == 504
        assert client_.statistics().attempts == 0
    assert await upstream_hits(upstream.url, key) == 0


async def test_the_server_side_default_deadline(upstream: Server) -> None:
    app, _ = gateway(upstream.url)
    propagate(app, default_timeout=0.3)
    async with AsyncTestClient(app) as client:
        started = time.monotonic()
        response = await client.get("/sleep/h", params={"seconds": 3})
        assert response.status_code == 504 and time.monotonic() - started < 1.5
        # the default also caps what a caller may ask for
        echo = (await client.get("/echo/i", headers={"x-request-timeout": "60"})).json()
        assert float(echo["timeout"]) <= 0.3


async def test_unhandled_upstream_failures_become_problems(upstream: Server) -> None:
    app = App(stall_threshold=None)
    app.use(Upstream(upstream.url))
    app.use(Other(f"http://127.0.0.1:{free_port()}", retry=Retry(attempts=1)))

    @app.get("/user/{user_id:int}")
    async def user(user_id: int, upstream: Upstream, other: Other) -> Any:
        if user_id == 0:
            return (await other.get("/")).json()
        return (await upstream.get(f"/users/{user_id}")).json()

    async with AsyncTestClient(app) as client:
        assert (await client.get("/user/3")).json() == {"id": 3, "name": "user 3"}
        bad_gateway = await client.get("/user/404")
        assert bad_gateway.status_code == 502
        assert "no such user" not in bad_gateway.text  # the upstream's body is not repeated
        down = await client.get("/user/0")
        assert down.status_code == 503 and down.headers["retry-after"] == "1"
        assert down.headers["content-type"] == "application/problem+json"
        assert [c.name for c in upstreams(app)] == ["upstream", "other"]


async def test_named_clients_are_injected_by_type_and_twins_refused(upstream: Server) -> None:
    app = App(stall_threshold=None)
    a = app.use(Upstream(upstream.url, required=True))
    b = app.use(Other(f"http://127.0.0.1:{free_port()}", required=True))
    seen: list[object] = []

    @app.get("/")
    async def both(upstream: Upstream, other: Other) -> dict[str, str]:
        seen.extend([upstream, other])
        return {"a": upstream.name, "b": other.name}

    async with AsyncTestClient(app) as client:
        assert (await client.get("/")).json() == {"a": "upstream", "b": "other"}
        assert seen == [a, b]
        assert await check_required(app) == {"upstream": True, "other": False}
    with pytest.raises(ConfigurationError, match="one subclass per upstream"):
        app2 = App()
        app2.use(Upstream(upstream.url))
        app2.use(Upstream(upstream.url))


def test_default_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        propagate(App(), default_timeout=0)
