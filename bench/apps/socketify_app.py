"""socketify.py (uWebSockets through CFFI): `python -m bench.apps.socketify_app PORT WORKERS`.

An outside reference beside Go, not a framework peer: handlers write to the
response object directly, as socketify's own TechEmpower entry does. With
several workers the process forks that many copies, each listening on the same
port (uWebSockets sets SO_REUSEPORT). uWebSockets adds the `Date` and `Server`
headers itself. Blocking work goes to a 40-thread pool.
socketify's last release is from 2024; see docs/benchmarks.md for how it
answers malformed requests.
"""

import asyncio
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
from socketify import App, AppListenOptions

from . import MESSAGE, PLAINTEXT, SLEEP, SYNC_THREADS

_encode = msgspec.json.encode
_pool = ThreadPoolExecutor(SYNC_THREADS)


def _blocking() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


def _send(res: Any, body: bytes, media: str = "application/json", status: str = "200 OK") -> None:
    res.write_status(status)
    res.write_header("Content-Type", media)
    res.end(body)


def _user(res: Any, req: Any) -> None:
    raw = req.get_parameter(0)
    if not raw.isdigit():
        _send(res, b"Not Found", "text/plain", "404 Not Found")
        return
    _send(res, _encode({"id": int(raw), "q": req.get_query("q")}))


async def _sync(res: Any, req: Any) -> None:
    result = await asyncio.get_running_loop().run_in_executor(_pool, _blocking)
    _send(res, _encode(result))


def serve(port: int) -> None:
    """One socketify process on 127.0.0.1:`port`."""
    app = App()
    app.get("/json", lambda res, req: _send(res, _encode(MESSAGE)))
    app.get("/plaintext", lambda res, req: _send(res, PLAINTEXT, "text/plain; charset=utf-8"))
    app.get("/", lambda res, req: _send(res, _encode({"time": time.time()})))
    app.get("/users/:id", _user)
    app.get("/sync", _sync)
    app.any("/*", lambda res, req: _send(res, b"Not Found", "text/plain", "404 Not Found"))
    app.listen(AppListenOptions(port=port, host="127.0.0.1"))
    app.run()


def main(argv: list[str]) -> None:
    """Serve on `argv[0]` with `argv[1]` forked processes."""
    port, workers = int(argv[0]), int(argv[1])
    for _ in range(workers - 1):
        if os.fork() == 0:
            break
    serve(port)


if __name__ == "__main__":
    main(sys.argv[1:])
