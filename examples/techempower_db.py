"""TechEmpower's database tests on shoal: `/db`, `/queries`, `/updates`, `/fortunes`.

Serve it on PostgreSQL (or, with no `DATABASE_URL`, an in-memory SQLite
database) with

    DATABASE_URL=postgresql://user@127.0.0.1/bench shoal run examples.techempower_db:app

At startup it creates and fills the `world` (10,000 rows) and `fortune`
tables unless they are already there; `python -m examples.techempower_db seed`
(re)fills them on purpose. Responses follow TechEmpower's rules: each `world`
row is read by its own query (no `IN (...)` batching), `queries` is clamped to
1..500 and anything that is not a number counts as 1, updates write new random
numbers and return them, and fortunes are sorted by message, with the one
added at request time, escaped into an HTML table. `queries` and `updates`
prepare their read once per request (`conn.prepare`) and run it for each row.
"""

from __future__ import annotations

import asyncio
import html
import random
import sys
from operator import itemgetter
from typing import Any

from shoal import App, Request, Response
from shoal.db import Database

WORLD_ROWS = 10_000
MAX_QUERIES = 500
ADDITIONAL_FORTUNE = "Additional fortune added at request time."

READ_WORLD = "SELECT id, randomnumber FROM world WHERE id = $1"
READ_NUMBER = "SELECT randomnumber FROM world WHERE id = $1"
UPDATE_WORLD = "UPDATE world SET randomnumber = $2 WHERE id = $1"
READ_FORTUNES = "SELECT id, message FROM fortune"

SCHEMA = """
CREATE TABLE IF NOT EXISTS world (id INTEGER PRIMARY KEY, randomnumber INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fortune (id INTEGER PRIMARY KEY, message TEXT NOT NULL);
"""

# The fortune table every TechEmpower implementation serves (its verifier checks it).
FORTUNES = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. \u2014 Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af"),
]

FORTUNES_HEAD = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
    "<table><tr><th>id</th><th>message</th></tr>"
)
FORTUNES_TAIL = "</table></body></html>"


def query_count(request: Request) -> int:
    """`?queries=N` clamped to 1..500; missing or not a number counts as 1."""
    try:
        count = int(request.query.get("queries", "1"))
    except ValueError:
        return 1
    return min(max(count, 1), MAX_QUERIES)


def random_id() -> int:
    return random.randint(1, WORLD_ROWS)


async def seed(db: Database, *, force: bool = False) -> bool:
    """Create `world` and `fortune` and fill them, unless already full (or `force`).

    Returns True when it filled them. Safe when several workers start at once:
    one transaction, serialized by an advisory lock on PostgreSQL and by
    `BEGIN IMMEDIATE` on SQLite.
    """
    async with db.transaction() as tx:
        if db.backend == "postgresql":
            await tx.execute("SELECT pg_advisory_xact_lock(4242)")
        await tx.execute_script(SCHEMA)
        worlds = await tx.fetchval("SELECT count(*) FROM world")
        fortunes = await tx.fetchval("SELECT count(*) FROM fortune")
        if not force and (worlds, fortunes) == (WORLD_ROWS, len(FORTUNES)):
            return False
        await tx.execute("DELETE FROM world")
        await tx.execute("DELETE FROM fortune")
        await tx.executemany(
            "INSERT INTO world (id, randomnumber) VALUES ($1, $2)",
            [(i, random_id()) for i in range(1, WORLD_ROWS + 1)],
        )
        await tx.executemany("INSERT INTO fortune (id, message) VALUES ($1, $2)", FORTUNES)
    return True


def create_app(url: str | None = None, **options: Any) -> App:
    """The app, on `url` (default: `DATABASE_URL`); `options` go to `Database`."""
    app = App()
    database = app.use(Database(url, **options))

    @app.on_startup
    async def fill_tables() -> None:
        await seed(database)

    @app.get("/db")
    async def single_query(db: Database) -> dict[str, int]:
        row = await db.fetchrow(READ_WORLD, random_id())
        assert row is not None
        return {"id": row[0], "randomNumber": row[1]}

    @app.get("/queries")
    async def multiple_queries(request: Request, db: Database) -> list[dict[str, int]]:
        ids = random.sample(range(1, WORLD_ROWS + 1), query_count(request))
        worlds = []
        async with db.connection() as conn:
            read_world = await conn.prepare(READ_WORLD)  # parsed and planned once
            for world_id in ids:
                row = await read_world.fetchrow(world_id)
                assert row is not None
                worlds.append({"id": row[0], "randomNumber": row[1]})
        return worlds

    @app.get("/updates")
    async def updates(request: Request, db: Database) -> list[dict[str, int]]:
        # Distinct ids, written in id order: concurrent requests never deadlock.
        ids = sorted(random.sample(range(1, WORLD_ROWS + 1), query_count(request)))
        worlds = []
        async with db.connection() as conn:
            read_number = await conn.prepare(READ_NUMBER)
            for world_id in ids:
                old = await read_number.fetchval(world_id)
                new = random_id()
                while new == old:
                    new = random_id()
                worlds.append({"id": world_id, "randomNumber": new})
            await conn.executemany(UPDATE_WORLD, [(w["id"], w["randomNumber"]) for w in worlds])
        return worlds

    @app.get("/fortunes")
    async def fortunes(db: Database) -> Response:
        rows = [(row[0], row[1]) for row in await db.fetch(READ_FORTUNES)]
        rows.append((0, ADDITIONAL_FORTUNE))
        rows.sort(key=itemgetter(1))
        cells = "".join(
            f"<tr><td>{fortune_id}</td><td>{html.escape(message)}</td></tr>"
            for fortune_id, message in rows
        )
        return Response(FORTUNES_HEAD + cells + FORTUNES_TAIL, media_type="text/html")

    return app


app = create_app()


async def _seed_command() -> None:
    async with Database() as db:
        await seed(db, force=True)
    print(f"filled world ({WORLD_ROWS} rows) and fortune ({len(FORTUNES)} rows)")


if __name__ == "__main__":  # python -m examples.techempower_db seed
    if sys.argv[1:] != ["seed"]:
        sys.exit("usage: DATABASE_URL=... python -m examples.techempower_db seed")
    asyncio.run(_seed_command())
