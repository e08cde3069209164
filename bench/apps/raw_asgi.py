"""A bare ASGI app, no framework, served by uvicorn (uvloop + httptools)."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from . import MESSAGE, PLAINTEXT, SLEEP, SYNC_THREADS

_encode = msgspec.json.encode
_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"
_pool = ThreadPoolExecutor(SYNC_THREADS)


def _blocking() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


async def _send(send: Any, status: int, media_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI callable."""
    if scope["type"] != "http":  # lifespan: nothing to start
        return
    path = scope["path"]
    if path == "/json":
        await _send(send, 200, _JSON, _encode(MESSAGE))
    elif path == "/plaintext":
        await _send(send, 200, _TEXT, PLAINTEXT)
    elif path == "/":
        await _send(send, 200, _JSON, _encode({"time": time.time()}))
    elif path.startswith("/users/") and path[7:].isdigit():
        q = dict(parse_qsl(scope["query_string"].decode("latin-1"))).get("q")
        await _send(send, 200, _JSON, _encode({"id": int(path[7:]), "q": q}))
    elif path == "/sync":
        result = await asyncio.get_running_loop().run_in_executor(_pool, _blocking)
        await _send(send, 200, _JSON, _encode(result))
    else:
        await _send(send, 404, _TEXT, b"Not Found")
