"""shoal._expiry: many waits bounded by one loop timer, each as asyncio.timeout would."""

from __future__ import annotations

import asyncio
import time

import pytest

from shoal._expiry import Expiry


async def started() -> Expiry:
    expiry = Expiry()
    expiry.start(asyncio.get_running_loop())
    return expiry


async def test_a_wait_that_ends_in_time_returns_its_result_and_leaves_nothing() -> None:
    expiry = await started()
    assert await expiry.wait(asyncio.sleep(0.01, "done"), time.monotonic() + 1) == "done"
    assert expiry.pending == {} and expiry.fired == set()
    await asyncio.sleep(0)  # the timer set for the end is still armed, for nothing
    expiry.close()
    assert expiry.handle is None


async def test_waits_end_each_at_its_own_end_with_one_timer() -> None:
    expiry = await started()

    async def timed(seconds: float) -> float:
        begun = time.monotonic()
        with pytest.raises(TimeoutError):
            await expiry.wait(asyncio.sleep(10), begun + seconds)
        return time.monotonic() - begun

    late, early = await asyncio.gather(timed(0.4), timed(0.1))
    assert 0.09 < early < 0.35 and 0.39 < late < 1.5  # the earlier end moved the timer
    assert expiry.pending == {} and expiry.fired == set()


async def test_a_cancellation_from_outside_is_not_a_timeout() -> None:
    expiry = await started()
    waiting = asyncio.ensure_future(expiry.wait(asyncio.sleep(10), time.monotonic() + 5))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert expiry.pending == {} and expiry.fired == set()


async def test_a_wait_needs_a_started_expiry() -> None:
    sleeping = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="must run in an asyncio task"):
        await Expiry().wait(sleeping, time.monotonic() + 1)
    sleeping.close()
