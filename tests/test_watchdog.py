"""The loop-stall watchdog: who held the loop, where, for which request; strict test mode."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from shoal import App, ConfigurationError, Handler, Request, Response, StallReport
from shoal.testing import AsyncTestClient, BlockingError, TestClient
from shoal.watchdog import Watchdog
from tests.apps import watchdog as watchdog_app
from tests.servers import running_server


def line_of(function: Callable[..., object], text: str) -> int:
    """The line number of the first line of `function` that contains `text`."""
    lines, start = inspect.getsourcelines(function)
    return start + next(i for i, line in enumerate(lines) if text in line)


async def sleepy_item(item_id: int) -> dict[str, int]:
    time.sleep(0.3)  # blocks the loop
    return {"item": item_id}


def stalls_in(caplog: pytest.LogCaptureFixture) -> list[StallReport]:
    return [r.stall for r in caplog.records if r.name == "shoal.watchdog" and hasattr(r, "stall")]


def make_app(**options: float | None) -> App:
    app = App(**options)  # type: ignore[arg-type]
    app.add_route("/items/{item_id:int}", sleepy_item)

    @app.get("/awaits")
    async def awaits() -> dict[str, bool]:
        await asyncio.sleep(0.3)  # waits without holding the loop
        return {"ok": True}

    @app.get("/sync-sleeps")
    def sync_sleeps() -> dict[str, bool]:
        time.sleep(0.3)  # in the thread pool: the loop is free
        return {"ok": True}

    return app


def test_a_blocking_handler_is_named_with_its_line_route_and_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    with TestClient(app) as client, caplog.at_level(logging.WARNING, "shoal.watchdog"):
        response = client.get("/items/7", headers={"x-request-id": "trace-me-7"})
        stats = app.statistics().watchdog
    assert response.json() == {"item": 7}
    [report] = stalls_in(caplog)
    assert report.handler == f"{__name__}.sleepy_item"
    assert report.location == f"{__file__}:{line_of(sleepy_item, 'time.sleep(0.3)')}"
    assert (report.method, report.path, report.route) == ("GET", "/items/7", "/items/{item_id:int}")
    assert report.request_id == "trace-me-7"
    assert report.threshold == 0.1
    assert report.duration > report.threshold
    assert "time.sleep(0.3)" in report.stack[-1]  # the innermost frame is the blocking call
    # trimmed to start at the app's entry: none of the loop's or test client's frames
    assert "shoal/app.py" in report.stack[0]
    assert not any("asyncio" in frame or "testing.py" in frame for frame in report.stack)
    message = caplog.records[-1].getMessage()
    assert "sleepy_item" in message and "trace-me-7" in message and "time.sleep(0.3)" in message
    assert (stats.stalls, stats.threshold) == (1, 0.1)
    assert stats.longest == stats.total == report.duration


def test_awaiting_and_sync_handlers_are_not_stalls(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    with TestClient(app) as client, caplog.at_level(logging.WARNING, "shoal.watchdog"):
        assert client.get("/awaits").status_code == 200
        assert client.get("/sync-sleeps").status_code == 200
        stats = app.statistics().watchdog
    assert stalls_in(caplog) == []
    assert stats.stalls == 0


def test_a_generated_request_id_is_reported_when_the_client_sent_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with TestClient(make_app()) as client, caplog.at_level(logging.WARNING, "shoal.watchdog"):
        client.get("/items/1")
    # a loaded machine may add a stall of its own: judge the ones of this request
    reports = [report for report in stalls_in(caplog) if report.path == "/items/1"]
    assert reports
    assert all(r.request_id and r.request_id.count("-") == 1 for r in reports)


def test_a_stall_outside_any_handler_names_the_request_and_route(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def blocking_middleware(call_next: Handler) -> Handler:
        async def middleware(request: Request) -> Response:
            time.sleep(0.3)
            return await call_next(request)

        return middleware

    app = App(middleware=[blocking_middleware])

    @app.get("/users/{name}")
    async def user(name: str) -> dict[str, str]:
        return {"name": name}

    with TestClient(app) as client, caplog.at_level(logging.WARNING, "shoal.watchdog"):
        client.get("/users/ada")
    [report] = stalls_in(caplog)
    assert report.handler is None and report.location is None
    assert (report.path, report.route) == ("/users/ada", "/users/{name}")
    assert "time.sleep(0.3)" in report.stack[-1] and "middleware" in report.stack[-1]


def test_a_higher_threshold_tolerates_a_shorter_hold(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(stall_threshold=5.0)
    with TestClient(app) as client, caplog.at_level(logging.WARNING, "shoal.watchdog"):
        client.get("/items/1")
    assert stalls_in(caplog) == []
    assert app.statistics().watchdog == app.watchdog.statistics()
    assert app.watchdog.statistics().stalls == 0


def watchdog_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "shoal-watchdog"]


def test_the_off_switch_starts_nothing_and_counts_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = len(watchdog_threads())
    app = make_app(stall_threshold=None)
    with TestClient(app) as client, caplog.at_level(logging.WARNING, "shoal.watchdog"):
        during = len(watchdog_threads())
        assert client.get("/items/1").status_code == 200
    assert during == before
    assert stalls_in(caplog) == []
    assert app.statistics().watchdog.stalls == 0
    assert app.statistics().watchdog.threshold is None


def test_the_thread_runs_while_the_app_runs_and_stops_with_it() -> None:
    before = len(watchdog_threads())
    app = make_app()
    with TestClient(app):
        assert len(watchdog_threads()) == before + 1
        assert app.watchdog.running
    assert len(watchdog_threads()) == before
    assert not app.watchdog.running


def test_a_paused_loop_is_not_a_stall(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    with TestClient(app) as client, caplog.at_level(logging.WARNING, "shoal.watchdog"):
        client.get("/awaits")
        time.sleep(0.3)  # the test client's loop is stopped between calls
        client.get("/awaits")
    assert stalls_in(caplog) == []


@pytest.mark.parametrize("threshold", [0, -0.1, float("nan")])
def test_the_threshold_must_be_positive(threshold: float) -> None:
    with pytest.raises(ValueError, match="stall_threshold"):
        Watchdog(threshold)


# -- strict mode -------------------------------------------------------------


def test_forbid_blocking_fails_the_request_naming_the_handler_and_line() -> None:
    with TestClient(make_app(), forbid_blocking=True) as client:
        assert client.get("/awaits").status_code == 200
        assert client.get("/sync-sleeps").status_code == 200
        with pytest.raises(BlockingError) as caught:
            client.get("/items/3")
        assert client.get("/awaits").status_code == 200  # the client is still usable
    error = caught.value
    assert isinstance(error, AssertionError)
    line = line_of(sleepy_item, "time.sleep(0.3)")
    message = str(error)
    assert message.startswith(f"GET /items/3: handler {__name__}.sleepy_item at {__file__}:{line}")
    assert "blocked the event loop" in message and "run_sync" in message
    assert error.report.handler == f"{__name__}.sleepy_item"


async def test_forbid_blocking_in_async_tests() -> None:
    async with AsyncTestClient(make_app(), forbid_blocking=True) as client:
        with pytest.raises(BlockingError, match="sleepy_item"):
            await client.get("/items/3")


def test_forbid_blocking_needs_the_watchdog() -> None:
    with pytest.raises(ConfigurationError, match="stall_threshold=None"):
        TestClient(make_app(stall_threshold=None), forbid_blocking=True)
    client = TestClient(make_app(), forbid_blocking=True)  # not entered: no startup
    try:
        with pytest.raises(RuntimeError, match="once the app has started"):
            client.get("/awaits")
    finally:
        client.close()


# -- on a real server ---------------------------------------------------------


def test_under_shoal_run_the_server_log_names_the_handler_and_line() -> None:
    line = line_of(watchdog_app.blocking_handler, "time.sleep(0.3)")
    path = Path(watchdog_app.__file__).resolve()
    with running_server("granian-rsgi", "tests.apps.watchdog:app") as server:
        blocked = httpx.get(f"{server.url}/blocking", headers={"x-request-id": "e2e-1"})
        deadline = time.monotonic() + 10
        while "e2e-1" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = httpx.get(f"{server.url}/stats").json()
        log = server.output()
    assert blocked.status_code == 200
    # the report is one record: its first line is "<time> WARNING shoal.watchdog [<id>] ..."
    [warning] = [entry for entry in re.split(r"\n(?=\S+Z )", log) if " WARNING " in entry]
    assert "shoal.watchdog [e2e-1] " in warning  # the stalled request's id on the record
    assert "handler tests.apps.watchdog.blocking_handler" in warning
    assert f"at {path}:{line}" in warning
    assert "request GET /blocking, route /blocking, request id e2e-1" in warning
    assert "time.sleep(0.3)" in warning
    assert stats == {"stalls": 1, "loop": "uvloop"}  # granian runs uvloop here
