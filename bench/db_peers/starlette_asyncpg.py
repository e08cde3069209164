"""Starlette + asyncpg, served by uvicorn (uvloop, httptools) or granian (ASGI).

    DATABASE_URL=postgresql://... uvicorn bench.db_peers.starlette_asyncpg:app \
        --loop uvloop --http httptools --port 8080
"""

from __future__ import annotations

import html
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from operator import itemgetter
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from . import (
    ADDITIONAL_FORTUNE,
    FORTUNES_HEAD,
    FORTUNES_TAIL,
    READ_FORTUNES,
    READ_WORLD,
    UPDATE_WORLD,
    WORLD_ROWS,
    pool_options,
    query_count,
)

pool: Any = None


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global pool
    async with asyncpg.create_pool(os.environ["DATABASE_URL"], **pool_options()) as opened:
        pool = opened
        yield


async def single_query(request: Request) -> JSONResponse:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS))
    return JSONResponse({"id": row[0], "randomNumber": row[1]})


async def multiple_queries(request: Request) -> JSONResponse:
    ids = random.sample(range(1, WORLD_ROWS + 1), query_count(request.query_params.get("queries")))
    async with pool.acquire() as conn:
        statement = await conn.prepare(READ_WORLD)
        worlds = []
        for world_id in ids:
            row = await statement.fetchrow(world_id)
            worlds.append({"id": row[0], "randomNumber": row[1]})
    return JSONResponse(worlds)


async def updates(request: Request) -> JSONResponse:
    count = query_count(request.query_params.get("queries"))
    ids = sorted(random.sample(range(1, WORLD_ROWS + 1), count))
    worlds = []
    async with pool.acquire() as conn:
        statement = await conn.prepare("SELECT randomnumber FROM world WHERE id = $1")
        for world_id in ids:
            old = await statement.fetchval(world_id)
            new = random.randint(1, WORLD_ROWS)
            while new == old:
                new = random.randint(1, WORLD_ROWS)
            worlds.append({"id": world_id, "randomNumber": new})
        await conn.executemany(UPDATE_WORLD, [(w["id"], w["randomNumber"]) for w in worlds])
    return JSONResponse(worlds)


async def fortunes(request: Request) -> HTMLResponse:
    async with pool.acquire() as conn:
        rows = [(row[0], row[1]) for row in await conn.fetch(READ_FORTUNES)]
    rows.append((0, ADDITIONAL_FORTUNE))
    rows.sort(key=itemgetter(1))
    cells = "".join(f"<tr><td>{i}</td><td>{html.escape(m)}</td></tr>" for i, m in rows)
    return HTMLResponse(FORTUNES_HEAD + cells + FORTUNES_TAIL)


app = Starlette(
    routes=[
        Route("/db", single_query),
        Route("/queries", multiple_queries),
        Route("/updates", updates),
        Route("/fortunes", fortunes),
    ],
    lifespan=lifespan,
)
