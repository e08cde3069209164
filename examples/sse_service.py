"""Server-sent events: a tick stream that a browser's `EventSource` resumes where it left off.

    shoal run examples.sse_service:app
    curl -N localhost:8000/ticks
"""

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec

from shoal import App, EventSourceResponse, Header, ServerSentEvent

app = App(title="ticks")

PING = float(os.environ.get("SSE_PING", "15"))  # seconds between keep-alives when idle
streams = {"open": 0, "closed": 0}


class Tick(msgspec.Struct):
    n: int
    label: str


@app.get("/ticks")
async def ticks(
    last_event_id: Annotated[int | None, Header("Last-Event-ID")] = None,
    count: int | None = None,
    every: float = 1.0,
) -> EventSourceResponse:
    first = (last_event_id or 0) + 1  # a reconnecting client resumes after the last id it saw

    async def events() -> AsyncIterator[ServerSentEvent]:
        streams["open"] += 1
        try:
            n = first
            while count is None or n < first + count:
                yield ServerSentEvent(Tick(n, f"tick {n}"), event="tick", id=str(n))
                n += 1
                await asyncio.sleep(every)
            yield ServerSentEvent("bye\nfor now", event="end", retry=5000)
        finally:  # runs when the client goes away, too
            streams["closed"] += 1

    return EventSourceResponse(events(), ping=PING)


@app.get("/streams")
async def stream_counts() -> dict[str, int]:
    return streams
