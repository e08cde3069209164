"""Background tasks: after the response, in order, logged with the request id, drained."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples import background_tasks
from shoal import App, BackgroundTasks, EventSourceResponse, Request, StreamingResponse, background
from shoal.testing import TestClient
from tests.servers import running_server


def test_tasks_run_in_order_after_the_response_in_process() -> None:
    app = App()
    order: list[str] = []
    threads: list[str] = []

    def blocking(name: str) -> None:
        threads.append(threading.current_thread().name)
        order.append(name)

    async def on_loop(name: str, *, suffix: str) -> None:
        order.append(name + suffix)

    @app.post("/work")
    async def work(tasks: BackgroundTasks) -> dict[str, Any]:
        tasks.add(blocking, "one")
        tasks.add(on_loop, "two", suffix="!")
        tasks.add(blocking, "three")
        order.append("handler")
        return {"queued": len(tasks)}

    @app.get("/nothing")
    def nothing(tasks: BackgroundTasks) -> dict[str, bool]:  # a def handler, no task added
        return {"ok": True}

    with TestClient(app) as client:
        response = client.post("/work")
        assert response.json() == {"queued": 3}
        assert response.headers["content-length"] == str(len(response.content))
        assert order == ["handler", "one", "two!", "three"]
        assert all(name != threading.current_thread().name for name in threads)
        head = client.head("/work")  # HEAD is not routed to POST: 405, no task
        assert head.status_code == 405
        assert client.get("/nothing").json() == {"ok": True}
    assert order == ["handler", "one", "two!", "three"]


def test_head_keeps_the_length_and_runs_the_tasks() -> None:
    app = App()
    ran: list[str] = []

    @app.get("/page")
    async def page(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add(ran.append, "counted")
        return {"page": "x" * 100}

    with TestClient(app) as client:
        get = client.get("/page")
        head = client.head("/page")
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert ran == ["counted", "counted"]


def test_streams_start_their_tasks_when_they_end() -> None:
    app = App()
    events: list[str] = []

    @app.get("/stream")
    async def stream(tasks: BackgroundTasks) -> StreamingResponse:
        async def chunks() -> Any:
            for i in range(3):
                events.append(f"chunk {i}")
                yield f"{i}\n"

        tasks.add(events.append, "task")
        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/sse")
    async def sse(tasks: BackgroundTasks) -> EventSourceResponse:
        async def source() -> Any:
            yield "only"

        tasks.add(events.append, "sse task")
        return EventSourceResponse(source())

    with TestClient(app) as client:
        assert client.get("/stream").text == "0\n1\n2\n"
        assert client.get("/sse").text == "data: only\n\n"
    assert events == ["chunk 0", "chunk 1", "chunk 2", "task", "sse task"]


def test_a_failing_handler_drops_its_tasks_and_a_failing_task_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()
    ran: list[str] = []

    @app.post("/fails")
    async def fails(tasks: BackgroundTasks) -> None:
        tasks.add(ran.append, "never")
        raise RuntimeError("the handler broke")

    def explode() -> None:
        raise ValueError("the task broke")

    @app.post("/task-fails")
    async def task_fails(tasks: BackgroundTasks) -> None:
        tasks.add(explode)
        tasks.add(ran.append, "after the failure")

    with TestClient(app) as client, caplog.at_level(logging.ERROR, logger="shoal"):
        assert client.post("/fails").status_code == 500
        response = client.post("/task-fails")
    assert response.status_code == 204
    assert ran == ["after the failure"]
    failures = [r for r in caplog.records if "background task" in r.getMessage()]
    assert len(failures) == 1
    record = failures[0]
    assert "explode failed" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)
    assert getattr(record, "request_id", None) == response.headers["x-request-id"]


def test_shutdown_waits_for_running_tasks_then_cancels_late_ones() -> None:
    app = App()
    done: list[str] = []

    async def slow(seconds: float, name: str) -> None:
        await asyncio.sleep(seconds)
        done.append(name)

    @app.post("/slow/{seconds}")
    async def start(seconds: float, tasks: BackgroundTasks) -> None:
        tasks.add(slow, seconds, f"slept {seconds}")

    async def scenario() -> None:
        await app.startup()
        for seconds in (0.1, 60.0):
            response = await app.handle(Request("POST", f"/slow/{seconds}", app=app))
            assert isinstance(response, StreamingResponse)
            await response.send_to(lambda chunk: asyncio.sleep(0))
        original = background.DRAIN_TIMEOUT
        background.DRAIN_TIMEOUT = 0.5
        try:
            await app.shutdown()
        finally:
            background.DRAIN_TIMEOUT = original

    asyncio.run(scenario())
    assert done == ["slept 0.1"]  # waited for; the 60 s one was cancelled past the timeout


@pytest.mark.parametrize("kind", ["granian-rsgi", "uvicorn"])
def test_over_http_the_answer_comes_before_the_task_ends(kind: str) -> None:
    env = {"MAIL_SERVER_READY": "0"}  # the def task blocks until the test opens the server
    with (
        running_server(kind, "examples.background_tasks:app", env=env) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        response = client.post("/signups", json={"email": "ada@example.org"})
        assert response.status_code == 201  # answered while the task waits
        assert response.headers["content-length"] == str(len(response.content))
        assert "transfer-encoding" not in response.headers
        assert client.get("/outbox").json() == []
        assert client.post("/mail-server/ready").status_code == 204
        deadline = time.monotonic() + 10
        while client.get("/outbox").json() != ["ada@example.org"]:
            assert time.monotonic() < deadline, "the background task never ran"
            time.sleep(0.05)
        broken = client.post("/signups", json={"email": "broken@example.org"})
        request_id = broken.headers["x-request-id"]
        deadline = time.monotonic() + 10
        while "background task fail failed" not in server.output():
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
    lines = [line for line in server.output().splitlines() if "fail failed" in line]
    if kind == "granian-rsgi":  # shoal run's log format shows the request id
        assert request_id in lines[0], lines


def test_shutdown_of_shoal_run_waits_for_a_pending_task(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.txt"
    env = {"MAIL_SERVER_READY": "0", "OUTBOX_FILE": str(outbox)}
    with running_server("granian-rsgi", "examples.background_tasks:app", env=env) as server:
        response = httpx.post(f"{server.url}/signups", json={"email": "late@example.org"})
        assert response.status_code == 201
        assert not outbox.exists()
    # SIGTERM came while the task waited (up to 3 s) for the mail server: it still finished
    assert outbox.read_text() == "late@example.org\n"
    assert background_tasks.outbox == []  # (that was another process)


def test_the_parameter_stays_out_of_openapi() -> None:
    from openapi_spec_validator import validate

    document = background_tasks.app.openapi()
    validate(document)
    operation = document["paths"]["/signups"]["post"]
    assert "parameters" not in operation
    assert list(operation["requestBody"]["content"]) == ["application/json"]
