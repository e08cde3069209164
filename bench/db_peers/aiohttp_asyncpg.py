"""aiohttp + asyncpg, served by gunicorn with aiohttp's uvloop worker.

    DATABASE_URL=postgresql://... gunicorn bench.db_peers.aiohttp_asyncpg:app \
        --worker-class aiohttp.GunicornUVLoopWebWorker --bind 127.0.0.1:8080
"""

from __future__ import annotations

import html
import os
import random
from collections.abc import AsyncIterator
from operator import itemgetter

import asyncpg
from aiohttp import web

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

POOL = web.AppKey("pool", asyncpg.Pool)


async def pool_context(app: web.Application) -> AsyncIterator[None]:
    async with asyncpg.create_pool(os.environ["DATABASE_URL"], **pool_options()) as pool:
        app[POOL] = pool
        yield


async def single_query(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        row = await conn.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS))
    return web.json_response({"id": row[0], "randomNumber": row[1]})


async def multiple_queries(request: web.Request) -> web.Response:
    ids = random.sample(range(1, WORLD_ROWS + 1), query_count(request.query.get("queries")))
    async with request.app[POOL].acquire() as conn:
        statement = await conn.prepare(READ_WORLD)
        worlds = []
        for world_id in ids:
            row = await statement.fetchrow(world_id)
            worlds.append({"id": row[0], "randomNumber": row[1]})
    return web.json_response(worlds)


async def updates(request: web.Request) -> web.Response:
    ids = sorted(random.sample(range(1, WORLD_ROWS + 1), query_count(request.query.get("queries"))))
    worlds = []
    async with request.app[POOL].acquire() as conn:
        statement = await conn.prepare("SELECT randomnumber FROM world WHERE id = $1")
        for world_id in ids:
            old = await statement.fetchval(world_id)
            new = random.randint(1, WORLD_ROWS)
            while new == old:
                new = random.randint(1, WORLD_ROWS)
            worlds.append({"id": world_id, "randomNumber": new})
        await conn.executemany(UPDATE_WORLD, [(w["id"], w["randomNumber"]) for w in worlds])
    return web.json_response(worlds)


async def fortunes(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rows = [(row[0], row[1]) for row in await conn.fetch(READ_FORTUNES)]
    rows.append((0, ADDITIONAL_FORTUNE))
    rows.sort(key=itemgetter(1))
    cells = "".join(f"<tr><td>{i}</td><td>{html.escape(m)}</td></tr>" for i, m in rows)
    return web.Response(
        text=FORTUNES_HEAD + cells + FORTUNES_TAIL, content_type="text/html", charset="utf-8"
    )


app = web.Application()
app.cleanup_ctx.append(pool_context)
app.router.add_get("/db", single_query)
app.router.add_get("/queries", multiple_queries)
app.router.add_get("/updates", updates)
app.router.add_get("/fortunes", fortunes)
