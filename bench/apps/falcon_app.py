"""Falcon's ASGI app on uvicorn (uvloop + httptools) and granian; blocking work: 40 threads."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import falcon
import falcon.asgi

from . import MESSAGE, PLAINTEXT, SLEEP, SYNC_THREADS

_pool = ThreadPoolExecutor(SYNC_THREADS)


def _blocking() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


class Json:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = MESSAGE


class Plaintext:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.data = PLAINTEXT


class Now:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"time": time.time()}


class User:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, id: int) -> None:
        resp.media = {"id": id, "q": req.get_param("q")}


class Sync:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = await asyncio.get_running_loop().run_in_executor(_pool, _blocking)


app = falcon.asgi.App()
app.add_route("/json", Json())
app.add_route("/plaintext", Plaintext())
app.add_route("/", Now())
app.add_route("/users/{id:int}", User())
app.add_route("/sync", Sync())
