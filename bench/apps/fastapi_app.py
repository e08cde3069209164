"""FastAPI on uvicorn (uvloop + httptools); `def` routes run in AnyIO's 40-thread pool."""

import time

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from . import MESSAGE, PLAINTEXT, SLEEP

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/json")
async def json() -> dict[str, str]:
    return MESSAGE


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse(PLAINTEXT)


@app.get("/")
async def now() -> dict[str, float]:
    return {"time": time.time()}


@app.get("/users/{id}")
async def user(id: int, q: str | None = None) -> dict[str, object]:
    return {"id": id, "q": q}


@app.get("/items/{item_id}")
async def typed_item(
    item_id: int, limit: int = 20, offset: int = 0, q: str = ""
) -> dict[str, object]:
    return {"id": item_id, "limit": limit, "offset": offset, "q": q}


@app.get("/sync")
def sync_io() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}
