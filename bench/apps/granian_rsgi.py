"""A bare RSGI app on granian, no framework: the ceiling for shoal's stack.

Routing is a dict lookup and one prefix test; JSON is msgspec, as in shoal.
"""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from . import MESSAGE, PLAINTEXT, SLEEP, SYNC_THREADS

_encode = msgspec.json.encode
_JSON = [("content-type", "application/json")]
_TEXT = [("content-type", "text/plain; charset=utf-8")]
_pool = ThreadPoolExecutor(SYNC_THREADS)


def _blocking() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


async def app(scope: Any, proto: Any) -> None:
    """The RSGI callable."""
    path = scope.path
    if path == "/json":
        proto.response_bytes(200, _JSON, _encode(MESSAGE))
    elif path == "/plaintext":
        proto.response_bytes(200, _TEXT, PLAINTEXT)
    elif path == "/":
        proto.response_bytes(200, _JSON, _encode({"time": time.time()}))
    elif path.startswith("/users/") and path[7:].isdigit():
        q = dict(parse_qsl(scope.query_string)).get("q")
        proto.response_bytes(200, _JSON, _encode({"id": int(path[7:]), "q": q}))
    elif path == "/sync":
        result = await asyncio.get_running_loop().run_in_executor(_pool, _blocking)
        proto.response_bytes(200, _JSON, _encode(result))
    else:
        proto.response_bytes(404, _TEXT, b"Not Found")
