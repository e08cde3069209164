"""shoal, served by `shoal run` (granian, RSGI): the framework under test."""

import time

from shoal import App, Request, Response

from . import PLAINTEXT, SLEEP, SYNC_THREADS

app = App(threads=SYNC_THREADS)


@app.get("/json")
async def json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/plaintext")
async def plaintext() -> Response:
    return Response(PLAINTEXT, media_type="text/plain")


@app.get("/")
async def now() -> dict[str, float]:
    return {"time": time.time()}


@app.get("/users/{id:int}")
async def user(id: int, request: Request) -> dict[str, object]:
    return {"id": id, "q": request.query.get("q")}


@app.get("/sync")
def sync_io() -> dict[str, float]:
    time.sleep(SLEEP)  # a blocking library call: shoal runs plain `def` handlers in its pool
    return {"slept": SLEEP}
