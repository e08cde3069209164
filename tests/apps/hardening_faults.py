"""Faults inside handlers, for tests/hardening/test_faults.py: a database write that a
disconnect interrupts, a leaked task, an allocation past the worker's memory limit."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from shoal import App
from shoal.db import Database

app = App(memory_limit=int(os.environ.get("FAULTS_MEMORY_LIMIT", str(1 << 30))))
db = app.use(Database(os.environ["FAULTS_DATABASE_URL"]))
EVENTS = Path(os.environ["FAULTS_EVENTS"])
tasks: set[asyncio.Task[None]] = set()


def note(event: str) -> None:
    with EVENTS.open("a") as file:
        file.write(event + "\n")


@app.on_startup
async def schema() -> None:
    await db.execute("CREATE TABLE IF NOT EXISTS moves (id INTEGER PRIMARY KEY, step TEXT)")


@app.post("/transfer")
async def transfer(db: Database) -> dict[str, str]:
    """Two writes in one transaction with a slow step between them."""
    try:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO moves (step) VALUES ('debit')")
            await asyncio.sleep(3)
            await tx.execute("INSERT INTO moves (step) VALUES ('credit')")
    except asyncio.CancelledError:
        note("transfer-cancelled")
        raise
    note("transfer-done")
    return {"done": "yes"}


@app.get("/moves")
async def moves(db: Database) -> dict[str, list[str]]:
    rows = await db.fetch("SELECT step FROM moves ORDER BY id")
    return {"steps": [row["step"] for row in rows]}


@app.get("/leak")
async def leak() -> dict[str, str]:
    async def forgotten() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("a leaked task failed")

    asyncio.get_running_loop().create_task(forgotten())  # leaked: the point of the route
    return {"leaked": "yes"}


@app.get("/allocate/{mib:int}")
async def allocate(mib: int) -> dict[str, int]:
    block = bytearray(mib * 1024 * 1024)
    return {"allocated": len(block)}


@app.get("/")
async def index() -> dict[str, str]:
    return {"ok": "yes"}
