"""shoal.db._postgres.PostgresPool: shoal's own pool of asyncpg connections, on a real server."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from shoal.db import Connection, Database, DatabaseError, DatabaseUnavailable
from shoal.db._postgres import PostgresPool

PID = "SELECT pg_backend_pid()"


def size(db: Database) -> int:
    return db._pool.open_connections()


async def sessions(admin: Database, pids: set[int]) -> set[int]:
    """Which of `pids` the server still has a session for."""
    rows = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE pid = ANY($1)", list(pids))
    return {row["pid"] for row in rows}


async def terminate(postgres_url: str, pid: int) -> None:
    """The server ends session `pid`, as a restart or an administrator would."""
    async with Database(postgres_url) as admin:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)


async def test_connections_open_on_demand_up_to_max_size(postgres_url: str) -> None:
    async with Database(postgres_url, min_size=1, max_size=3, acquire_timeout=0.3) as db:
        assert size(db) == 1
        async with AsyncExitStack() as stack:
            held: list[Connection] = [
                await stack.enter_async_context(db.connection()) for _ in range(3)
            ]
            assert len({await conn.fetchval(PID) for conn in held}) == 3
            assert size(db) == 3
            with pytest.raises(DatabaseUnavailable, match="no PostgreSQL connection"):
                await db.fetchval("SELECT 1")
        assert size(db) == 3  # given back, kept for the next callers
        assert await db.fetchval("SELECT 1") == 1


async def test_callers_waiting_for_a_connection_are_served_in_arrival_order(
    postgres_url: str,
) -> None:
    served: list[int] = []

    async def caller(number: int) -> None:
        async with db.connection() as conn:
            served.append(await conn.fetchval("SELECT $1::int", number))

    async with Database(postgres_url, max_size=1) as db:
        async with db.connection():
            waiting = []
            for number in range(4):
                waiting.append(asyncio.create_task(caller(number)))
                await asyncio.sleep(0.02)  # each one waiting before the next arrives
        await asyncio.gather(*waiting)
    assert served == [0, 1, 2, 3]


async def test_connections_idle_a_whole_interval_are_closed_down_to_min_size(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PostgresPool, "idle_lifetime", 0.3)
    async with Database(postgres_url) as admin, Database(postgres_url, max_size=4) as db:
        async with AsyncExitStack() as stack:
            held = [await stack.enter_async_context(db.connection()) for _ in range(4)]
            pids = {await conn.fetchval(PID) for conn in held}
        assert size(db) == 4
        # the first pruning sees them all lent since the last; the second closes 3
        for _ in range(40):
            await asyncio.sleep(0.05)
            if size(db) == 1:
                break
        assert size(db) == 1
        kept = await db.fetchval(PID)
        assert kept in pids
        for _ in range(40):  # closed on the server too, not only forgotten
            if await sessions(admin, pids) == {kept}:
                break
            await asyncio.sleep(0.05)
        assert await sessions(admin, pids) == {kept}


async def test_a_connection_in_use_keeps_the_pool_from_pruning_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # connections needed in every interval stay open (min_size 0: only use keeps them)
    monkeypatch.setattr(PostgresPool, "idle_lifetime", 0.2)
    async with Database(postgres_url, min_size=0, max_size=2) as db:
        async with db.connection(), db.connection():
            pass
        assert size(db) == 2
        for _ in range(12):  # one connection busy throughout, the other never
            await db.fetchval("SELECT pg_sleep(0.05)")
        assert size(db) == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced(postgres_url: str) -> None:
    async with Database(postgres_url, max_size=1) as db:
        pid = await db.fetchval(PID)
        await terminate(postgres_url, pid)
        await asyncio.sleep(0.2)  # the end of the socket reaches the client
        assert await db.fetchval(PID) != pid
        assert size(db) == 1


async def test_a_connection_that_dies_in_use_is_dropped_and_its_place_reused(
    postgres_url: str,
) -> None:
    async with Database(postgres_url, max_size=1, acquire_timeout=2) as db:
        results: list[int] = []

        async def waiter() -> None:
            results.append(await db.fetchval(PID))

        with pytest.raises(DatabaseUnavailable):
            async with db.connection() as conn:
                pid = await conn.fetchval(PID)
                waiting = asyncio.create_task(waiter())  # the pool's one place is taken
                await asyncio.sleep(0.05)
                await terminate(postgres_url, pid)
                await asyncio.sleep(0.2)  # the end of the socket reaches the client
                await conn.fetchval("SELECT 1")
        await waiting  # served by a new connection in the dead one's place
        assert results[0] != pid
        assert size(db) == 1


async def test_a_connection_used_after_its_block_refuses_every_use(postgres_url: str) -> None:
    # the pool has lent it to someone else by then
    async with Database(postgres_url, max_size=1) as db:
        async with db.connection() as conn:
            pass
        with pytest.raises(DatabaseError, match="gone back to the pool"):
            await conn.fetchval("SELECT 1")
        with pytest.raises(DatabaseError, match="gone back to the pool"):
            await conn.execute("SELECT 1")
        with pytest.raises(DatabaseError, match="gone back to the pool"):
            conn.raw  # noqa: B018 - the property refuses
        assert await db.fetchval("SELECT 1") == 1


@pytest.mark.parametrize(("reset", "seen"), [(False, "changed"), (True, "shoal")])
async def test_reset_on_release_decides_whether_session_settings_outlive_the_lease(
    postgres_url: str, reset: bool, seen: str
) -> None:
    async with Database(postgres_url, max_size=1, reset_on_release=reset) as db:
        async with db.connection() as conn:
            await conn.execute("SET application_name = 'changed'")
        assert await db.fetchval("SHOW application_name") == seen


async def test_callers_waiting_while_the_database_closes_are_told_it_is_closing(
    postgres_url: str,
) -> None:
    db = Database(postgres_url, max_size=1, acquire_timeout=5)
    await db.open()
    pool = db._pool
    async with db.connection() as conn:
        waiting = asyncio.create_task(db.fetchval("SELECT 1"))
        await asyncio.sleep(0.05)
        closing = asyncio.create_task(db.aclose())
        with pytest.raises(DatabaseUnavailable, match="closing") as caught:
            await waiting
        assert caught.value.status == 503
        assert await conn.fetchval("SELECT 2") == 2  # the lease in progress goes on
        assert not closing.done()
    await asyncio.wait_for(closing, 2)
    assert pool.open_connections() == 0 and not db.is_open
