"""Prepared statements (`Connection.prepare`): the same answers as the connection's
own methods, on SQLite and on a real PostgreSQL, and bound to the caller's lease."""

from __future__ import annotations

import pytest

from shoal.db import Database, DatabaseError, IntegrityError, Row, Statement

ITEMS = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty INTEGER)"


async def make_items(db: Database) -> None:
    await db.execute(ITEMS)
    await db.executemany(
        "INSERT INTO items (id, name, qty) VALUES ($1, $2, $3)",
        [(1, "apple", 3), (2, "pear", 5), (3, "plum", None)],
    )


async def test_a_statement_runs_again_and_again_with_new_arguments(db: Database) -> None:
    await make_items(db)
    async with db.connection() as conn:
        by_id = await conn.prepare("SELECT id, name, qty FROM items WHERE id = $1")
        assert isinstance(by_id, Statement)
        assert by_id.sql == "SELECT id, name, qty FROM items WHERE id = $1"
        rows = [await by_id.fetchrow(i) for i in (3, 1, 2, 1, 99)]
        assert [None if r is None else r.name for r in rows] == [
            "plum", "apple", "pear", "apple", None,
        ]  # fmt: skip
        first = rows[1]
        assert isinstance(first, Row)
        assert (first["id"], first.name, first[2]) == (1, "apple", 3)
        assert dict(first) == {"id": 1, "name": "apple", "qty": 3}
        # the same answers as the connection's own methods
        assert rows[1] == await conn.fetchrow("SELECT id, name, qty FROM items WHERE id = $1", 1)


async def test_fetch_fetchval_execute_and_executemany(db: Database) -> None:
    await make_items(db)
    async with db.connection() as conn:
        above = await conn.prepare("SELECT name FROM items WHERE qty > $1 ORDER BY id")
        assert [r["name"] for r in await above.fetch(1)] == ["apple", "pear"]
        assert await above.fetch(100) == []
        qty = await conn.prepare("SELECT qty FROM items WHERE name = $1")
        assert (await qty.fetchval("pear"), await qty.fetchval("nope")) == (5, None)
        bump = await conn.prepare("UPDATE items SET qty = qty + $1 WHERE qty >= $2")
        assert await bump.execute(10, 4) == 1
        assert await bump.execute(10, 1000) == 0
        insert = await conn.prepare("INSERT INTO items (id, name, qty) VALUES ($1, $2, $1)")
        await insert.executemany([(7, "fig"), (8, "kiwi")])
        assert await qty.fetchval("kiwi") == 8  # $1 used twice binds the same argument
        assert await qty.fetchval("pear") == 15


async def test_executemany_through_a_statement_is_all_or_nothing(db: Database) -> None:
    await make_items(db)
    async with db.connection() as conn:
        insert = await conn.prepare("INSERT INTO items (id, name) VALUES ($1, $2)")
        with pytest.raises(IntegrityError):
            await insert.executemany([(10, "new"), (11, "apple")])  # apple exists
        assert await conn.fetchval("SELECT count(*) FROM items") == 3


async def test_a_statement_inside_a_transaction_is_rolled_back_with_it(db: Database) -> None:
    await make_items(db)
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            delete = await tx.prepare("DELETE FROM items WHERE id = $1")
            assert await delete.execute(1) == 1
            raise RuntimeError("undo")
    assert await db.fetchval("SELECT count(*) FROM items") == 3


async def test_a_statement_used_after_its_connection_went_back_is_refused(db: Database) -> None:
    await make_items(db)
    async with db.connection() as conn:
        stmt = await conn.prepare("SELECT name FROM items WHERE id = $1")
        assert await stmt.fetchval(1) == "apple"
    with pytest.raises(DatabaseError, match="gone back to the pool"):
        await stmt.fetchval(1)
    # the connection itself serves its next caller as usual
    assert await db.fetchval("SELECT name FROM items WHERE id = $1", 2) == "pear"


@pytest.mark.parametrize("sql", ["SELEC nope", "SELECT * FROM no_such_table WHERE id = $1"])
async def test_bad_sql_is_a_database_error_at_prepare_or_first_run(db: Database, sql: str) -> None:
    # PostgreSQL refuses it when preparing; SQLite compiles on the first run
    async with db.connection() as conn:
        with pytest.raises(DatabaseError) as caught:
            stmt = await conn.prepare(sql)
            await stmt.fetch(1)
        assert caught.value.__cause__ is not None  # the driver's error, chained
        assert await conn.fetchval("SELECT 1") == 1  # and the connection still works


async def test_wrong_arguments_are_database_errors(db: Database) -> None:
    await make_items(db)
    async with db.connection() as conn:
        stmt = await conn.prepare("SELECT name FROM items WHERE id = $1")
        with pytest.raises(DatabaseError):
            await stmt.fetchval(1, 2)
        with pytest.raises(IntegrityError):
            insert = await conn.prepare("INSERT INTO items (id, name) VALUES ($1, $2)")
            await insert.execute(1, "duplicate id")
        assert await stmt.fetchval(2) == "pear"
