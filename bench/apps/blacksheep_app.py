"""BlackSheep on uvicorn (uvloop + httptools) and granian (ASGI); blocking work: 40 threads."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from blacksheep import Application, Request, Response, json, text

from . import MESSAGE, PLAINTEXT, SLEEP, SYNC_THREADS

app = Application(show_error_details=False)
_pool = ThreadPoolExecutor(SYNC_THREADS)
_PLAINTEXT = PLAINTEXT.decode()


def _blocking() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


@app.router.get("/json")
async def json_route() -> Response:
    return json(MESSAGE)


@app.router.get("/plaintext")
async def plaintext() -> Response:
    return text(_PLAINTEXT)


@app.router.get("/")
async def now() -> Response:
    return json({"time": time.time()})


@app.router.get("/users/{int:id}")
async def user(request: Request, id: int) -> Response:
    values = request.query.get("q")
    return json({"id": id, "q": values[0] if values else None})


@app.router.get("/sync")
async def sync_io() -> Response:
    return json(await asyncio.get_running_loop().run_in_executor(_pool, _blocking))
