"""Tornado on uvloop, `python -m bench.apps.tornado_app PORT [WORKERS]` (forks past 1)."""

import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.process import fork_processes

from . import MESSAGE, PLAINTEXT, SLEEP, SYNC_THREADS

_pool = ThreadPoolExecutor(SYNC_THREADS)


def _blocking() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


class Json(tornado.web.RequestHandler):
    async def get(self) -> None:
        self.write(MESSAGE)  # a dict: tornado writes it as application/json


class Plaintext(tornado.web.RequestHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(PLAINTEXT)


class Now(tornado.web.RequestHandler):
    async def get(self) -> None:
        self.write({"time": time.time()})


class User(tornado.web.RequestHandler):
    async def get(self, id: str) -> None:
        self.write({"id": int(id), "q": self.get_query_argument("q", None)})


class Sync(tornado.web.RequestHandler):
    async def get(self) -> None:
        self.write(await asyncio.get_running_loop().run_in_executor(_pool, _blocking))


def make_app() -> tornado.web.Application:
    """The tornado application with the five routes."""
    return tornado.web.Application(
        [
            (r"/json", Json),
            (r"/plaintext", Plaintext),
            (r"/", Now),
            (r"/users/(\d+)", User),
            (r"/sync", Sync),
        ],
        log_function=lambda handler: None,
    )


async def serve(sockets: list[object]) -> None:
    server = HTTPServer(make_app())
    server.add_sockets(sockets)
    await asyncio.Event().wait()


def main() -> None:
    port = int(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    sockets = bind_sockets(port, "127.0.0.1")
    if workers > 1:
        fork_processes(workers)
    import uvloop

    uvloop.run(serve(sockets))


if __name__ == "__main__":
    main()
