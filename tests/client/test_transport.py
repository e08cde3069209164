"""AppTransport: the same client API against another shoal app in process, no socket."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from shoal import App
from shoal.client import (
    AppTransport,
    RawResponse,
    Retry,
    ServiceClient,
    UpstreamError,
    UpstreamTimeout,
)
from shoal.testing import AsyncTestClient
from tests.client import upstream as upstream_module
from tests.client.upstream import User


class Users(ServiceClient):
    """The upstream, called in process."""


async def test_app_transport_goes_through_the_whole_client() -> None:
    transport = AppTransport(upstream_module.app)
    async with Users("http://users", transport=transport, retry=Retry(backoff=0.001)) as client:
        assert (await client.get("/users/5")).json(type=User) == User(5, "user 5")
        with pytest.raises(UpstreamError) as caught:
            await client.get("/users/404")
        assert caught.value.upstream_status == 404
        # retries happen in process too, and the upstream counts them
        answer = (await client.get("/flaky/in-process", params={"fail": 2})).json()
        assert answer["hits"] == 3 and transport.requests == 5
        assert client.statistics().retries == 2


async def test_a_service_test_calls_its_upstream_in_process() -> None:
    app = App(stall_threshold=None)
    users = app.use(Users("http://users.invalid"))

    @app.get("/hello/{user_id:int}")
    async def hello(user_id: int, users: Users) -> dict[str, Any]:
        user = (await users.get(f"/users/{user_id}")).json(type=User)
        echo = (await users.get("/echo/in-process")).json()
        return {"hello": user.name, "request_id": echo["request_id"]}

    with users.using(AppTransport(upstream_module.app)):
        async with AsyncTestClient(app) as client:
            answer = await client.get("/hello/9", headers={"x-request-id": "t-1"})
    assert answer.json() == {"hello": "user 9", "request_id": "t-1"}
    assert not isinstance(users.transport, AppTransport)  # put back after the block


def slow_app() -> App:
    app = App(stall_threshold=None)

    @app.get("/sleep")
    async def sleep(seconds: float) -> dict[str, float]:
        await asyncio.sleep(seconds)
        return {"slept": seconds}

    return app


async def test_each_attempt_is_cut_at_its_own_end_whatever_the_order() -> None:
    async with ServiceClient("http://slow", transport=AppTransport(slow_app())) as client:
        started = time.monotonic()

        async def call(timeout: float) -> float:
            with pytest.raises(UpstreamTimeout):
                await client.get("/sleep", params={"seconds": 5}, timeout=timeout)
            return time.monotonic() - started

        # the later end first, then an earlier one: the earlier must not wait for it
        late, early, quick = await asyncio.gather(call(1.0), call(0.2), call(0.5))
        assert 0.19 < early < quick < late  # each at its own end, not before
        assert quick > 0.49 and late > 0.99
        assert early < 0.9 and late < 2.5  # and not much after (a busy machine's slack)
        assert client.statistics().timeouts == 3
        # a call that finishes in time is not cancelled later, by anyone's timer
        assert (await client.get("/sleep", params={"seconds": 0.01}, timeout=0.3)).ok
        await asyncio.sleep(0.4)


class Buggy:
    """A transport with a bug in its `send` (subclasses say which)."""

    async def open(self, base_url: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


class Broken(Buggy):
    """Its send raises something no client expects."""

    async def send(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
        connect_timeout: float,
    ) -> RawResponse:  # fmt: skip
        raise ValueError("a bug in the transport")


async def test_an_unexpected_error_leaves_no_timer_behind() -> None:
    async with ServiceClient("http://broken", transport=Broken()) as client:
        with pytest.raises(ValueError):
            await client.get("/", timeout=0.1)
        await asyncio.sleep(0.3)  # a timer left behind would cancel this sleep
        assert client._expiry.pending == {}


async def test_a_cancellation_from_outside_is_never_taken_for_a_timeout() -> None:
    async with ServiceClient("http://slow", transport=AppTransport(slow_app())) as client:
        call = asyncio.ensure_future(client.get("/sleep", params={"seconds": 5}, timeout=5))
        await asyncio.sleep(0.1)
        call.cancel()  # the caller went away: the call must end cancelled, not timed out
        with pytest.raises(asyncio.CancelledError):
            await call
        assert client.statistics().timeouts == 0
        assert client.breaker.state == "closed" and not client.breaker.probing


class Stubborn(Buggy):
    """It swallows the first cancellation it gets, and answers."""

    swallowed = False

    async def send(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
        connect_timeout: float,
    ) -> RawResponse:  # fmt: skip
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed = True
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        return RawResponse(200, {}, b"{}")


async def test_a_swallowed_timeout_leaves_no_mark_on_the_task() -> None:
    async with ServiceClient("http://stubborn", transport=Stubborn()) as client:
        assert (await client.get("/", timeout=0.05)).ok  # the transport answered anyway
        assert client._expiry.pending == {} and client._expiry.fired == set()
        # so a later cancellation from outside is the caller's, not a timeout
        call = asyncio.ensure_future(client.get("/", timeout=5))
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert client.statistics().timeouts == 0
