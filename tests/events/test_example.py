"""examples/events_service.py (the docs' example) on the real broker, and on memory://."""

from __future__ import annotations

import asyncio
import time

import pytest

from examples import events_service
from shoal.testing import AsyncTestClient


@pytest.mark.parametrize("broker", ["nats", "memory"])
async def test_runs_become_totals(broker: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("nats_url") if broker == "nats" else "memory://example"
    events_service.bus.url = url
    async with AsyncTestClient(events_service.app) as client:
        user = int(time.time() * 1000) % 10**9  # streams outlive a test on the session's server
        for km in (5.0, 10.0, 2.5):
            assert (await client.post("/runs", json={"user": user, "km": km})).status_code == 200
        deadline = time.monotonic() + 15
        while (response := await client.get(f"/users/{user}/totals")).status_code == 404 or (
            response.json()["runs"] < 3
        ):
            assert time.monotonic() < deadline, response.text
            await asyncio.sleep(0.05)
        assert response.json() == {"user": user, "runs": 3, "km": 17.5}
