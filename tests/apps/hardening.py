"""The app that tests/hardening serves with `shoal run` and uvicorn: one route per failure mode."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec

from shoal import App, Request, Response, StreamingResponse

app = App(
    max_body_size=64 * 1024,
    body_timeout=float(os.environ.get("HARDENING_BODY_TIMEOUT", "30")),
    handler_timeout=float(os.environ["HARDENING_HANDLER_TIMEOUT"])
    if "HARDENING_HANDLER_TIMEOUT" in os.environ
    else None,
)
# what the streaming routes have done, for the tests to read: one line per event
EVENTS = Path(os.environ.get("HARDENING_EVENTS", os.devnull))


def note(event: str) -> None:
    with EVENTS.open("a") as file:
        file.write(f"{os.getpid()} {event}\n")


class Item(msgspec.Struct):
    name: str
    tags: list[Any] = []


@app.get("/")
async def index() -> dict[str, str]:
    return {"hello": "world"}


@app.post("/echo")
async def echo(request: Request) -> dict[str, Any]:
    return {"json": await request.json()}


@app.post("/items")
async def create(item: Item) -> Item:
    return item


@app.post("/size")
async def size(request: Request) -> dict[str, int]:
    return {"size": len(await request.body())}


@app.get("/status/{code:int}")
async def status(code: int) -> Response:
    response = Response(b"x")
    response.status = code  # past Response's own check: the adapter's guard
    return response


@app.get("/ratio/{value:float}")
async def ratio(value: float) -> dict[str, float]:
    return {"value": value}


@app.get("/header")
async def header() -> Response:
    return Response(b"x", headers={"x-bad": "a\r\nset-cookie: forged=1"})


@app.get("/length")
async def length() -> Response:
    return Response(b"abc", headers={"content-length": "10"})


@app.get("/fail")
async def fail() -> None:
    raise RuntimeError("the handler failed")


@app.get("/sleep/{seconds:float}")
async def sleep(seconds: float) -> dict[str, float]:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        note("sleep-cancelled")
        raise
    return {"slept": seconds}


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


@app.get("/broken-stream")
async def broken_stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first chunk\n"
        await asyncio.sleep(0.05)
        raise RuntimeError("the stream broke midway")

    return StreamingResponse(chunks())


@app.get("/big-stream/{count:int}")
async def big_stream(count: int) -> StreamingResponse:
    chunk = b"x" * 65536

    async def chunks() -> AsyncIterator[bytes]:
        sent = 0
        try:
            for _ in range(count):
                yield chunk
                sent += 1
                note(f"stream-sent {sent}")
        finally:
            note(f"stream-closed {sent}")

    return StreamingResponse(chunks())
