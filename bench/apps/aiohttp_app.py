"""aiohttp, served by gunicorn with aiohttp's uvloop worker (its documented deployment)."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from . import MESSAGE, PLAINTEXT, SLEEP, SYNC_THREADS

_pool = ThreadPoolExecutor(SYNC_THREADS)


def _blocking() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


async def json(request: web.Request) -> web.Response:
    return web.json_response(MESSAGE)


async def plaintext(request: web.Request) -> web.Response:
    return web.Response(body=PLAINTEXT, content_type="text/plain")


async def now(request: web.Request) -> web.Response:
    return web.json_response({"time": time.time()})


async def user(request: web.Request) -> web.Response:
    return web.json_response({"id": int(request.match_info["id"]), "q": request.query.get("q")})


async def sync_io(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.get_running_loop().run_in_executor(_pool, _blocking))


app = web.Application()
app.router.add_get("/json", json)
app.router.add_get("/plaintext", plaintext)
app.router.add_get("/", now)
app.router.add_get(r"/users/{id:\d+}", user)
app.router.add_get("/sync", sync_io)
