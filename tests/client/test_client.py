"""ServiceClient against a real shoal service on loopback: answers, errors, retries, timeouts."""

from __future__ import annotations

import asyncio
import time
import uuid

import msgspec
import pytest

from shoal.client import (
    Breaker,
    Retry,
    ServiceClient,
    Timeout,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.client.upstream import User
from tests.servers import Server, free_port

NO_BREAKER = Breaker(failures=10_000)


def key() -> str:
    """A fresh counter key on the upstream, so tests do not see each other's hits."""
    return uuid.uuid4().hex


async def hits(client: ServiceClient, name: str) -> int:
    count: int = (await client.get(f"/hits/{name}")).json()["hits"]
    return count


async def test_get_decodes_and_validates_json(upstream: Server) -> None:
    async with ServiceClient(upstream.url) as client:
        response = await client.get("/users/7")
        assert response.status == 200 and response.ok
        assert response.json(type=User) == User(7, "user 7")
        assert response.json() == {"id": 7, "name": "user 7"}
        assert response.headers["content-type"].startswith("application/json")


async def test_error_status_raises_upstream_error_with_the_problem(upstream: Server) -> None:
    async with ServiceClient(upstream.url, name="users") as client:
        with pytest.raises(UpstreamError) as caught:
            await client.get("/users/404")
        error = caught.value
        assert (error.status, error.upstream_status, error.upstream) == (502, 404, "users")
        assert error.upstream_problem["detail"] == "no such user"
        response = await client.get("/users/404", raise_for_status=False)
        assert response.status == 404 and not response.ok
        assert client.statistics().errors == 1


async def test_a_body_of_the_wrong_shape_is_the_upstreams_error(upstream: Server) -> None:
    async with ServiceClient(upstream.url) as client:
        response = await client.get("/text")
        with pytest.raises(UpstreamError) as caught:
            response.json(type=User)
        assert isinstance(caught.value.__cause__, msgspec.ValidationError)


async def test_params_and_headers_are_sent(upstream: Server) -> None:
    async with ServiceClient(upstream.url, headers={"X-Custom": "client"}) as client:
        echo = (await client.get(f"/echo/{key()}", params={"a": "1", "b": ["2", "3"]})).json()
        assert echo["query"] == {"a": "1", "b": "2"}
        assert echo["custom"] == "client"
        headers = {"X-Custom": "call", "X-Request-Timeout": "999"}
        echo = (await client.get(f"/echo/{key()}", headers=headers)).json()
        assert echo["custom"] == "call"  # the call's header replaces the client's
        assert float(echo["timeout"]) <= 5.0  # the time left is computed, never taken as given


async def test_idempotent_calls_are_retried_and_the_server_counts_them(upstream: Server) -> None:
    name = key()
    async with ServiceClient(upstream.url, retry=Retry(attempts=3, backoff=0.01)) as client:
        answer = (await client.get(f"/flaky/{name}", params={"fail": 2})).json()
        assert answer["hits"] == 3  # two 503s, then the answer
        assert await hits(client, name) == 3
        stats = client.statistics()
        assert (stats.calls, stats.attempts, stats.retries) == (2, 4, 2)  # + the /hits call


async def test_retries_stop_after_the_attempts(upstream: Server) -> None:
    name = key()
    async with ServiceClient(upstream.url, retry=Retry(attempts=3, backoff=0.01)) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get(f"/flaky/{name}", params={"fail": 10, "status": 502})
        assert caught.value.reason == "status" and caught.value.status == 503
        assert isinstance(caught.value.__cause__, UpstreamError)
        assert await hits(client, name) == 3


async def test_post_is_not_retried_unless_marked_idempotent(upstream: Server) -> None:
    async with ServiceClient(upstream.url, retry=Retry(backoff=0.01)) as client:
        name = key()
        with pytest.raises(UpstreamUnavailable):
            await client.post(f"/flaky/{name}", params={"fail": 1}, json={"x": 1})
        assert await hits(client, name) == 1

        name = key()
        answer = (await client.post(f"/flaky/{name}?fail=1", json={}, idempotent=True)).json()
        assert answer["hits"] == 2
        seen = (await client.get(f"/hits/{name}")).json()["keys"]
        assert len(seen) == 2 and seen[0] == seen[1] and seen[0]  # one key, on every attempt

        name = key()
        with pytest.raises(UpstreamUnavailable):  # a GET marked not idempotent
            await client.get(f"/flaky/{name}?fail=1", idempotent=False)
        assert await hits(client, name) == 1


async def test_client_errors_are_not_retried(upstream: Server) -> None:
    name = key()
    async with ServiceClient(upstream.url, retry=Retry(backoff=0.01)) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.get(f"/flaky/{name}", params={"fail": 5, "status": 409})
        assert caught.value.upstream_status == 409
        assert await hits(client, name) == 1


async def test_retry_after_is_honoured_up_to_a_bound(upstream: Server) -> None:
    retry = Retry(attempts=3, backoff=0.01, max_retry_after=1.0)
    async with ServiceClient(upstream.url, retry=retry) as client:
        name = key()
        started = time.monotonic()
        params = {"fail": 1, "retry_after": 1, "status": 429}
        assert (await client.get(f"/flaky/{name}", params=params)).json()["hits"] == 2
        assert time.monotonic() - started >= 0.9  # it waited as told
        name = key()
        with pytest.raises(UpstreamUnavailable):  # asked to wait longer than allowed: no retry
            await client.get(f"/flaky/{name}", params={"fail": 1, "retry_after": 60})
        assert await hits(client, name) == 1


async def test_the_retry_budget_bounds_retries_in_an_outage(upstream: Server) -> None:
    name = key()
    retry = Retry(attempts=3, backoff=0.001, budget=0.1, reserve=2)
    async with ServiceClient(upstream.url, retry=retry, breaker=NO_BREAKER) as client:
        for _ in range(20):
            with pytest.raises(UpstreamUnavailable):
                await client.get(f"/flaky/{name}", params={"fail": 1000})
        stats = client.statistics()
        served = await hits(client, name)
    # without a budget: 60 requests; with it, at most reserve + ratio * calls retries
    assert 20 + 2 <= served <= 20 + 2 + 2
    assert stats.retries == served - 20 and stats.retries_denied >= 16


async def test_nothing_listening_is_unavailable_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    retry = Retry(attempts=3, backoff=0.01)
    async with ServiceClient(url, name="gone", retry=retry, breaker=NO_BREAKER) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get("/anything")
        assert (caught.value.reason, caught.value.upstream) == ("connect", "gone")
        assert client.statistics().attempts == 3


async def test_a_slow_upstream_times_out(upstream: Server) -> None:
    name = key()
    async with ServiceClient(upstream.url, timeout=Timeout(total=5.0)) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            await client.get(f"/sleep/{name}", params={"seconds": 3}, timeout=0.2)
        assert time.monotonic() - started < 1.5
        assert (caught.value.reason, caught.value.status) == ("timeout", 504)
        assert await hits(client, name) == 1  # a timeout uses the call's time: no retry
        assert client.statistics().timeouts == 1
        # the client still works after a cancelled attempt
        assert (await client.get("/users/1")).json(type=User).id == 1


async def test_the_breaker_opens_fails_fast_and_recovers(upstream: Server) -> None:
    breaker = Breaker(failures=3, window=30.0, reset_after=0.3)
    control = ServiceClient(upstream.url, name="control")
    client = ServiceClient(upstream.url, retry=Retry(attempts=1), breaker=breaker)
    name = key()
    async with control, client:
        await control.put("/mode", params={"failing": "true"})
        try:
            for _ in range(3):
                with pytest.raises(UpstreamError):
                    await client.get(f"/maybe/{name}")
            assert client.statistics().breaker == "open"
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.get(f"/maybe/{name}")
            assert caught.value.reason == "breaker-open"
            assert await hits(control, name) == 3  # the refused call never left
            await asyncio.sleep(0.35)
            with pytest.raises(UpstreamError):  # the half-open probe fails: open again
                await client.get(f"/maybe/{name}")
            assert client.statistics().breaker == "open"
            assert await hits(control, name) == 4
        finally:
            await control.put("/mode", params={"failing": "false"})
        await asyncio.sleep(0.35)
        assert (await client.get(f"/maybe/{name}")).json()["hits"] == 5  # the probe succeeds
        stats = client.statistics()
        assert (stats.breaker, stats.breaker_opened, stats.rejected) == ("closed", 2, 1)


async def test_keep_alive_connections_are_reused(upstream: Server) -> None:
    async with ServiceClient(upstream.url) as client:
        ports = {(await client.get(f"/echo/{key()}")).json()["port"] for _ in range(20)}
        assert len(ports) == 1
        answers = await asyncio.gather(*(client.get(f"/echo/{key()}") for _ in range(8)))
        ports |= {a.json()["port"] for a in answers}
        assert len(ports) <= 8


async def test_statistics_and_readiness(upstream: Server) -> None:
    async with ServiceClient(upstream.url, name="up", required=True) as client:
        await client.get("/users/1")
        assert await client.check() is True
        stats = client.statistics()
        assert (stats.name, stats.calls, stats.errors, stats.breaker) == ("up", 1, 0, "closed")
        assert stats.latency_count == 1 and 0 < stats.latency_sum == stats.latency_max
        assert stats.latency_buckets[-1] == (10.0, 1)
    async with ServiceClient(f"http://127.0.0.1:{free_port()}") as gone:
        assert await gone.check() is False
    with pytest.raises(RuntimeError, match="not open"):
        await gone.get("/")


async def test_a_connection_lost_before_the_answer_is_retried_only_if_idempotent() -> None:
    connections = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")  # the request arrived; no answer comes
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    retry = Retry(attempts=3, backoff=0.01)
    try:
        async with ServiceClient(f"http://127.0.0.1:{port}", retry=retry) as client:
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.get("/")
            # 3 attempts, each of which aiohttp itself tries twice: it resends an
            # idempotent request at once when the server hangs up without answering
            # (the stale keep-alive connection case); see docs/client.md
            assert caught.value.reason == "connect" and connections == 3 * 2
            with pytest.raises(UpstreamUnavailable):
                await client.post("/", json={})  # it may have been done: never sent twice
            assert connections == 7
    finally:
        server.close()
        await server.wait_closed()


async def test_no_retry_when_the_back_off_would_pass_the_time_left(upstream: Server) -> None:
    name = key()
    retry = Retry(attempts=5, backoff=10.0, max_backoff=10.0)
    async with ServiceClient(upstream.url, retry=retry, breaker=NO_BREAKER) as client:
        client._rng.seed(3)  # a back-off of several seconds, past the call's 1 s
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable):
            await client.get(f"/flaky/{name}", params={"fail": 5}, timeout=1.0)
        assert time.monotonic() - started < 0.9
        assert await hits(client, name) == 1


async def test_raise_for_status_false_still_retries_then_returns_the_answer(
    upstream: Server,
) -> None:
    name = key()
    retry = Retry(attempts=2, backoff=0.01)
    async with ServiceClient(upstream.url, retry=retry, breaker=NO_BREAKER) as client:
        response = await client.get(f"/flaky/{name}", params={"fail": 5}, raise_for_status=False)
        assert response.status == 503 and response.json()["title"] == "failing on purpose"
        assert await hits(client, name) == 2  # retried once, then handed back as it was
        assert client.statistics().errors == 0


async def test_an_open_breaker_makes_the_upstream_not_ready(upstream: Server) -> None:
    breaker = Breaker(failures=1, reset_after=60.0)
    retry = Retry(attempts=1)
    async with ServiceClient(upstream.url, breaker=breaker, retry=retry) as client:
        assert await client.check() is True
        with pytest.raises(UpstreamUnavailable):
            await client.get(f"/flaky/{key()}", params={"fail": 1})
        assert client.statistics().breaker == "open"
        assert await client.check() is False
