"""Compressed JSON: zstd or gzip, as each client accepts, for bodies worth it.

    shoal run examples.compressed_service:app
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from shoal import App, Compression, JSONResponse, StreamingResponse

app = App(title="compressed users")
app.add_middleware(Compression(minimum_size=1024))

USERS = [{"id": i, "name": f"user-{i}", "email": f"user{i}@example.org"} for i in range(200)]


@app.get("/users")
async def users() -> list[dict[str, Any]]:
    return USERS  # ~10 KiB of JSON: compressed


@app.get("/users/{user_id}")
async def user(user_id: int) -> dict[str, Any]:
    return USERS[user_id % len(USERS)]  # under minimum_size: sent as it is


@app.get("/export")
async def export() -> JSONResponse:
    # a client that must get the exact bytes (a signature over them, say)
    return JSONResponse(USERS, headers={"cache-control": "no-transform"})


released = asyncio.Event()  # lets a test hold the stream between two lines


@app.get("/feed")
async def feed() -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        yield b'{"event": "first"}\n'  # compressed and flushed: the client reads it now
        await asyncio.wait_for(released.wait(), timeout=30)
        yield b'{"event": "second"}\n'

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@app.post("/feed/release")
async def release() -> None:
    released.set()
