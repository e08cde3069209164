"""BlackSheep + asyncpg, served by uvicorn (uvloop, httptools) or granian (ASGI).

    DATABASE_URL=postgresql://... uvicorn bench.db_peers.blacksheep_asyncpg:app \
        --loop uvloop --http httptools --port 8080
"""

from __future__ import annotations

import html
import os
import random
from operator import itemgetter
from typing import Any

import asyncpg
from blacksheep import Application, Request, Response
from blacksheep import html as html_response
from blacksheep import json as json_response

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

app = Application(show_error_details=False)
pool: Any = None


async def open_pool(application: Application) -> None:
    global pool
    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], **pool_options())


async def close_pool(application: Application) -> None:
    if pool is not None:
        await pool.close()


app.on_start += open_pool
app.on_stop += close_pool


def _queries(request: Request) -> int:
    values = request.query.get("queries")
    return query_count(values[0] if values else None)


@app.router.get("/db")
async def single_query() -> Response:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(READ_WORLD, random.randint(1, WORLD_ROWS))
    return json_response({"id": row[0], "randomNumber": row[1]})


@app.router.get("/queries")
async def multiple_queries(request: Request) -> Response:
    ids = random.sample(range(1, WORLD_ROWS + 1), _queries(request))
    async with pool.acquire() as conn:
        statement = await conn.prepare(READ_WORLD)
        worlds = []
        for world_id in ids:
            row = await statement.fetchrow(world_id)
            worlds.append({"id": row[0], "randomNumber": row[1]})
    return json_response(worlds)


@app.router.get("/updates")
async def updates(request: Request) -> Response:
    ids = sorted(random.sample(range(1, WORLD_ROWS + 1), _queries(request)))
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
    return json_response(worlds)


@app.router.get("/fortunes")
async def fortunes() -> Response:
    async with pool.acquire() as conn:
        rows = [(row[0], row[1]) for row in await conn.fetch(READ_FORTUNES)]
    rows.append((0, ADDITIONAL_FORTUNE))
    rows.sort(key=itemgetter(1))
    cells = "".join(f"<tr><td>{i}</td><td>{html.escape(m)}</td></tr>" for i, m in rows)
    return html_response(FORTUNES_HEAD + cells + FORTUNES_TAIL)
