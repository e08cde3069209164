"""The bottom layer of `shoal.db`: what `Database` and every backend share.

`Row`, `Connection` and `DatabaseOptions` are the public vocabulary (exported
by `shoal.db`); `Pool` is what a backend implements and `Database` delegates
to. This module imports no other module of the package, so the backends
(`_sqlite`, `_postgres`) and `database` all import it and never each other's
internals.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from ..errors import ConfigurationError
from ..metrics import Histogram

__all__ = ["Connection", "DatabaseOptions", "Pool", "Row", "Statement"]


class Row(ABC):
    """One result row: `row["name"]`, `row.name`, `row[0]`, `dict(row)`.

    Rows are read-only. Both backends' rows are instances of this class
    (PostgreSQL's are asyncpg Records, SQLite's are tuples).
    """

    __slots__ = ()

    @abstractmethod
    def __getitem__(self, key: int | str) -> Any:
        """The value of column `key` (a name or a position)."""

    @abstractmethod
    def __getattr__(self, name: str) -> Any:
        """The value of column `name`."""

    @abstractmethod
    def __len__(self) -> int:
        """The number of columns."""

    @abstractmethod
    def __iter__(self) -> Iterator[Any]:
        """The values, in column order."""

    @abstractmethod
    def keys(self) -> Iterator[str]:
        """The column names, in order."""

    @abstractmethod
    def values(self) -> Iterator[Any]:
        """The values, in column order."""

    @abstractmethod
    def items(self) -> Iterator[tuple[str, Any]]:
        """`(name, value)` pairs, in column order."""

    @abstractmethod
    def get(self, key: str, default: Any = None) -> Any:
        """The value of column `key`, or `default` when there is no such column."""


class Statement(ABC):
    """A statement prepared on one connection (`await conn.prepare(sql)`), run
    again and again with new arguments: no parsing or planning after the first.

    It belongs to the connection it was prepared on, and lives as long as you
    hold that connection (the `async with db.connection()` or
    `db.transaction()` block): used after the block, it raises `DatabaseError`.
    """

    __slots__ = ()

    sql: str
    """The SQL text it was prepared from (`$1, $2, ...` placeholders)."""

    @abstractmethod
    async def fetch(self, *args: Any) -> list[Row]:
        """Run it and return all its rows."""

    @abstractmethod
    async def fetchrow(self, *args: Any) -> Row | None:
        """Run it and return its first row, or None when it returns none."""

    @abstractmethod
    async def fetchval(self, *args: Any) -> Any:
        """Run it and return the first column of its first row (None if no row)."""

    @abstractmethod
    async def execute(self, *args: Any) -> int:
        """Run it; return the number of rows it affected (0 if it reports none)."""

    @abstractmethod
    async def executemany(self, args: Iterable[Sequence[Any]]) -> None:
        """Run it once per argument tuple, all or nothing."""


class Connection(ABC):
    """One pooled connection: the same statements as `Database`, on one session.

    Get one with `async with db.connection() as conn:` (several statements on
    one connection) or `async with db.transaction() as tx:` (the same, inside
    a transaction). `raw` is the driver's own connection, for what this API
    lacks: an `asyncpg.Connection` (await its methods directly), or a
    `sqlite3.Connection` that must only be used through `run_sync`.
    """

    __slots__ = ()

    raw: Any

    @abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """Run a query and return all its rows."""

    @abstractmethod
    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """Run a query and return its first row, or None when it returns none."""

    @abstractmethod
    async def fetchval(self, sql: str, *args: Any) -> Any:
        """Run a query and return the first column of its first row (None if no row)."""

    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; return the number of rows it affected (0 if it reports none)."""

    @abstractmethod
    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        """Run a statement once per argument tuple, all or nothing."""

    @abstractmethod
    async def execute_script(self, script: str) -> None:
        """Run several `;`-separated statements that take no arguments (a migration)."""

    @abstractmethod
    async def prepare(self, sql: str) -> Statement:
        """Prepare `sql` on this connection, to run it many times (see `Statement`).

        On PostgreSQL this is asyncpg's prepared statement: the server parses
        and plans it once (one round trip, here), and each run skips the
        statement cache's look-up as well. On SQLite the statement is
        compiled on its first run and kept compiled by the connection; an
        error in the SQL shows there, not here.
        """

    @abstractmethod
    def transaction(self, *, readonly: bool = False) -> AbstractAsyncContextManager[Connection]:
        """Run the block in a transaction: commit at its end, roll back on any exception.

        Nested blocks become savepoints: an exception caught inside the outer
        block undoes only the inner block's writes.
        """


@dataclass(frozen=True, slots=True)
class DatabaseOptions:
    """Pool sizes and timeouts (seconds); see `Database` for what each means."""

    min_size: int = 1
    max_size: int = 10
    connect_timeout: float = 5.0
    acquire_timeout: float = 5.0
    statement_timeout: float | None = 30.0
    busy_timeout: float = 5.0
    retry_after: int = 1
    statement_cache_size: int = 100
    reset_on_release: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.min_size <= self.max_size or self.max_size < 1:
            raise ConfigurationError(
                f"a database pool needs 0 <= min_size <= max_size and max_size >= 1, "
                f"got min_size={self.min_size}, max_size={self.max_size}"
            )
        for name in ("connect_timeout", "acquire_timeout", "busy_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive")
        if self.statement_timeout is not None and self.statement_timeout <= 0:
            raise ConfigurationError("statement_timeout must be positive, or None for no limit")


C = TypeVar("C", bound=Connection)


class Pool(ABC, Generic[C]):
    """A backend's pool of connections: what `Database` delegates to while it is open.

    A backend implements `open`, `close`, `acquire` and `release`; `connection()`
    and `statement()` pair an acquire with its release, and count the lease
    with `lent()` and `returned()` (a backend that writes `statement()` out
    calls those too).
    """

    in_use = 0
    """Connections lent out now (counted by `connection()`)."""
    durations: Histogram | None = None
    """Where `connection()` records how long each lease held its connection, if set."""

    @abstractmethod
    async def open(self) -> None:
        """Open the pool and its first connections; raise `DatabaseUnavailable` if it cannot."""

    @abstractmethod
    async def close(self) -> None:
        """Close every connection."""

    @abstractmethod
    async def acquire(self) -> C:
        """A connection for one caller, within `acquire_timeout` (else `DatabaseUnavailable`)."""

    @abstractmethod
    async def release(self, conn: C) -> None:
        """Take back a connection from `acquire`, ready for its next caller."""

    def open_connections(self) -> int:
        """Connections open now, lent out or idle."""
        return 0

    def connection(self) -> AbstractAsyncContextManager[Connection]:
        """`async with pool.connection() as conn:` holds one connection for the block."""
        return _Lease(self)

    async def statement(self, name: str, sql: str, args: tuple[Any, ...]) -> Any:
        """`await conn.<name>(sql, *args)` on a connection of its own, given back at once.

        What each single-statement call of `Database` does (`fetch`,
        `fetchrow`, `fetchval`). A backend may do it in fewer coroutine frames
        (`PostgresPool`): each frame on the chain is resumed at every wait.
        """
        async with self.connection() as conn:
            return await getattr(conn, name)(sql, *args)

    def lent(self) -> float:
        """Count a connection as lent out; returns when its lease started."""
        self.in_use += 1
        return time.perf_counter()

    def returned(self, started: float) -> None:
        """Count the connection of the lease `lent` started as given back."""
        self.in_use -= 1
        if self.durations is not None:
            self.durations.observe(time.perf_counter() - started)


class _Lease(Generic[C]):
    """One acquire/release pair as an async context manager.

    A class rather than `@asynccontextmanager`: a generator-based manager
    costs several calls more.
    """

    __slots__ = ("_pool", "_conn", "_started")

    def __init__(self, pool: Pool[C]) -> None:
        self._pool = pool

    async def __aenter__(self) -> C:
        pool = self._pool
        self._conn = await pool.acquire()
        self._started = pool.lent()
        return self._conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pool = self._pool
        pool.returned(self._started)
        await pool.release(self._conn)
