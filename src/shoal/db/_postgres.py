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
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from time import monotonic
from typing import Any, TypeVar

import asyncpg
from asyncpg import exceptions as pg

from .._expiry import Deadlines, Expiry
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


def translate(
    exc: BaseException, connection: Any, retry_after: int, timed_out: bool = False
) -> DatabaseError:
    """The shoal error for `exc`, raised while using `connection` (None while acquiring);
    `timed_out`: the client's bound closed the connection under the statement."""
    sqlstate: str | None = getattr(exc, "sqlstate", None)
    if timed_out:
        return DatabaseUnavailable(
            "PostgreSQL is unavailable: timed out (no answer within the client's bound)",
            retry_after=retry_after,
        )
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


class _Watch(Deadlines[asyncpg.Connection]):
    """The client's own bound on statements: the pool's `Deadlines` of connections.

    A statement registers its connection and end; past the end the server has
    not answered, not even to cancel the statement at its own
    `statement_timeout`, so the connection is closed under it: the statement
    fails at once, and the pool drops the connection. Registering is a dict
    store and a pop, where a wait through `Expiry` (one coroutine frame more,
    resumed at every wait) costs about 4,400 instructions a statement.
    """

    __slots__ = ("bound", "cut")

    def __init__(self, bound: float) -> None:
        super().__init__()
        self.bound = bound
        self.cut: set[asyncpg.Connection] = set()  # closed by the bound, error not yet seen

    def enter(self, conn: asyncpg.Connection) -> None:
        """A statement starts on `conn`."""
        end = monotonic() + self.bound
        self.pending[conn] = end
        if end < self.at:  # (never with no bound: the end is infinity)
            self.arm(end)

    def leave(self, conn: asyncpg.Connection) -> None:
        """The statement on `conn` is over (its error, if any, already translated)."""
        self.pending.pop(conn, None)
        if self.cut:  # cut as its answer came in: nobody will ask
            self.cut.discard(conn)

    def timed_out(self, conn: asyncpg.Connection) -> bool:
        """Whether the bound closed `conn` (asked once, by the statement that failed)."""
        if conn in self.cut:
            self.cut.discard(conn)
            return True
        return False

    def expire(self, conn: asyncpg.Connection) -> None:
        self.cut.add(conn)
        conn.terminate()

    def close(self) -> None:
        super().close()
        self.cut.clear()


class PostgresStatement(Statement):
    """An asyncpg prepared statement on one pooled connection."""

    __slots__ = ("sql", "_raw", "_conn")

    def __init__(self, sql: str, raw: Any, conn: PostgresConnection) -> None:
        self.sql = sql
        self._raw = raw  # an asyncpg PreparedStatement (typed Any: its rows are PostgresRows)
        self._conn = conn

    # Each run as a PostgresConnection statement: watched, errors translated.

    async def fetch(self, *args: Any) -> list[Row]:
        conn = self._conn
        raw = conn._begin(self)
        try:
            rows: list[Row] = await self._raw.fetch(*args)
        except Exception as exc:
            raise conn._error(exc) from exc
        except asyncio.CancelledError:
            conn.interrupted = True
            raise
        finally:
            conn._watch.leave(raw)
        return rows

    async def fetchrow(self, *args: Any) -> Row | None:
        conn = self._conn
        raw = conn._begin(self)
        try:
            row: Row | None = await self._raw.fetchrow(*args)
        except Exception as exc:
            raise conn._error(exc) from exc
        except asyncio.CancelledError:
            conn.interrupted = True
            raise
        finally:
            conn._watch.leave(raw)
        return row

    async def fetchval(self, *args: Any) -> Any:
        return await self._conn._run(self._raw.fetchval, *args, statement=self)

    async def execute(self, *args: Any) -> int:
        await self._conn._run(self._raw.fetch, *args, statement=self)
        return _rowcount(self._raw.get_statusmsg() or "")

    async def executemany(self, args: Iterable[Sequence[Any]]) -> None:
        await self._conn._run(self._raw.executemany, args, statement=self)


class PostgresConnection(Connection):
    """A pooled asyncpg connection; each statement watched by the pool's `_Watch`."""

    __slots__ = ("_raw", "retry_after", "released", "interrupted", "_watch")

    def __init__(self, raw: asyncpg.Connection, pool: PostgresPool) -> None:
        self._raw = raw
        self.retry_after = pool.retry_after
        self._watch = pool.watch
        self.released = False
        """Set when the pool takes the connection back: its statements stop working."""
        self.interrupted = False
        """Set when a statement's task was cancelled mid-statement: asyncpg is
        cancelling it on the server, and the pool must wait for that to end."""

    @property
    def raw(self) -> asyncpg.Connection:
        """asyncpg's connection, while the `async with` block holds it (not after)."""
        if self.released:
            raise self._gone(None)
        return self._raw

    def _gone(self, statement: PostgresStatement | None) -> DatabaseError:
        if statement is not None:
            return DatabaseError(
                f"the statement {statement.sql!r} was prepared on a connection that has gone "
                "back to the pool: prepare it again inside the `async with` block that holds one"
            )
        return DatabaseError(
            "the connection has gone back to the pool: use it inside the `async with` "
            "block that holds it"
        )

    def _begin(self, statement: PostgresStatement | None = None) -> asyncpg.Connection:
        """The connection, watched for one statement (refused once given back: the
        pool may have lent it to someone else)."""
        if self.released:
            raise self._gone(statement)
        raw = self._raw
        self._watch.enter(raw)
        return raw

    def _error(self, exc: BaseException) -> DatabaseError:
        raw = self._raw
        return translate(exc, raw, self.retry_after, self._watch.timed_out(raw))

    async def _run(
        self,
        call: Callable[..., Coroutine[Any, Any, T]],
        *args: Any,
        statement: PostgresStatement | None = None,
    ) -> T:
        """`await call(*args)` as one watched statement, every error it raises translated."""
        raw = self._begin(statement)
        try:
            return await call(*args)
        except Exception as exc:
            raise self._error(exc) from exc
        except asyncio.CancelledError:
            self.interrupted = True
            raise
        finally:
            self._watch.leave(raw)

    # The statements run most, `_run` written out: one coroutine frame less to
    # resume at each wait. A single `Database` call goes through
    # `PostgresPool.statement` instead. (`raw` as Any: its records are
    # PostgresRows, the pool's record class.)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        raw: Any = self._begin()
        try:
            rows: list[Row] = await raw.fetch(sql, *args)
        except Exception as exc:
            raise self._error(exc) from exc
        except asyncio.CancelledError:
            self.interrupted = True
            raise
        finally:
            self._watch.leave(raw)
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        raw: Any = self._begin()
        try:
            row: Row | None = await raw.fetchrow(sql, *args)
        except Exception as exc:
            raise self._error(exc) from exc
        except asyncio.CancelledError:
            self.interrupted = True
            raise
        finally:
            self._watch.leave(raw)
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._run(self._raw.fetchval, sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self._run(self._raw.execute, sql, *args))

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self._run(self._raw.executemany, sql, args)  # atomic since asyncpg 0.22

    async def execute_script(self, script: str) -> None:
        await self._run(self._script, script)

    async def prepare(self, sql: str) -> Statement:
        return PostgresStatement(sql, await self._run(self._raw.prepare, sql), self)

    async def _script(self, script: str) -> None:
        async with self._raw.transaction():
            await self._raw.execute(script)  # no arguments: the simple protocol

    def transaction(self, *, readonly: bool = False) -> AbstractAsyncContextManager[Connection]:
        return self._transaction(readonly)

    @asynccontextmanager
    async def _transaction(self, readonly: bool) -> AsyncIterator[Connection]:
        transaction = self._raw.transaction(readonly=readonly)
        await self._run(transaction.start)
        try:
            yield self
        except BaseException:
            try:
                await self._run(transaction.rollback)
            except Exception as exc:  # a dead connection: the server rolled back already
                logger.debug("rollback failed after an error: %r", exc)
            raise
        await self._run(transaction.commit)


def _client_bound(statement_timeout: float | None) -> float:
    """The client's own bound on a statement: the server's, plus a second for it to say so.

    The server cancels a statement at `statement_timeout` and the connection
    stays usable; the client's bound only matters when the server cannot
    answer at all (a network partition, a stopped host). No server limit, no
    client bound (infinity).
    """
    return float("inf") if statement_timeout is None else statement_timeout + 1.0


class PostgresPool(Pool[PostgresConnection]):
    """shoal's own pool of asyncpg connections, its acquisitions and statements bounded.

    Why not `asyncpg.create_pool`: its acquire and release cost about 110,000
    instructions a lease (a connection proxy, a task to shield each release, a
    queue of holders), about half of a one-row query's whole cost in process.
    Here a lease is a list pop and append while connections are idle, and a
    future per waiter when none is.

    - Idle connections are a stack: the most recently used serves next, so the
      ones at the bottom are those nobody needed. Every `idle_lifetime`
      seconds, the connections idle through the whole interval are closed,
      down to `min_size`.
    - An acquisition waits at most `acquire_timeout`, connecting included; the
      waiters are served first come, first served.
    - A statement waits at most the client's bound (`statement_timeout` + 1 s),
      kept by `_Watch`, which closes the connection past it (asyncpg's
      `command_timeout` is left off: a loop timer per statement).
    - A statement whose task is cancelled leaves asyncpg cancelling it on the
      server; its caller goes on at once, while a task of the pool's waits (at
      most `acquire_timeout`) for that to end before the connection serves
      again, and closes the connection past it.
    - A connection that comes back closed (the server went away) is dropped;
      the next caller opens a new one.
    """

    idle_lifetime = 300.0
    """Seconds between two prunings of idle connections (asyncpg's default lifetime)."""

    def __init__(self, dsn: str, options: DatabaseOptions) -> None:
        self.dsn = dsn
        self.options = options
        self.retry_after = options.retry_after
        self.watch = _Watch(_client_bound(options.statement_timeout))
        self.expiry = Expiry()  # bounds acquisitions (see shoal._expiry)
        self._acquire_timeout = options.acquire_timeout
        self._reset_each = options.reset_on_release
        self._idle: list[asyncpg.Connection] = []  # a stack: the last one back serves next
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._size = 0  # connections open or opening, lent out or idle
        self._fewest_idle = 0  # since the last pruning
        self._pruning: asyncio.TimerHandle | None = None
        self._closing = False
        self._all_back: asyncio.Future[None] | None = None  # set while closing
        self._background: set[asyncio.Task[None]] = set()  # connections settling or closing

    # -- opening and closing --------------------------------------------------

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.expiry.start(loop)
        self.watch.loop = loop
        first = self.options.min_size
        self._size = first
        made = await asyncio.gather(
            *(self._connect() for _ in range(first)), return_exceptions=True
        )
        opened = [conn for conn in made if not isinstance(conn, BaseException)]
        if len(opened) < first:
            for conn in opened:
                conn.terminate()
            self._size = 0
            self.expiry.close()
            self.watch.close()
            raise next(exc for exc in made if isinstance(exc, BaseException))
        self._idle += opened
        self._fewest_idle = len(opened)
        self._pruning = loop.call_later(self.idle_lifetime, self._prune)

    async def _connect(self) -> asyncpg.Connection:
        """A new connection, or the `DatabaseError` that says why not."""
        options = self.options
        server_settings = {"application_name": "shoal"}
        if options.statement_timeout is not None:
            server_settings["statement_timeout"] = str(int(options.statement_timeout * 1000))
        try:
            conn: asyncpg.Connection = await asyncpg.connect(
                self.dsn,
                timeout=options.connect_timeout,
                statement_cache_size=options.statement_cache_size,
                server_settings=server_settings,
                record_class=PostgresRow,
            )
        except Exception as exc:
            raise translate(exc, None, self.retry_after) from exc
        return conn

    async def close(self) -> None:
        """Close every connection, after waiting (up to `acquire_timeout`) for those
        lent out to come back; the ones still out then are closed as they come."""
        self._closing = True
        if self._pruning is not None:
            self._pruning.cancel()
        while self._waiters:  # callers waiting for a connection: none will come
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        idle, self._idle = self._idle, []
        self._size -= len(idle)
        if self._size:
            self._all_back = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(self._acquire_timeout):
                    await self._all_back
            except TimeoutError:
                logger.warning(
                    "closing the PostgreSQL pool: %d connection(s) still in use after %ss",
                    self._size,
                    self._acquire_timeout,
                )
        await asyncio.gather(*(self._close(conn) for conn in idle))
        await asyncio.gather(*self._background, return_exceptions=True)
        self.expiry.close()
        self.watch.close()

    async def _close(self, conn: asyncpg.Connection) -> None:
        """Close `conn` politely (the server sees a goodbye, not a reset), else abruptly."""
        try:
            await conn.close(timeout=self._acquire_timeout)
        except Exception as exc:
            logger.debug("closing a PostgreSQL connection failed (%r); terminating it", exc)
            conn.terminate()

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in a task of its own (`close` waits for it)."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _prune(self) -> None:
        """Close the connections that stayed idle since the last pruning, down to min_size."""
        surplus = min(self._fewest_idle, self._size - self.options.min_size)
        if surplus > 0:
            unused, self._idle[:surplus] = self._idle[:surplus], []
            self._size -= surplus
            for conn in unused:
                self._later(self._close(conn))
        self._fewest_idle = len(self._idle)
        loop = asyncio.get_running_loop()
        self._pruning = loop.call_later(self.idle_lifetime, self._prune)

    def open_connections(self) -> int:
        return self._size

    # -- lending --------------------------------------------------------------

    async def acquire(self) -> PostgresConnection:
        """A connection within `acquire_timeout`, or `DatabaseUnavailable` (503)."""
        return PostgresConnection(await self._take(), self)

    async def _take(self) -> asyncpg.Connection:
        idle = self._idle
        if idle:  # the common case, written out: no wait, no timer
            conn = idle.pop()
            if len(idle) < self._fewest_idle:
                self._fewest_idle = len(idle)
            if not conn.is_closed():
                return conn
            self._size -= 1  # the server closed it while it was idle
        end = monotonic() + self._acquire_timeout
        try:
            return await self.expiry.wait(self._wait(), end)
        except TimeoutError as exc:
            raise DatabaseUnavailable(
                f"no PostgreSQL connection within {self._acquire_timeout}s "
                "(the pool is exhausted or the server is unreachable)",
                retry_after=self.retry_after,
            ) from exc

    async def _wait(self) -> asyncpg.Connection:
        """An idle connection, a new one while under `max_size`, or the next one back."""
        while True:
            if self._closing:
                raise DatabaseUnavailable("the database is closing", retry_after=self.retry_after)
            idle = self._idle
            while idle:
                conn = idle.pop()
                self._fewest_idle = min(self._fewest_idle, len(idle))
                if not conn.is_closed():
                    return conn
                self._size -= 1  # the server closed it while it was idle
            if self._size < self.options.max_size:
                self._size += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._dropped()
                    raise
            waiter: asyncio.Future[asyncpg.Connection | None]
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn_or_none = await waiter
            except BaseException:
                # cut off (the bound, a cancellation) just as a connection was
                # handed over: hand it on
                if waiter.done() and not waiter.cancelled():
                    handed = waiter.result()
                    if handed is None:
                        self._hand_over(None)
                    else:
                        self._put_back(handed)
                raise
            if conn_or_none is not None:
                return conn_or_none
            # None: a connection was dropped, so there is room for a new one

    def _hand_over(self, conn: asyncpg.Connection | None) -> bool:
        """Give `conn` (None: room for a new one) to the first caller still waiting."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def _put_back(self, conn: asyncpg.Connection) -> None:
        """`conn`, clean, serves its next caller."""
        if self._closing:
            self._size -= 1
            self._later(self._close(conn))
            self._check_all_back()
        elif not self._hand_over(conn):
            self._idle.append(conn)

    def _dropped(self) -> None:
        """A connection is gone (closed, or never opened): room for another."""
        self._size -= 1
        if self._closing:
            self._check_all_back()
        else:
            self._hand_over(None)

    def _check_all_back(self) -> None:
        if self._size == 0 and self._all_back is not None and not self._all_back.done():
            self._all_back.set_result(None)

    async def statement(self, name: str, sql: str, args: tuple[Any, ...]) -> Any:
        # the lease written out, on the asyncpg connection itself: no wrapper
        # object, two coroutine frames fewer on every wait (the base class's
        # `connection()` path does the same through PostgresConnection)
        conn = await self._take()
        started = self.lent()
        watch = self.watch
        watch.enter(conn)
        interrupted = False
        try:
            return await getattr(conn, name)(sql, *args)
        except Exception as exc:
            raise translate(exc, conn, self.retry_after, watch.timed_out(conn)) from exc
        except asyncio.CancelledError:
            interrupted = True
            raise
        finally:
            watch.leave(conn)
            self.returned(started)
            await self._give_back(conn, interrupted)

    async def release(self, conn: PostgresConnection) -> None:
        """Take `conn` back; a connection that died is dropped."""
        conn.released = True
        await self._give_back(conn._raw, conn.interrupted)

    async def _give_back(self, conn: asyncpg.Connection, interrupted: bool) -> None:
        if conn.is_closed():
            self._dropped()
        elif interrupted:  # its caller goes on at once; the connection, once settled
            self._later(self._settle(conn, interrupted))
        elif self._reset_each or conn.is_in_transaction():
            await self._settle(conn, interrupted)
        else:
            self._put_back(conn)

    async def _settle(self, conn: asyncpg.Connection, interrupted: bool) -> None:
        """`_reset` within `acquire_timeout`, then back to the pool; closed if it fails."""
        try:
            await self.expiry.wait(
                self._reset(conn, interrupted), monotonic() + self._acquire_timeout
            )
        except BaseException as exc:
            logger.debug("resetting a PostgreSQL connection failed (%r); closing it", exc)
            conn.terminate()
            self._dropped()
            if not isinstance(exc, Exception):
                raise
        else:
            self._put_back(conn)

    async def _reset(self, conn: asyncpg.Connection, interrupted: bool) -> None:
        """Make `conn` ready for its next caller: no statement or transaction left running."""
        if interrupted:
            # asyncpg is cancelling the statement cut off; its next statement
            # waits for that to end (an aborted transaction refuses it)
            with suppress(pg.PostgresError):
                await conn.execute("SELECT 1")
        if self._reset_each:
            await conn.reset()  # RESET ALL, UNLISTEN *, ... and a rollback
        elif conn.is_in_transaction():
            await conn.execute("ROLLBACK")
