"""runnerly's runs service (port 8002): runs per user, and their sums.

`POST /users/{id}/runs`, `GET /users/{id}/runs`, `GET /users/{id}/stats`. It
trusts its caller (the gateway) to have checked that the user exists. Each
recorded run is announced as `runs.recorded` (a `Run`) through the outbox:
the event is committed with the run, and the relay publishes it to NATS
(`$NATS_URL`; without it, to an in-process bus, for tests). The `stats`
service keeps the totals from those events.
"""

from __future__ import annotations

import datetime
import os
from typing import Annotated

import msgspec

from shoal import App
from shoal.db import Database
from shoal.events import EventBus, Stream

from .common import DataFolder, database_url, id_column

Distance = Annotated[float, msgspec.Meta(gt=0, le=1000)]
Duration = Annotated[int, msgspec.Meta(ge=1, le=30 * 24 * 3600)]


class NewRun(msgspec.Struct, forbid_unknown_fields=True):
    """What a client sends to record a run."""

    distance_km: Distance
    duration_s: Duration
    date: datetime.date


class Run(msgspec.Struct):
    """A recorded run."""

    id: int
    user_id: int
    distance_km: float
    duration_s: int
    date: datetime.date


class Stats(msgspec.Struct):
    """A user's runs, summed."""

    runs: int
    distance_km: float
    duration_s: int


RUNS_STREAM = Stream("RUNS", ("runs.>",))
"""Where `runs.recorded` events are kept (declared by runs and by stats)."""


def events_url(events: str | None = None) -> str:
    """The event broker: `events`, else `$NATS_URL`, else the in-process `memory://runnerly`."""
    return events or os.environ.get("NATS_URL") or "memory://runnerly"


def create_app(database: str | None = None, events: str | None = None) -> App:
    """The runs service, on `database` (a URL; default: see `common.database_url`).

    `events` is the broker's URL (default: see `events_url`).
    """
    url = database or database_url("runs")
    app = App(title="runnerly runs", version="1.0.0")
    app.use(DataFolder(url))
    db = app.use(Database(url))
    bus = EventBus(events_url(events), app=app, database=db, streams=[RUNS_STREAM])

    @app.on_startup
    async def create_tables() -> None:
        await db.execute(
            f"CREATE TABLE IF NOT EXISTS runs ({id_column(db)}, user_id BIGINT NOT NULL, "
            "distance_km DOUBLE PRECISION NOT NULL, duration_s BIGINT NOT NULL, date TEXT NOT NULL)"
        )
        await db.execute("CREATE INDEX IF NOT EXISTS runs_user ON runs (user_id)")

    @app.post("/users/{user_id:int}/runs", status=201)
    async def record_run(user_id: int, new: NewRun, db: Database) -> Run:
        """Record one run of a user, and announce it (`runs.recorded`) in the same transaction."""
        async with db.transaction() as tx:
            run_id = await tx.fetchval(
                "INSERT INTO runs (user_id, distance_km, duration_s, date) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                user_id, new.distance_km, new.duration_s, new.date.isoformat(),
            )  # fmt: skip
            run = Run(run_id, user_id, new.distance_km, new.duration_s, new.date)
            await bus.publish("runs.recorded", run, outbox=tx)
        return run

    @app.get("/users/{user_id:int}/runs")
    async def list_runs(user_id: int, db: Database) -> list[Run]:
        """A user's runs, newest first."""
        rows = await db.fetch(
            "SELECT id, distance_km, duration_s, date FROM runs WHERE user_id = $1 "
            "ORDER BY date DESC, id DESC",
            user_id,
        )
        date = datetime.date.fromisoformat
        return [
            Run(r["id"], user_id, r["distance_km"], r["duration_s"], date(r["date"])) for r in rows
        ]

    @app.get("/users/{user_id:int}/stats")
    async def stats(user_id: int, db: Database) -> Stats:
        """How many runs, how far and how long in all."""
        row = await db.fetchrow(
            "SELECT count(*) AS runs, coalesce(sum(distance_km), 0) AS distance, "
            "coalesce(sum(duration_s), 0) AS duration FROM runs WHERE user_id = $1",
            user_id,
        )
        assert row is not None  # an aggregate always has its one row
        return Stats(int(row["runs"]), float(row["distance"]), int(row["duration"]))

    return app


app = create_app()
