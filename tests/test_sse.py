"""Server-sent events: the format, keep-alives, Last-Event-ID, and disconnects over real sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest

from shoal import App, EventSourceResponse, ServerSentEvent
from shoal.testing import TestClient
from tests.servers import running_server


class Point(msgspec.Struct):
    x: int
    y: int


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (ServerSentEvent("hello"), "data: hello\n\n"),
        (ServerSentEvent("a\nb\r\nc\rd"), "data: a\ndata: b\ndata: c\ndata: d\n\n"),
        (ServerSentEvent(""), "data: \n\n"),
        (ServerSentEvent(Point(1, 2)), 'data: {"x":1,"y":2}\n\n'),
        (ServerSentEvent({"a": [1, "x\ny"]}), 'data: {"a":[1,"x\\ny"]}\n\n'),
        (ServerSentEvent(7), "data: 7\n\n"),
        (
            ServerSentEvent("d", event="update", id="42", retry=3000),
            "event: update\nid: 42\nretry: 3000\ndata: d\n\n",
        ),
        (ServerSentEvent(id="5"), "id: 5\n\n"),
        (ServerSentEvent("x", comment="note"), ": note\ndata: x\n\n"),
    ],
)
def test_the_wire_format(event: ServerSentEvent, wire: str) -> None:
    assert event.encode() == wire.encode()


@pytest.mark.parametrize(
    "options",
    [{"event": "a\nb"}, {"id": "1\r2"}, {"id": "a\0b"}, {"retry": -1}, {"comment": "x\ny"}],
)
def test_fields_that_would_forge_others_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="server-sent event"):
        ServerSentEvent("data", **options)


def test_ping_must_be_positive() -> None:
    async def nothing() -> AsyncIterator[str]:
        return
        yield

    with pytest.raises(ValueError, match="ping"):
        EventSourceResponse(nothing(), ping=0)


def test_in_process_with_keep_alives_and_bare_data() -> None:
    app = App()
    finished: list[bool] = []

    @app.get("/events")
    async def events() -> EventSourceResponse:
        async def source() -> AsyncIterator[Any]:
            try:
                yield "first"
                await asyncio.sleep(0.25)  # idle: keep-alives go out meanwhile
                yield {"second": True}
            finally:
                finished.append(True)

        return EventSourceResponse(source(), ping=0.05, headers={"x-extra": "1"})

    with TestClient(app) as client:
        response = client.get("/events")
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-extra"] == "1"
    text = response.text
    assert text.startswith("data: first\n\n: ping\n\n")
    assert text.endswith('data: {"second":true}\n\n')
    assert text.count(": ping\n\n") >= 2
    assert finished == [True]


def read_events(lines: Iterator[str], count: int) -> list[dict[str, str]]:
    """Parse `count` events (comments skipped) from a text/event-stream, as EventSource does."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in lines:
        if line == "":
            if current:
                events.append(current)
                current = {}
                if len(events) == count:
                    return events
            continue
        if line.startswith(":"):
            current.setdefault("_comments", "")
            current["_comments"] += line
            continue
        field, _, value = line.partition(": ")
        current[field] = current[field] + "\n" + value if field in current else value
    return events


SERVERS = ["granian-rsgi", "uvicorn"]


@pytest.mark.parametrize("kind", SERVERS)
def test_a_real_stream_resumes_from_last_event_id(kind: str) -> None:
    with (
        running_server(kind, "examples.sse_service:app") as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        with client.stream("GET", "/ticks", params={"count": 3, "every": 0}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = read_events(stream.iter_lines(), 4)
        assert [e["id"] for e in events[:3]] == ["1", "2", "3"]
        assert msgspec.json.decode(events[0]["data"]) == {"n": 1, "label": "tick 1"}
        assert events[0]["event"] == "tick"
        assert events[3] == {"event": "end", "retry": "5000", "data": "bye\nfor now"}
        headers = {"last-event-id": "3"}
        with client.stream(
            "GET", "/ticks", params={"count": 2, "every": 0}, headers=headers
        ) as stream:
            resumed = read_events(stream.iter_lines(), 2)
        assert [e["id"] for e in resumed] == ["4", "5"]


@pytest.mark.parametrize("kind", SERVERS)
def test_keep_alives_and_a_client_that_goes_away(kind: str) -> None:
    env = {"SSE_PING": "0.1"}
    with (
        running_server(kind, "examples.sse_service:app", env=env) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        # an idle stream (an event every 30 s): keep-alive comments in between
        with client.stream("GET", "/ticks", params={"every": 30}) as stream:
            lines = stream.iter_lines()
            first = read_events(lines, 1)[0]
            assert first["id"] == "1"
            pings = [next(lines) for _ in range(4)]
            assert pings == [": ping", "", ": ping", ""]
            assert client.get("/streams").json() == {"open": 1, "closed": 0}
        # the client closed its connection: the iterator is closed within a ping or so
        deadline = time.monotonic() + 10
        while client.get("/streams").json()["closed"] < 1:
            assert time.monotonic() < deadline, "the event iterator was never closed"
            time.sleep(0.05)
        assert client.get("/streams").json() == {"open": 1, "closed": 1}
