"""Sanic, served by its own server (uvloop when installed), access log off.

Sanic's server sends neither `Server` nor `Date`; a response middleware adds
both (the date formatted once a second, as uvicorn and granian do).
"""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json, raw

from . import MESSAGE, PLAINTEXT, SLEEP, SYNC_THREADS

app = Sanic("bench")
_pool = ThreadPoolExecutor(SYNC_THREADS)


_date = [0, ""]


@app.on_response
async def server_and_date(request: Request, response: HTTPResponse) -> None:
    now = int(time.time())
    if now != _date[0]:
        _date[0], _date[1] = now, formatdate(now, usegmt=True)
    response.headers["server"] = "sanic"
    response.headers["date"] = _date[1]


def _blocking() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


@app.get("/json")
async def json_route(request: Request) -> HTTPResponse:
    return json(MESSAGE)


@app.get("/plaintext")
async def plaintext(request: Request) -> HTTPResponse:
    return raw(PLAINTEXT, content_type="text/plain; charset=utf-8")


@app.get("/")
async def now(request: Request) -> HTTPResponse:
    return json({"time": time.time()})


@app.get("/users/<id:int>")
async def user(request: Request, id: int) -> HTTPResponse:
    return json({"id": id, "q": request.args.get("q")})


@app.get("/sync")
async def sync_io(request: Request) -> HTTPResponse:
    return json(await asyncio.get_running_loop().run_in_executor(_pool, _blocking))
