"""The app's thread pool: sync handlers, `run_sync`, the bound (503), context, statistics."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Callable

import pytest

from shoal import App, Handler, Request, Response, run_sync
from shoal._threadpool import ThreadPool
from shoal.errors import ServiceUnavailable
from shoal.testing import AsyncTestClient, TestClient

current_user: contextvars.ContextVar[str] = contextvars.ContextVar("current_user")


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `condition` on the loop, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def user_middleware(call_next: Handler) -> Handler:
    async def middleware(request: Request) -> Response:
        current_user.set(request.headers.get("x-user", "nobody"))
        return await call_next(request)

    return middleware


def make_app() -> App:
    app = App(middleware=[user_middleware])

    @app.get("/sync")
    def sync_handler(request: Request) -> dict[str, str]:
        return {
            "thread": threading.current_thread().name,
            "user": current_user.get("unset"),
            "request_id": request.id,
        }

    @app.get("/async-run-sync")
    async def with_run_sync() -> dict[str, str]:
        def blocking(suffix: str, *, prefix: str) -> str:
            name = threading.current_thread().name
            return f"{prefix}{current_user.get('unset')}{suffix}@{name}"

        return {"value": await run_sync(blocking, "!", prefix="hi ")}

    @app.get("/fails")
    def fails() -> None:
        raise RuntimeError("the legacy driver broke")

    return app


def test_sync_handler_runs_in_the_pool_with_the_callers_context() -> None:
    with TestClient(make_app()) as client:
        response = client.get("/sync", headers={"x-user": "ada", "x-request-id": "req-42"})
    assert response.status_code == 200
    body = response.json()
    assert body["thread"].startswith("shoal-sync")
    assert body["user"] == "ada"  # set by middleware on the loop, read in the thread
    assert body["request_id"] == "req-42"


def test_run_sync_uses_the_apps_pool_and_context() -> None:
    app = make_app()
    with TestClient(app) as client:
        response = client.get("/async-run-sync", headers={"x-user": "grace"})
        completed = app.statistics().thread_pool.completed
    assert response.json()["value"].startswith("hi grace!@shoal-sync")
    assert completed == 1


def test_a_failing_sync_handler_is_a_logged_500_and_the_app_serves_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with TestClient(make_app()) as client, caplog.at_level(logging.ERROR, "shoal"):
        failed = client.get("/fails")
        after = client.get("/sync")
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert "legacy driver" not in failed.text  # no internals to the client
    [record] = [r for r in caplog.records if r.exc_info]
    assert "the legacy driver broke" in str(record.exc_info[1] if record.exc_info else "")
    assert after.status_code == 200


async def test_saturation_queues_then_answers_503_with_retry_after() -> None:
    app = App(threads=1, max_queue=1)
    release = threading.Event()

    @app.get("/block")
    def block() -> dict[str, bool]:
        return {"released": release.wait(10)}

    async with AsyncTestClient(app) as client:
        stats = app.thread_pool.statistics
        first = asyncio.ensure_future(client.get("/block"))
        await wait_until(lambda: stats().busy == 1)
        second = asyncio.ensure_future(client.get("/block"))
        await wait_until(lambda: stats().queued == 1)
        third = await client.get("/block")  # no thread, no room in the queue
        waiting = stats()
        release.set()
        done = await asyncio.gather(first, second)
        final = stats()
    assert third.status_code == 503
    assert third.headers["retry-after"] == "1"
    assert third.json()["status"] == 503
    assert (waiting.busy, waiting.queued, waiting.rejected) == (1, 1, 1)
    assert [r.json() for r in done] == [{"released": True}, {"released": True}]
    assert (final.busy, final.queued, final.completed, final.rejected) == (0, 0, 2, 1)


async def test_a_cancelled_caller_keeps_its_place_until_the_thread_is_done() -> None:
    pool = ThreadPool(threads=1, max_queue=0)
    release = threading.Event()
    try:
        call = asyncio.ensure_future(pool.run(release.wait, 10))
        await wait_until(lambda: pool.statistics().busy == 1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # the thread still runs the call: the bound must still count it
        with pytest.raises(ServiceUnavailable):
            await pool.run(time.time)
        release.set()
        await wait_until(lambda: pool.statistics().busy == 0)
        await wait_until(lambda: pool.statistics().queued == 0)
        assert await pool.run(pow, 2, 10) == 1024
    finally:
        release.set()
        pool.close()


@pytest.mark.parametrize(("threads", "max_queue"), [(0, 10), (-1, 0), (4, -1)])
def test_pool_sizes_are_checked(threads: int, max_queue: int) -> None:
    with pytest.raises(ValueError, match="threads >= 1"):
        App(threads=threads, max_queue=max_queue)


def test_statistics_report_the_configured_size() -> None:
    stats = App(threads=7, max_queue=3).statistics().thread_pool
    assert (stats.threads, stats.max_queue, stats.busy, stats.completed) == (7, 3, 0, 0)


async def test_run_sync_outside_a_started_app_says_what_is_wrong() -> None:
    with pytest.raises(RuntimeError, match="needs a started shoal App"):
        await run_sync(time.time)


def test_run_sync_off_the_loop_says_what_to_do_instead() -> None:
    coroutine = run_sync(time.time)
    with pytest.raises(RuntimeError, match="plain def handler"):
        coroutine.send(None)
    coroutine.close()


async def test_run_sync_picks_the_most_recently_started_app_on_the_loop() -> None:
    first, second = App(threads=2), App(threads=3)

    async with AsyncTestClient(first):
        await run_sync(time.time)
        async with AsyncTestClient(second):
            await run_sync(time.time)
        await run_sync(time.time)
    assert first.statistics().thread_pool.completed == 2
    assert second.statistics().thread_pool.completed == 1
