"""Record runs and announce them through the outbox; keep per-user totals from the events.

One file plays both sides for the docs (docs/events.md); in a system the
publisher and the consumer are different services with their own databases.

    NATS_URL=nats://127.0.0.1:4222 shoal run examples.events_service:app
"""

from __future__ import annotations

import msgspec

from shoal import App, HTTPError
from shoal.db import Database
from shoal.events import Event, EventBus, Stream, claim

app = App(title="runs and totals")
db = app.use(Database())  # $DATABASE_URL, else in-memory SQLite
bus = EventBus(app=app, database=db, streams=[Stream("RUNS", ("runs.>",))])  # $NATS_URL


class Run(msgspec.Struct):
    user: int
    km: float


class Totals(msgspec.Struct):
    user: int
    runs: int
    km: float


@app.on_startup
async def create_schema() -> None:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, user_id INTEGER, km REAL)"
    )
    await db.execute(
        "CREATE TABLE IF NOT EXISTS totals "
        "(user_id INTEGER PRIMARY KEY, runs INTEGER NOT NULL, km REAL NOT NULL)"
    )


@app.post("/runs")
async def record(run: Run, db: Database) -> Run:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO runs (user_id, km) VALUES ($1, $2)", run.user, run.km)
        await bus.publish("runs.recorded", run, outbox=tx)  # committed with the run, or not at all
    return run


@bus.subscribe("runs.recorded", durable="totals")
async def add_to_totals(run: Run, event: Event, db: Database) -> None:
    async with db.transaction() as tx:
        if await claim(tx, event):  # a redelivered event is applied once
            await tx.execute(
                "INSERT INTO totals (user_id, runs, km) VALUES ($1, 1, $2) "
                "ON CONFLICT (user_id) DO UPDATE "
                "SET runs = totals.runs + 1, km = totals.km + excluded.km",
                run.user,
                run.km,
            )


@app.get("/users/{user_id:int}/totals")
async def totals(user_id: int, db: Database) -> Totals:
    row = await db.fetchrow("SELECT runs, km FROM totals WHERE user_id = $1", user_id)
    if row is None:
        raise HTTPError(404, f"no runs for user {user_id}")
    return Totals(user_id, row["runs"], row["km"])
