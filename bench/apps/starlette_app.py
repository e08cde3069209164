"""Starlette, served by uvicorn (uvloop + httptools) and by granian (ASGI).

Plain `def` endpoints run in AnyIO's thread pool, whose default limit is 40
threads, the same as shoal's pool.
"""

import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from . import MESSAGE, PLAINTEXT, SLEEP


async def json(request: Request) -> JSONResponse:
    return JSONResponse(MESSAGE)


async def plaintext(request: Request) -> PlainTextResponse:
    return PlainTextResponse(PLAINTEXT)


async def now(request: Request) -> JSONResponse:
    return JSONResponse({"time": time.time()})


async def user(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["id"], "q": request.query_params.get("q")})


def sync_io(request: Request) -> JSONResponse:
    time.sleep(SLEEP)
    return JSONResponse({"slept": SLEEP})


app = Starlette(
    routes=[
        Route("/json", json),
        Route("/plaintext", plaintext),
        Route("/", now),
        Route("/users/{id:int}", user),
        Route("/sync", sync_io),
    ]
)
