"""Robyn (Rust runtime, actix-web underneath): `python -m bench.apps.robyn_app PORT WORKERS`.

`WORKERS` becomes Robyn's `--processes` (OS processes, the unit every other
peer scales by), each with one Robyn worker thread (`--workers 1`). Robyn
reads its own options from the command line, so they are passed to it there;
the port comes first and Robyn's parser leaves it alone. Blocking work goes to
a 40-thread pool, like the other async peers.
"""

import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from robyn import Request, Response, Robyn

from . import MESSAGE, PLAINTEXT, SLEEP, SYNC_THREADS

_PLAINTEXT = PLAINTEXT.decode()
_TEXT = {"content-type": "text/plain; charset=utf-8"}
_pool = ThreadPoolExecutor(SYNC_THREADS)


def _blocking() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


def build() -> Robyn:
    """The Robyn app with the bench's routes (Robyn parses `sys.argv` when it is made)."""
    app = Robyn(__file__)
    app.add_response_header("server", "robyn")

    @app.get("/json")
    async def json_route() -> dict[str, str]:
        return MESSAGE

    @app.get("/plaintext")
    async def plaintext() -> Response:
        return Response(200, _TEXT, _PLAINTEXT)

    @app.get("/")
    async def now() -> dict[str, float]:
        return {"time": time.time()}

    @app.get("/users/:id")
    async def user(request: Request) -> object:
        raw = request.path_params["id"]
        if not raw.isdigit():
            return Response(404, _TEXT, "Not Found")
        return {"id": int(raw), "q": request.query_params.get("q", None)}

    @app.get("/sync")
    async def sync_io() -> dict[str, float]:
        return await asyncio.get_running_loop().run_in_executor(_pool, _blocking)

    return app


def main(argv: list[str]) -> None:
    """Serve on 127.0.0.1:`argv[0]` with `argv[1]` processes."""
    port, processes = int(argv[0]), int(argv[1])
    sys.argv = [sys.argv[0], "--processes", str(processes), "--workers", "1",
                "--log-level", "WARN", "--disable-openapi"]  # fmt: skip
    build().start(host="127.0.0.1", port=port, _check_port=False)


if __name__ == "__main__":
    main(sys.argv[1:])
