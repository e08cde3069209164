"""Litestar on uvicorn (uvloop + httptools) and granian; blocking route: 40 threads."""

import time
from concurrent.futures import ThreadPoolExecutor

from litestar import Litestar, MediaType, get
from litestar.concurrency import set_asyncio_executor

from . import MESSAGE, PLAINTEXT, SLEEP, SYNC_THREADS

# Litestar runs sync handlers in the loop's default executor (min(32, cores + 4)
# threads) unless told otherwise: give it as many threads as every other peer.
set_asyncio_executor(ThreadPoolExecutor(SYNC_THREADS))


@get("/json")
async def json() -> dict[str, str]:
    return MESSAGE


@get("/plaintext", media_type=MediaType.TEXT)
async def plaintext() -> bytes:
    return PLAINTEXT


@get("/")
async def now() -> dict[str, float]:
    return {"time": time.time()}


@get("/users/{id:int}")
async def user(id: int, q: str | None = None) -> dict[str, object]:
    return {"id": id, "q": q}


@get("/items/{item_id:int}")
async def typed_item(
    item_id: int, limit: int = 20, offset: int = 0, q: str = ""
) -> dict[str, object]:
    return {"id": item_id, "limit": limit, "offset": offset, "q": q}


@get("/sync", sync_to_thread=True)
def sync_io() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


app = Litestar(
    [json, plaintext, now, user, typed_item, sync_io], openapi_config=None, logging_config=None
)
