"""`Database`: one API over PostgreSQL (asyncpg) and SQLite (sqlite3, off the loop).

```python
from shoal import App
from shoal.db import Database

app = App()
db = app.use(Database())          # DATABASE_URL, or an in-memory SQLite database

@app.get("/users/{user_id:int}")
async def get_user(user_id: int, db: Database) -> dict:
    row = await db.fetchrow("SELECT id, name FROM users WHERE id = $1", user_id)
    return dict(row) if row else {}
```

The pool opens when the app starts (`app.use(db)` enters it like any async
context manager) and closes last when it stops. Placeholders are `$1, $2, ...`
on both backends. Every driver error is translated at this boundary into the
`DatabaseError` tree of `shoal.errors`, with the driver's exception chained as
its `__cause__`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    nullcontext,
)
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigurationError, DatabaseError
from ..metrics import Histogram, Sample
from ..tracing import database_span
from ._base import Connection, DatabaseOptions, Pool, Row, Statement
from ._sqlite import SQLitePool

__all__ = ["DEFAULT_URL", "Connection", "Database", "DatabaseOptions", "Row", "Statement"]

DEFAULT_URL = "sqlite://:memory:"
"""The database used when neither `url` nor `DATABASE_URL` names one."""


class _ClosedPool(Pool[Any]):
    """Stands in for the pool while the database is closed: every call says so."""

    __slots__ = ("_database",)

    def __init__(self, database: Database) -> None:
        self._database = database

    def _error(self) -> DatabaseError:
        return DatabaseError(
            f"{self._database!r} is not open: register it with app.use(db), or use `async with db:`"
        )

    async def open(self) -> None:  # pragma: no cover - never called
        raise self._error()

    async def close(self) -> None:
        return None

    async def acquire(self) -> Any:  # pragma: no cover - connection() raises first
        raise self._error()

    async def release(self, conn: Any) -> None:  # pragma: no cover - nothing is acquired
        return None

    def connection(self) -> AbstractAsyncContextManager[Connection]:
        raise self._error()


def _postgres_pool(dsn: str, options: DatabaseOptions) -> Pool[Any]:
    # Imported on first use: asyncpg takes tens of milliseconds to import,
    # which users of SQLite alone need not pay. `_postgres` imports only
    # `_base`, so this guards no import cycle.
    from ._postgres import PostgresPool

    return PostgresPool(dsn, options)


_BACKENDS: dict[str, Callable[[str, DatabaseOptions], Pool[Any]]] = {
    "sqlite": SQLitePool,
    "postgresql": _postgres_pool,
}
"""The pool of each backend `parse_url` names, made from its target and the options."""


def parse_url(url: str) -> tuple[str, str]:
    """Split a database URL into its backend and what that backend connects to.

    `sqlite://:memory:`, `sqlite://` and `sqlite:///:memory:` are an in-memory
    database; `sqlite:///app.db` is the file `app.db` relative to the working
    directory and `sqlite:////var/lib/app.db` the absolute path (SQLAlchemy's
    convention). `postgresql://` (or `postgres://`) URLs go to asyncpg as they are.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ConfigurationError(f"a database URL looks like scheme://..., got {url!r}")
    if scheme == "sqlite":
        if rest in ("", ":memory:", "/:memory:"):
            return "sqlite", ":memory:"
        if not rest.startswith("/") or rest == "/":
            raise ConfigurationError(
                f"a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db "
                f"(or sqlite://:memory:), got {url!r}"
            )
        return "sqlite", rest[1:]
    if scheme in ("postgresql", "postgres"):
        return "postgresql", url
    raise ConfigurationError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:// or postgresql://"
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


_NO_SPAN: AbstractContextManager[None] = nullcontext()


class Database:
    """A pool of connections to one database, opened and closed with the app.

    `url` defaults to the `DATABASE_URL` environment variable (read when the
    `Database` is created), then to `sqlite://:memory:`. Register it with
    `app.use(db)`; handlers receive it by declaring a parameter `db: Database`.
    Outside an app, `async with Database(url) as db:` opens and closes it.

    Pool and timeouts (defaults in brackets):

    - `min_size` [1], `max_size` [10]: connections kept open / at most. An
      in-memory SQLite database always has exactly one connection.
    - `connect_timeout` [5 s]: to open one connection.
    - `acquire_timeout` [5 s]: to get a connection from the pool, connecting
      included; past it the caller gets `DatabaseUnavailable` (503).
    - `statement_timeout` [30 s, None for no limit]: one statement's run time;
      past it, `DatabaseUnavailable`. PostgreSQL cancels the statement itself
      (its `statement_timeout` setting) and the client gives up one second
      later if the server cannot answer at all; SQLite interrupts it.
    - `busy_timeout` [5 s]: SQLite only, how long a writer waits for the lock.
    - `retry_after` [1 s]: the `Retry-After` sent with 503s.
    - `statement_cache_size` [100]: PostgreSQL prepared statements cached per
      connection (0 behind pgbouncer in transaction mode).
    - `reset_on_release` [False]: PostgreSQL only; run asyncpg's full session
      reset (`RESET ALL`, `UNLISTEN *`, unlock advisory locks) each time a
      connection goes back to the pool. Off, only an open transaction is rolled
      back, which saves a round trip per use: keep session settings in
      `SET LOCAL` inside a transaction.

    Operations: `name` (default: the backend, `sqlite` or `postgresql`)
    labels its metrics (`shoal_db_pool_size`, `shoal_db_pool_in_use`,
    `shoal_db_query_duration_seconds`: how long each statement or block held
    its connection) and names its readiness check (`SELECT 1`) on `/readyz`.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        acquire_timeout: float = 5.0,
        statement_timeout: float | None = 30.0,
        busy_timeout: float = 5.0,
        retry_after: int = 1,
        statement_cache_size: int = 100,
        reset_on_release: bool = False,
        name: str | None = None,
    ) -> None:
        self.url = url or os.environ.get("DATABASE_URL") or DEFAULT_URL
        self.backend, self._target = parse_url(self.url)
        self.options = DatabaseOptions(
            min_size=min_size,
            max_size=max_size,
            connect_timeout=connect_timeout,
            acquire_timeout=acquire_timeout,
            statement_timeout=statement_timeout,
            busy_timeout=busy_timeout,
            retry_after=retry_after,
            statement_cache_size=statement_cache_size,
            reset_on_release=reset_on_release,
        )
        self._pool: Pool[Any] = _ClosedPool(self)
        self.name = name or self.backend
        self.query_durations = Histogram()
        self._tracer: Any = None

    def __repr__(self) -> str:
        return f"Database({_redact(self.url)!r})"

    @property
    def is_open(self) -> bool:
        """True between `open()` and `aclose()`."""
        return not isinstance(self._pool, _ClosedPool)

    # -- lifespan -------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool (and its first `min_size` connections); no-op when open.

        An unreachable database raises `DatabaseUnavailable`, so an app that
        cannot reach its database fails to start.
        """
        if self.is_open:
            return
        pool = _BACKENDS[self.backend](self._target, self.options)
        await pool.open()
        pool.durations = self.query_durations
        self._pool = pool

    async def aclose(self) -> None:
        """Close every connection; the database can be opened again later."""
        pool, self._pool = self._pool, _ClosedPool(self)
        await pool.close()

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- operations -----------------------------------------------------------

    async def check_readiness(self) -> None:
        """`/readyz`'s check: a `SELECT 1` answered (the health probe bounds its time)."""
        await self.fetchval("SELECT 1")

    def use_tracer(self, tracer: Any) -> None:
        """Trace each statement with `tracer` (an OpenTelemetry tracer; None: stop)."""
        self._tracer = tracer

    def _span(self, sql: str) -> AbstractContextManager[None]:
        if self._tracer is None:
            return _NO_SPAN
        return database_span(self._tracer, self.backend, self.name, sql)

    def collect_metrics(self) -> list[Sample]:
        """This database's samples for `/metrics` (see `shoal.metrics`)."""
        labels = (("database", self.name),)
        return [
            ("shoal_db_pool_size", labels, float(self._pool.open_connections())),
            ("shoal_db_pool_in_use", labels, float(self._pool.in_use)),
            *self.query_durations.samples("shoal_db_query_duration_seconds", labels),
        ]

    # -- statements (each on a connection of its own, returned at once) --------

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """Run a query and return all its rows."""
        with self._span(sql):
            rows: list[Row] = await self._pool.statement("fetch", sql, args)
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """Run a query and return its first row, or None when it returns none."""
        with self._span(sql):
            row: Row | None = await self._pool.statement("fetchrow", sql, args)
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """Run a query and return the first column of its first row (None if no row)."""
        with self._span(sql):
            return await self._pool.statement("fetchval", sql, args)

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; return the number of rows it affected (0 if it reports none)."""
        async with self._pool.connection() as conn:
            with self._span(sql):
                return await conn.execute(sql, *args)

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        """Run a statement once per argument tuple, all or nothing."""
        async with self._pool.connection() as conn:
            with self._span(sql):
                await conn.executemany(sql, args)

    # -- several statements on one connection ---------------------------------

    def connection(self) -> AbstractAsyncContextManager[Connection]:
        """`async with db.connection() as conn:` holds one connection for the block."""
        return self._pool.connection()

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[Connection]:
        """`async with db.transaction() as tx:` commits at the end, rolls back on error.

        `tx` has the same methods as the database. An exception anywhere in
        the block (a `HTTPError` included) rolls everything back, then
        propagates. On SQLite a read-write transaction takes the write lock at
        its start (`BEGIN IMMEDIATE`), so it never fails half-way for want of it.
        """
        async with self._pool.connection() as conn, conn.transaction(readonly=readonly):
            yield conn
