"""The PostgreSQL backend: asyncpg's pool, its prepared-statement cache, its records.

asyncpg prepares each distinct statement once per connection and caches it
(`statement_cache_size`), so repeated queries skip parsing and planning. Every
asyncpg or socket error is translated here, at the boundary, into the
`DatabaseError` tree; nothing asyncpg raises reaches the caller.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from time import monotonic
from typing import Any, TypeVar

import asyncpg
from asyncpg import exceptions as pg

from .._expiry import Expiry
from ..errors import DatabaseError, DatabaseUnavailable, IntegrityError, OutOfRange
from ._base import Connection, DatabaseOptions, Pool, Row, Statement

__all__ = ["PostgresConnection", "PostgresPool", "PostgresRow", "PostgresStatement"]

logger = logging.getLogger("shoal.db")

T = TypeVar("T")


class PostgresRow(asyncpg.Record):
    """An asyncpg record that also answers `row.column`."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the row has no column {name!r}") from None


Row.register(PostgresRow)

# Server errors that say "not now" rather than "never": the client may retry.
_RETRYABLE: tuple[type[BaseException], ...] = (
    pg.PostgresConnectionError,  # class 08: the connection failed or was lost
    pg.OperatorInterventionError,  # class 57: shutdown, cancelled (statement_timeout)
    pg.InsufficientResourcesError,  # class 53: too many connections, disk or memory full
    pg.TransactionRollbackError,  # class 40: serialization failure, deadlock
    pg.LockNotAvailableError,  # 55P03: lock_timeout
    OSError,  # refused, reset, unreachable
    TimeoutError,  # connect or command timeout
)


def translate(exc: BaseException, connection: Any, retry_after: int) -> DatabaseError:
    """The shoal error for `exc`, raised while using `connection` (None while acquiring)."""
    sqlstate: str | None = getattr(exc, "sqlstate", None)
    if isinstance(exc, pg.DataError) and isinstance(exc.__cause__, OverflowError):
        # asyncpg could not encode an argument: an int past the column's range
        found = re.match(r"invalid input for query argument \$(\d+)", str(exc))
        return OutOfRange(str(exc), sqlstate=sqlstate, argument=int(found[1]) if found else None)
    if isinstance(exc, pg.IntegrityConstraintViolationError):
        constraint = getattr(exc, "constraint_name", None)
        return IntegrityError(str(exc), sqlstate=sqlstate, constraint=constraint)
    if isinstance(exc, _RETRYABLE) or (
        # A statement on a connection that died under it: asyncpg says
        # "connection is closed", an InterfaceError like a misuse would be.
        isinstance(exc, pg.InterfaceError) and connection is not None and connection.is_closed()
    ):
        reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        return DatabaseUnavailable(
            f"PostgreSQL is unavailable: {reason}", sqlstate=sqlstate, retry_after=retry_after
        )
    return DatabaseError(str(exc), sqlstate=sqlstate)


def _rowcount(status: str) -> int:
    """The row count at the end of a command tag (`INSERT 0 3` → 3, `CREATE TABLE` → 0)."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


class PostgresStatement(Statement):
    """An asyncpg prepared statement on one pooled connection."""

    __slots__ = ("sql", "_raw", "_conn")

    def __init__(self, sql: str, raw: Any, conn: PostgresConnection) -> None:
        self.sql = sql
        self._raw = raw  # an asyncpg PreparedStatement (typed Any: its rows are PostgresRows)
        self._conn = conn

    def _error(self, exc: BaseException) -> DatabaseError:
        conn = self._conn
        if conn.released:  # asyncpg refused: the lease is over
            return DatabaseError(
                f"the statement {self.sql!r} was prepared on a connection that has gone back "
                "to the pool: prepare it again inside the `async with` block that holds one"
            )
        return translate(exc, conn.raw, conn.retry_after)

    async def fetch(self, *args: Any) -> list[Row]:
        try:
            rows: list[Row] = await self._raw.fetch(*args)
        except Exception as exc:
            raise self._error(exc) from exc
        return rows

    async def fetchrow(self, *args: Any) -> Row | None:
        try:
            row: Row | None = await self._raw.fetchrow(*args)
        except Exception as exc:
            raise self._error(exc) from exc
        return row

    async def fetchval(self, *args: Any) -> Any:
        try:
            return await self._raw.fetchval(*args)
        except Exception as exc:
            raise self._error(exc) from exc

    async def execute(self, *args: Any) -> int:
        try:
            await self._raw.fetch(*args)
        except Exception as exc:
            raise self._error(exc) from exc
        return _rowcount(self._raw.get_statusmsg() or "")

    async def executemany(self, args: Iterable[Sequence[Any]]) -> None:
        try:
            await self._raw.executemany(args)
        except Exception as exc:
            raise self._error(exc) from exc


class PostgresConnection(Connection):
    """A pooled asyncpg connection."""

    __slots__ = ("raw", "retry_after", "released")

    def __init__(self, raw: Any, retry_after: int) -> None:
        self.raw: asyncpg.Connection = raw
        self.retry_after = retry_after
        self.released = False
        """Set when the pool takes the connection back: its statements stop working."""

    def _error(self, exc: BaseException) -> DatabaseError:
        return translate(exc, self.raw, self.retry_after)

    async def _run(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`await call(*args)`, every error it raises translated."""
        try:
            return await call(*args)
        except Exception as exc:
            raise self._error(exc) from exc

    # The statements of a held connection (`db.connection()`, a transaction):
    # the `try` written out in each rather than through `_run`, one coroutine
    # frame less to resume per wait; a single `Database` call goes through
    # `PostgresPool.statement` instead. (`raw` as Any: its records are
    # PostgresRows, the pool's record class.)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        raw: Any = self.raw
        try:
            rows: list[Row] = await raw.fetch(sql, *args)
        except Exception as exc:
            raise self._error(exc) from exc
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        raw: Any = self.raw
        try:
            row: Row | None = await raw.fetchrow(sql, *args)
        except Exception as exc:
            raise self._error(exc) from exc
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        try:
            return await self.raw.fetchval(sql, *args)
        except Exception as exc:
            raise self._error(exc) from exc

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            status: str = await self.raw.execute(sql, *args)
        except Exception as exc:
            raise self._error(exc) from exc
        return _rowcount(status)

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self._run(self.raw.executemany, sql, args)  # atomic since asyncpg 0.22

    async def execute_script(self, script: str) -> None:
        await self._run(self._script, script)

    async def prepare(self, sql: str) -> Statement:
        return PostgresStatement(sql, await self._run(self.raw.prepare, sql), self)

    async def _script(self, script: str) -> None:
        async with self.raw.transaction():
            await self.raw.execute(script)  # no arguments: the simple protocol

    def transaction(self, *, readonly: bool = False) -> AbstractAsyncContextManager[Connection]:
        return self._transaction(readonly)

    @asynccontextmanager
    async def _transaction(self, readonly: bool) -> AsyncIterator[Connection]:
        transaction = self.raw.transaction(readonly=readonly)
        await self._run(transaction.start)
        try:
            yield self
        except BaseException:
            try:
                await transaction.rollback()
            except Exception as exc:  # a dead connection: the server rolled back already
                logger.debug("rollback failed after an error: %r", exc)
            raise
        await self._run(transaction.commit)


def _client_timeout(statement_timeout: float | None) -> float | None:
    """The client's own bound on a statement: the server's, plus a second for it to say so.

    The server cancels a statement at `statement_timeout` and the connection
    stays usable; the client's bound only matters when the server cannot
    answer at all (a network partition, a stopped host).
    """
    return None if statement_timeout is None else statement_timeout + 1.0


async def _keep_session(connection: Any) -> None:
    """Pool reset hook: asyncpg has already rolled back an open transaction; keep the rest."""


class PostgresPool(Pool[PostgresConnection]):
    """asyncpg's pool, with acquisition bounded by `acquire_timeout`."""

    def __init__(self, dsn: str, options: DatabaseOptions) -> None:
        self.dsn = dsn
        self.options = options
        self._pool: asyncpg.Pool | None = None
        self._retry_after = options.retry_after
        self._acquire_timeout = options.acquire_timeout
        self._expiry = Expiry()  # bounds acquisitions (see shoal._expiry: cheaper than a timeout)

    async def open(self) -> None:
        options = self.options
        self._expiry.start(asyncio.get_running_loop())
        server_settings = {"application_name": "shoal"}
        if options.statement_timeout is not None:
            server_settings["statement_timeout"] = str(int(options.statement_timeout * 1000))
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=options.min_size,
                max_size=options.max_size,
                timeout=options.connect_timeout,
                command_timeout=_client_timeout(options.statement_timeout),
                statement_cache_size=options.statement_cache_size,
                server_settings=server_settings,
                record_class=PostgresRow,
                reset=None if options.reset_on_release else _keep_session,
            )
        except Exception as exc:
            raise translate(exc, None, self._retry_after) from exc

    async def close(self) -> None:
        # `_pool` stays set while asyncpg waits for the connections still lent
        # out (a request that outlived the shutdown's drain): they come back
        # through `release` as usual
        pool = self._pool
        if pool is not None:
            try:
                async with asyncio.timeout(self.options.acquire_timeout):
                    await pool.close()
            except (Exception, TimeoutError) as exc:
                logger.warning("closing the PostgreSQL pool failed (%r); terminating it", exc)
                pool.terminate()
            finally:
                self._pool = None
                self._expiry.close()

    def open_connections(self) -> int:
        return self._pool.get_size() if self._pool is not None else 0

    async def acquire(self) -> PostgresConnection:
        """A connection from asyncpg's pool within `acquire_timeout`, or 503."""
        assert self._pool is not None
        try:
            raw = await self._expiry.wait(self._pool.acquire(), monotonic() + self._acquire_timeout)
        except TimeoutError as exc:
            raise DatabaseUnavailable(
                f"no PostgreSQL connection within {self._acquire_timeout}s "
                "(the pool is exhausted or the server is unreachable)",
                retry_after=self._retry_after,
            ) from exc
        except Exception as exc:
            raise translate(exc, None, self._retry_after) from exc
        return PostgresConnection(raw, self._retry_after)

    async def statement(self, name: str, sql: str, args: tuple[Any, ...]) -> Any:
        # the base class's lease written out, and asyncpg's method called on the
        # pooled connection itself: two coroutine frames fewer on every wait
        conn = await self.acquire()
        started = self.lent()
        try:
            return await getattr(conn.raw, name)(sql, *args)
        except Exception as exc:
            raise conn._error(exc) from exc
        finally:
            self.returned(started)
            await self.release(conn)

    async def release(self, conn: PostgresConnection) -> None:
        """Return `conn` to the pool; a connection that died is dropped by asyncpg."""
        conn.released = True
        pool = self._pool
        if pool is None:  # the pool was closed, and this connection with it
            return
        try:
            # `raw` is typed as the connection it stands for; it is the pool's proxy.
            await pool.release(conn.raw)  # type: ignore[arg-type]
        except Exception as exc:
            logger.debug("releasing a PostgreSQL connection failed: %r", exc)
