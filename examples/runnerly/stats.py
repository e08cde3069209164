"""runnerly's stats service (port 8003): per-user totals, kept from the `runs.recorded` events.

It never calls `runs`: it consumes the events `runs` publishes through its
outbox (durable consumer `stats`, shared by every worker and replica) and
keeps the totals in its own database, applying each event once (`claim`).
`GET /users/{id}/stats` answers with the same body `runs` gives, from
those totals: a user with no runs has zeros. When `runs` is down the totals
are still served; when `stats` is down the events wait on the broker.
"""

from __future__ import annotations

from shoal import App
from shoal.db import Database
from shoal.events import Event, EventBus, claim

from .common import DataFolder, database_url
from .runs import RUNS_STREAM, Run, Stats, events_url


def create_app(database: str | None = None, events: str | None = None) -> App:
    """The stats service, on `database` and the broker at `events` (defaults as for runs)."""
    url = database or database_url("stats")
    app = App(title="runnerly stats", version="1.0.0")
    app.use(DataFolder(url))
    db = app.use(Database(url))
    bus = EventBus(events_url(events), app=app, database=db, streams=[RUNS_STREAM])

    @app.on_startup
    async def create_tables() -> None:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS totals (user_id BIGINT PRIMARY KEY, runs BIGINT NOT NULL, "
            "distance_km DOUBLE PRECISION NOT NULL, duration_s BIGINT NOT NULL)"
        )

    @bus.subscribe("runs.recorded", durable="stats")
    async def count_run(run: Run, event: Event, db: Database) -> None:
        """Add one recorded run to its user's totals, once however often it is delivered."""
        async with db.transaction() as tx:
            if await claim(tx, event):
                await tx.execute(
                    "INSERT INTO totals (user_id, runs, distance_km, duration_s) "
                    "VALUES ($1, 1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET "
                    "runs = totals.runs + 1, "
                    "distance_km = totals.distance_km + excluded.distance_km, "
                    "duration_s = totals.duration_s + excluded.duration_s",
                    run.user_id, run.distance_km, run.duration_s,
                )  # fmt: skip

    @app.get("/users/{user_id:int}/stats")
    async def stats(user_id: int, db: Database) -> Stats:
        """How many runs, how far and how long in all (zeros for a user with no runs)."""
        row = await db.fetchrow(
            "SELECT runs, distance_km, duration_s FROM totals WHERE user_id = $1", user_id
        )
        if row is None:
            return Stats(0, 0.0, 0)
        return Stats(int(row["runs"]), float(row["distance_km"]), int(row["duration_s"]))

    return app


app = create_app()
