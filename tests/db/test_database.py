"""`Database`: one API, the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from shoal.db import (
    Connection,
    Database,
    DatabaseError,
    DatabaseUnavailable,
    IntegrityError,
    Row,
)
from shoal.errors import ConfigurationError, HTTPError, ShoalError

ITEMS = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty INTEGER)"


async def make_items(db: Database) -> None:
    await db.execute(ITEMS)
    await db.executemany(
        "INSERT INTO items (id, name, qty) VALUES ($1, $2, $3)",
        [(1, "apple", 3), (2, "pear", 5), (3, "plum", None)],
    )


async def names(db: Database) -> list[str]:
    return [row["name"] for row in await db.fetch("SELECT name FROM items ORDER BY id")]


# -- statements ---------------------------------------------------------------------


async def test_fetch_returns_rows_with_key_attribute_and_index_access(db: Database) -> None:
    await make_items(db)
    rows = await db.fetch("SELECT id, name, qty FROM items WHERE qty > $1 ORDER BY id", 1)
    assert len(rows) == 2
    first = rows[0]
    assert isinstance(first, Row)
    assert (first["id"], first.name, first[2]) == (1, "apple", 3)
    assert dict(first) == {"id": 1, "name": "apple", "qty": 3}
    assert list(first.keys()) == ["id", "name", "qty"]
    assert list(first.values()) == [1, "apple", 3]
    assert list(first.items())[1] == ("name", "apple")
    assert first.get("nope", "default") == "default"
    assert len(first) == 3
    assert list(first) == [1, "apple", 3]
    with pytest.raises(AttributeError):
        _ = first.nope
    with pytest.raises(KeyError):
        first["nope"]


async def test_fetchrow_fetchval_and_no_rows(db: Database) -> None:
    await make_items(db)
    row = await db.fetchrow("SELECT name, qty FROM items WHERE id = $1", 2)
    assert row is not None and row.name == "pear" and row.qty == 5
    assert await db.fetchrow("SELECT name FROM items WHERE id = $1", 99) is None
    assert await db.fetchval("SELECT count(*) FROM items") == 3
    assert await db.fetchval("SELECT qty FROM items WHERE id = $1", 3) is None
    assert await db.fetchval("SELECT name FROM items WHERE id = $1", 99) is None
    assert await db.fetch("SELECT name FROM items WHERE id = $1", 99) == []


async def test_execute_returns_the_affected_row_count(db: Database) -> None:
    await make_items(db)
    assert await db.execute("UPDATE items SET qty = 0 WHERE id <= $1", 2) == 2
    assert await db.execute("DELETE FROM items WHERE id = $1", 42) == 0
    assert await db.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 4, "fig") == 1


async def test_a_placeholder_used_twice_binds_the_same_argument(db: Database) -> None:
    await make_items(db)
    rows = await db.fetch("SELECT name FROM items WHERE id = $1 OR qty = $1 + $2 ORDER BY id", 2, 1)
    assert [r.name for r in rows] == ["apple", "pear"]  # qty 3 == 2 + 1, id 2


async def test_dollar_digits_inside_literals_are_text_not_placeholders(db: Database) -> None:
    value = await db.fetchval("SELECT 'costs $1' || $1", " each")
    assert value == "costs $1 each"


async def test_executemany_is_all_or_nothing(db: Database) -> None:
    await make_items(db)
    with pytest.raises(IntegrityError):
        await db.executemany(
            "INSERT INTO items (id, name) VALUES ($1, $2)", [(10, "kiwi"), (11, "apple")]
        )
    assert await names(db) == ["apple", "pear", "plum"]


# -- connections and transactions --------------------------------------------------


async def test_connection_runs_several_statements_on_one_session(db: Database) -> None:
    await make_items(db)
    async with db.connection() as conn:
        assert isinstance(conn, Connection)
        await conn.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 7, "date")
        assert await conn.fetchval("SELECT name FROM items WHERE id = $1", 7) == "date"
        row = await conn.fetchrow("SELECT count(*) AS n FROM items")
        assert row is not None and row.n == 4
    assert "date" in await names(db)


async def test_transaction_commits_at_the_end(db: Database) -> None:
    await make_items(db)
    async with db.transaction() as tx:
        await tx.execute("UPDATE items SET qty = qty + 1 WHERE id = $1", 1)
        await tx.executemany("INSERT INTO items (id, name) VALUES ($1, $2)", [(8, "lime")])
        assert await tx.fetchval("SELECT qty FROM items WHERE id = $1", 1) == 4
    assert await db.fetchval("SELECT qty FROM items WHERE id = $1", 1) == 4
    assert "lime" in await names(db)


async def test_transaction_rolls_back_every_write_on_error(db: Database) -> None:
    await make_items(db)
    with pytest.raises(HTTPError):
        async with db.transaction() as tx:
            await tx.execute("DELETE FROM items WHERE id = $1", 1)
            await tx.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 9, "yuzu")
            raise HTTPError(400, "changed my mind")
    assert await names(db) == ["apple", "pear", "plum"]


async def test_a_failed_statement_rolls_back_the_writes_before_it(db: Database) -> None:
    await make_items(db)
    with pytest.raises(IntegrityError):
        async with db.transaction() as tx:
            await tx.execute("UPDATE items SET qty = 100")
            await tx.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 1, "dup id")
    assert await db.fetchval("SELECT max(qty) FROM items") == 5


async def test_nested_transaction_is_a_savepoint(db: Database) -> None:
    await make_items(db)
    async with db.transaction() as tx:
        await tx.execute("DELETE FROM items WHERE id = $1", 1)
        with pytest.raises(IntegrityError):
            async with tx.transaction():
                await tx.execute("DELETE FROM items WHERE id = $1", 2)
                await tx.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 3, "x")
        async with tx.transaction():
            await tx.execute("UPDATE items SET qty = 7 WHERE id = $1", 3)
    assert await names(db) == ["pear", "plum"]  # outer delete kept, inner one undone
    assert await db.fetchval("SELECT qty FROM items WHERE id = $1", 3) == 7


async def test_readonly_transaction_refuses_writes(db: Database) -> None:
    await make_items(db)
    async with db.transaction(readonly=True) as tx:
        assert await tx.fetchval("SELECT count(*) FROM items") == 3
        with pytest.raises(DatabaseError):
            await tx.execute("DELETE FROM items")
    async with db.transaction() as tx:  # the connection is writable again afterwards
        assert await tx.execute("DELETE FROM items WHERE id = $1", 3) == 1


async def test_a_transaction_left_open_is_rolled_back_on_release(db: Database) -> None:
    await make_items(db)
    async with db.connection() as conn:
        await conn.execute("BEGIN")
        await conn.execute("DELETE FROM items")
    assert await names(db) == ["apple", "pear", "plum"]


async def test_cancelling_inside_a_transaction_rolls_it_back(db: Database) -> None:
    await make_items(db)
    entered = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as tx:
            await tx.execute("DELETE FROM items")
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(writer())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await names(db) == ["apple", "pear", "plum"]


async def test_execute_script_runs_several_statements(db: Database) -> None:
    async with db.connection() as conn:
        await conn.execute_script(
            "CREATE TABLE a (x INTEGER); -- a comment; with a semicolon\n"
            "INSERT INTO a VALUES (1); INSERT INTO a VALUES (2);"
        )
    assert await db.fetchval("SELECT sum(x) FROM a") == 3


async def test_raw_is_the_drivers_connection(db: Database) -> None:
    async with db.connection() as conn:
        if db.backend == "postgresql":
            assert await conn.raw.fetchval("SELECT 40 + 2") == 42
        else:
            assert isinstance(conn.raw, sqlite3.Connection)
            value = await conn.run_sync(  # type: ignore[attr-defined]
                lambda raw: raw.execute("SELECT 40 + 2").fetchone()[0]
            )
            assert value == 42


# -- errors -----------------------------------------------------------------------


async def test_constraint_violation_is_integrity_error_from_the_driver(db: Database) -> None:
    await make_items(db)
    with pytest.raises(IntegrityError) as caught:
        await db.execute("INSERT INTO items (id, name) VALUES ($1, $2)", 4, "apple")
    error = caught.value
    assert isinstance(error, DatabaseError) and isinstance(error, HTTPError)
    assert isinstance(error, ShoalError)
    assert error.status == 409
    driver = (sqlite3.Error, asyncpg.PostgresError)
    assert not isinstance(error, driver)
    assert isinstance(error.__cause__, driver)
    assert "apple" not in error.problem()["detail"]
    if db.backend == "postgresql":
        assert error.constraint == "items_name_key"
        assert error.sqlstate == "23505"


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO items (id, name) VALUES (5, NULL)",
        "INSERT INTO nowhere VALUES (1)",
        "SELEC 1",
    ],
)
async def test_driver_errors_never_leak(db: Database, sql: str) -> None:
    await make_items(db)
    with pytest.raises(DatabaseError) as caught:
        await db.execute(sql)
    assert not isinstance(caught.value, (sqlite3.Error, asyncpg.PostgresError))
    assert caught.value.__cause__ is not None


async def test_wrong_argument_count_is_a_database_error(db: Database) -> None:
    with pytest.raises(DatabaseError):
        await db.fetchval("SELECT $1::int + $2::int", 1)


async def test_exhausted_pool_is_unavailable_and_recovers(database_url: str) -> None:
    async with Database(database_url, max_size=1, acquire_timeout=0.2) as db:
        async with db.connection():
            with pytest.raises(DatabaseUnavailable) as caught:
                await db.fetchval("SELECT 1")
        assert caught.value.status == 503
        assert caught.value.headers["retry-after"] == "1"
        assert await db.fetchval("SELECT 1") == 1  # released: served again


async def test_a_caller_cancelled_while_waiting_for_a_connection_is_cancelled_not_refused(
    database_url: str,
) -> None:
    # the acquisition's bound is the pool's own timer: a cancellation from
    # elsewhere (the client went away) must stay a cancellation
    async with Database(database_url, max_size=1, acquire_timeout=5) as db:
        async with db.connection():
            waiting = asyncio.ensure_future(db.fetchval("SELECT 1"))
            await asyncio.sleep(0.1)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        assert await db.fetchval("SELECT 2") == 2  # and the pool lost nothing


async def test_every_statement_gives_its_connection_back_even_when_it_fails(
    database_url: str,
) -> None:
    async with Database(database_url, max_size=1, acquire_timeout=0.5) as db:
        await make_items(db)
        failing = [
            db.fetch("SELECT * FROM missing"),
            db.fetchrow("SELECT * FROM missing"),
            db.fetchval("SELECT * FROM missing"),
            db.execute("DELETE FROM missing"),
            db.executemany("INSERT INTO items (id, name) VALUES ($1, $2)", [(9, "fig"), (1, "x")]),
        ]
        for statement in failing:
            with pytest.raises(DatabaseError):
                await statement
        # the one connection came back each time, with no transaction left open on it
        assert await db.fetchval("SELECT count(*) FROM items") == 3
        row = await db.fetchrow("SELECT name FROM items WHERE id = $1", 2)
        assert row is not None and row["name"] == "pear"
        assert await db.execute("UPDATE items SET qty = 0") == 3
        async with db.transaction() as tx:
            assert await tx.fetchval("SELECT sum(qty) FROM items") == 0


async def test_a_closed_database_refuses_every_method() -> None:
    db = Database("sqlite://:memory:")
    for statement in (
        db.fetch("SELECT 1"),
        db.fetchrow("SELECT 1"),
        db.fetchval("SELECT 1"),
        db.execute("SELECT 1"),
        db.executemany("SELECT $1", [(1,)]),
    ):
        with pytest.raises(DatabaseError, match="is not open"):
            await statement
    with pytest.raises(DatabaseError, match="is not open"):
        db.connection()
    with pytest.raises(DatabaseError, match="is not open"):
        async with db.transaction():
            pass


async def test_statement_timeout_interrupts_a_long_statement(database_url: str) -> None:
    long_query = (
        "SELECT pg_sleep(5)"
        if database_url.startswith("postgresql")
        else "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT count(*) FROM c"
    )
    async with Database(database_url, statement_timeout=0.2) as db:
        with pytest.raises(DatabaseUnavailable) as caught:
            await db.fetchval(long_query)
        assert isinstance(caught.value.__cause__, (sqlite3.Error, asyncpg.PostgresError))
        assert await db.fetchval("SELECT 1") == 1  # the connection is usable afterwards


async def test_using_a_closed_database_says_how_to_open_it() -> None:
    db = Database("sqlite://:memory:")
    with pytest.raises(DatabaseError, match=r"app\.use\(db\)"):
        await db.fetch("SELECT 1")
    async with db:
        assert db.is_open
        assert await db.fetchval("SELECT 1") == 1
    assert not db.is_open
    async with db:  # opens again
        assert await db.fetchval("SELECT 2") == 2


# -- SQLite specifics --------------------------------------------------------------


async def test_sqlite_never_blocks_the_event_loop(tmp_path: Path) -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    long_query = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) "
        "SELECT count(*) FROM c"
    )
    async with Database(f"sqlite:///{tmp_path}/loop.db") as db:
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        assert await db.fetchval(long_query) == 2000000
        during = ticks - before
        stop.set()
        await task
    assert during > 10  # the loop kept running while the query ran on its thread


async def test_sqlite_file_uses_wal_and_concurrent_connections(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/wal.db"
    async with Database(url, max_size=4) as db:
        assert await db.fetchval("PRAGMA journal_mode") == "wal"
        await db.execute("CREATE TABLE n (x INTEGER)")

        async def insert(i: int) -> None:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO n VALUES ($1)", i)

        await asyncio.gather(*(insert(i) for i in range(20)))
        assert await db.fetchval("SELECT count(*) FROM n") == 20
    assert (tmp_path / "wal.db").exists()


async def test_sqlite_memory_database_is_shared_by_all_callers() -> None:
    async with Database("sqlite://:memory:", max_size=5) as db:
        await db.execute("CREATE TABLE t (x INTEGER)")
        await asyncio.gather(*(db.execute("INSERT INTO t VALUES ($1)", i) for i in range(5)))
        assert await db.fetchval("SELECT count(*) FROM t") == 5


async def test_sqlite_enforces_foreign_keys(tmp_path: Path) -> None:
    async with Database(f"sqlite:///{tmp_path}/fk.db") as db:
        await db.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
        await db.execute("CREATE TABLE c (p INTEGER REFERENCES p (id))")
        with pytest.raises(IntegrityError):
            await db.execute("INSERT INTO c VALUES ($1)", 1)


async def test_postgres_unreachable_at_open_is_unavailable() -> None:
    from tests.servers import free_port

    db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", connect_timeout=1)
    with pytest.raises(DatabaseUnavailable) as caught:
        await db.open()
    assert isinstance(caught.value.__cause__, OSError)


class _Relay:
    """A TCP relay to PostgreSQL that can stop passing bytes on: a partition, a frozen host.

    While `frozen`, what either side sends is dropped; connections stay open.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.frozen = False
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers += [writer, up_writer]
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if not self.frozen:
                writer.write(data)
                await writer.drain()
        writer.close()

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()


@asynccontextmanager
async def _relayed(postgres_url: str) -> AsyncIterator[tuple[_Relay, str]]:
    """A `_Relay` in front of the test server, and the URL that goes through it."""
    relay = _Relay(int(postgres_url.rsplit(":", 1)[1].split("/")[0]))
    port = await relay.start()
    try:
        yield relay, postgres_url.replace(f":{relay.port}/", f":{port}/")
    finally:
        await relay.close()


async def test_a_server_that_stops_answering_is_unavailable_at_the_clients_bound(
    postgres_url: str,
) -> None:
    # The server's statement_timeout cannot help when the server cannot answer at
    # all; the client's own bound (statement_timeout + 1 s) must end the wait, for a
    # statement on its own and for a prepared one in a held connection alike.
    statement_timeout = 0.3
    bound = statement_timeout + 1.0
    async with _relayed(postgres_url) as (relay, url):
        db = Database(url, max_size=2, acquire_timeout=1, statement_timeout=statement_timeout)
        await db.open()
        try:
            async with db.connection() as conn:
                select = await conn.prepare("SELECT $1::int")
                assert await select.fetchval(7) == 7
                relay.frozen = True
                begun = asyncio.get_running_loop().time()
                with pytest.raises(DatabaseUnavailable, match="timed out"):
                    async with asyncio.timeout(bound + 5):  # without a bound: TimeoutError
                        await select.fetchval(8)
                waited = asyncio.get_running_loop().time() - begun
            assert bound - 0.1 < waited < bound + 1.5, waited
            begun = asyncio.get_running_loop().time()
            with pytest.raises(DatabaseUnavailable, match=r"timed out|no PostgreSQL connection"):
                async with asyncio.timeout(1 + bound + 5):
                    await db.fetchval("SELECT 1")
            waited = asyncio.get_running_loop().time() - begun
            assert waited < 1 + bound + 1.5, waited  # acquisition, then the statement
            relay.frozen = False  # the server is back: new connections in the cut ones' place
            async with asyncio.timeout(5):
                assert await db.fetchval("SELECT 2") == 2
        finally:
            async with asyncio.timeout(15):
                await db.aclose()


async def test_a_transaction_whose_commit_gets_no_answer_is_unavailable_at_the_bound(
    postgres_url: str,
) -> None:
    statement_timeout = 0.3
    bound = statement_timeout + 1.0
    async with (
        _relayed(postgres_url) as (relay, url),
        Database(url, acquire_timeout=1, statement_timeout=statement_timeout) as db,
    ):
        with pytest.raises(DatabaseUnavailable, match="timed out"):
            async with asyncio.timeout(3 * bound + 5):  # without a bound: TimeoutError
                async with db.transaction() as tx:
                    await tx.execute("SELECT 1")
                    relay.frozen = True


@pytest.mark.parametrize("held", [False, True], ids=["on-its-own", "held-connection"])
async def test_a_statement_cancelled_on_a_silent_server_gives_its_connection_back(
    postgres_url: str, held: bool
) -> None:
    # A caller cancelled mid-statement (a deadline, a client gone): asyncpg asks the
    # server to cancel it, and the connection must not serve again before the server
    # confirms. The caller goes on at once; a server that cannot answer must not keep
    # the pool's only connection forever: past acquire_timeout, it is closed.
    async with (
        _relayed(postgres_url) as (relay, url),
        Database(url, max_size=1, acquire_timeout=1, statement_timeout=None) as db,
    ):
        assert await db.fetchval("SELECT 1") == 1
        relay.frozen = True
        begun = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):  # the caller's own deadline
                if held:
                    async with db.connection() as conn:
                        await conn.fetchval("SELECT 2")
                else:
                    await db.fetchval("SELECT 2")
        waited = asyncio.get_running_loop().time() - begun
        assert waited < 0.3 + 0.5, waited  # the caller's deadline, not the pool's wait
        relay.frozen = False
        async with asyncio.timeout(5):  # the pool's one connection is free again
            assert await db.fetchval("SELECT 3") == 3


async def test_a_statement_cancelled_on_a_live_server_is_cancelled_there_too(
    postgres_url: str,
) -> None:
    # the connection is not thrown away: the server stops the statement, and the
    # pool's only connection serves the next caller at once, not in 5 s
    async with Database(postgres_url, max_size=1, statement_timeout=None) as db:
        pid = await db.fetchval("SELECT pg_backend_pid()")
        for held in (False, True):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    if held:
                        async with db.connection() as conn:
                            sleep = await conn.prepare("SELECT pg_sleep($1)")
                            await sleep.fetchval(5)
                    else:
                        await db.fetchval("SELECT pg_sleep(5)")
            begun = asyncio.get_running_loop().time()
            assert await db.fetchval("SELECT pg_backend_pid()") == pid  # the same connection
            assert asyncio.get_running_loop().time() - begun < 2.5


# -- configuration ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "backend", "target"),
    [
        ("sqlite://:memory:", "sqlite", ":memory:"),
        ("sqlite://", "sqlite", ":memory:"),
        ("sqlite:///:memory:", "sqlite", ":memory:"),
        ("sqlite:///app.db", "sqlite", "app.db"),
        ("sqlite:///data/app.db", "sqlite", "data/app.db"),
        ("sqlite:////var/lib/app.db", "sqlite", "/var/lib/app.db"),
        ("SQLite:///app.db", "sqlite", "app.db"),
        ("postgresql://u:p@db:5432/app", "postgresql", "postgresql://u:p@db:5432/app"),
        ("postgres://db/app", "postgresql", "postgres://db/app"),
    ],
)
def test_url_selects_the_backend(url: str, backend: str, target: str) -> None:
    db = Database(url)
    assert (db.backend, db._target) == (backend, target)


@pytest.mark.parametrize(
    "url", ["mysql://db/app", "app.db", "sqlite:app.db", "sqlite://relative.db", "sqlite:///"]
)
def test_bad_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Database(url)


def test_url_comes_from_database_url_then_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://svc@db/orders")
    assert Database().backend == "postgresql"
    assert Database("sqlite:///x.db").backend == "sqlite"  # an explicit URL wins
    monkeypatch.delenv("DATABASE_URL")
    assert Database().url == "sqlite://:memory:"


def test_repr_hides_the_password() -> None:
    assert "secret" not in repr(Database("postgresql://svc:secret@db/orders"))
    assert "***" in repr(Database("postgresql://svc:secret@db/orders"))


@pytest.mark.parametrize(
    "options",
    [
        {"max_size": 0},
        {"min_size": 5, "max_size": 2},
        {"min_size": -1},
        {"acquire_timeout": 0},
        {"connect_timeout": -1},
        {"statement_timeout": 0},
        {"busy_timeout": 0},
    ],
)
def test_bad_pool_options_are_configuration_errors(options: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        Database("sqlite://:memory:", **options)  # type: ignore[arg-type]


async def test_sqlite_writer_locked_out_past_busy_timeout_is_unavailable(tmp_path: Path) -> None:
    async with Database(f"sqlite:///{tmp_path}/busy.db", max_size=2, busy_timeout=0.1) as db:
        await db.execute("CREATE TABLE t (x INTEGER)")
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (1)")  # holds the write lock
            with pytest.raises(DatabaseUnavailable) as caught:
                async with db.transaction() as other:
                    await other.execute("INSERT INTO t VALUES (2)")
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        assert await db.fetchval("SELECT count(*) FROM t") == 1


async def test_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/no/such/dir/app.db")
    with pytest.raises(DatabaseUnavailable) as caught:
        await db.open()
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert not db.is_open


async def test_a_connection_held_while_the_database_closes_goes_back_quietly(
    database_url: str,
) -> None:
    # a request that outlives the shutdown's drain: its connection comes back
    # while the pool is closing, and neither side raises
    db = Database(database_url, acquire_timeout=2)
    await db.open()
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT 1") == 1
        closing = asyncio.create_task(db.aclose())
        await asyncio.sleep(0.05)
        assert not closing.done()  # asyncpg waits for the connection lent out
        assert await conn.fetchval("SELECT 2") == 2
    await asyncio.wait_for(closing, 1)  # released: the close ends without the timeout
    assert not db.is_open


async def test_a_connection_kept_past_the_close_fails_as_a_database_error(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/x.db", acquire_timeout=0.1)
    await db.open()
    async with db.connection() as conn:
        await db.aclose()  # gives up waiting for `conn` after acquire_timeout
        with pytest.raises(DatabaseError, match="closed"):
            await conn.fetchval("SELECT 1")
    assert not db.is_open
