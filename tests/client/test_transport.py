"""AppTransport: the same client API against another shoal app in process, no socket."""

from __future__ import annotations

from typing import Any

import pytest

from shoal import App
from shoal.client import AppTransport, Retry, ServiceClient, UpstreamError
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
