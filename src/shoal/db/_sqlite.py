"""The SQLite backend: the standard `sqlite3` module, never on the event loop.

Each connection owns one thread (a single-worker executor) and every call on
it runs there, in order: the loop only hands work over and awaits the result,
and a connection is only ever touched by its own thread. Connections run in
autocommit mode; shoal issues `BEGIN`/`COMMIT`/`SAVEPOINT` itself. File
databases use WAL (readers never wait for the writer), `synchronous=NORMAL`
(durable at each checkpoint, never corrupt), a busy timeout, and foreign keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

from ..errors import DatabaseError, DatabaseUnavailable, IntegrityError, OutOfRange
from ._base import Connection, DatabaseOptions, Pool, Row, Statement
from ._sql import split_script, to_sqlite

__all__ = ["SQLiteConnection", "SQLitePool", "SQLiteRow", "SQLiteStatement"]

T = TypeVar("T")

logger = logging.getLogger("shoal.db")

# Primary result codes (the low byte of an extended code).
_BUSY, _LOCKED, _INTERRUPT, _IOERR, _FULL, _CANTOPEN, _CONSTRAINT = 5, 6, 9, 10, 13, 14, 19
_UNAVAILABLE = {
    _BUSY: "the database stayed locked by another writer past the busy timeout",
    _LOCKED: "the database stayed locked by another writer past the busy timeout",
    _INTERRUPT: "the statement ran past the statement timeout",
    _IOERR: "the database file could not be read or written",
    _FULL: "the disk holding the database is full",
    _CANTOPEN: "the database file could not be opened",
}
# How many virtual machine steps run between two checks of the statement's deadline.
_PROGRESS_STEPS = 1000


def translate(exc: sqlite3.Error | OverflowError, retry_after: int) -> DatabaseError:
    """The shoal error for a `sqlite3` error (the caller chains it with `from`)."""
    if isinstance(exc, OverflowError):  # an int argument past SQLite's 64 bits
        return OutOfRange(str(exc))
    name: str | None = getattr(exc, "sqlite_errorname", None)
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if code is not None else None
    message = str(exc)
    if isinstance(exc, sqlite3.IntegrityError) or primary == _CONSTRAINT:
        return IntegrityError(message, sqlstate=name)
    if primary in _UNAVAILABLE:
        return DatabaseUnavailable(
            f"{_UNAVAILABLE[primary]} ({message})", sqlstate=name, retry_after=retry_after
        )
    return DatabaseError(message, sqlstate=name)


class SQLiteRow(tuple[Any, ...]):
    """A SQLite result row; each distinct column list gets its own subclass."""

    __slots__ = ()

    _fields: ClassVar[tuple[str, ...]] = ()
    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def __getattr__(self, name: str) -> Any:
        try:
            return tuple.__getitem__(self, self._index[name])
        except KeyError:
            raise AttributeError(f"the row has no column {name!r}") from None

    def keys(self) -> Iterator[str]:
        return iter(self._fields)

    def values(self) -> Iterator[Any]:
        return tuple.__iter__(self)

    def items(self) -> Iterator[tuple[str, Any]]:
        return zip(self._fields, tuple.__iter__(self), strict=True)

    def get(self, key: str, default: Any = None) -> Any:
        index = self._index.get(key)
        return default if index is None else tuple.__getitem__(self, index)

    def __repr__(self) -> str:
        fields = " ".join(f"{k}={v!r}" for k, v in self.items())
        return f"<Row {fields}>"


Row.register(SQLiteRow)


@lru_cache(maxsize=512)
def _row_class(fields: tuple[str, ...]) -> type[SQLiteRow]:
    index: dict[str, int] = {}
    for i, name in enumerate(fields):
        index.setdefault(name, i)
    namespace = {"__slots__": (), "_fields": fields, "_index": index}
    return type("SQLiteRow", (SQLiteRow,), namespace)


def _rows(cursor: sqlite3.Cursor, rows: list[Any]) -> list[Row]:
    description = cursor.description
    if description is None:
        return []
    cls = _row_class(tuple(d[0] for d in description))
    return list(map(cls, rows))  # type: ignore[arg-type]


class SQLiteStatement(Statement):
    """A statement for one lease of a `SQLiteConnection`.

    sqlite3 compiles a statement on its first run and keeps it compiled in
    the connection's cache (`cached_statements`), keyed by its text: what is
    prepared here is the text (`$n` placeholders rewritten once) and the check
    that the connection is still the caller's.
    """

    __slots__ = ("sql", "_conn", "_text", "_lease")

    def __init__(self, sql: str, conn: SQLiteConnection, lease: int) -> None:
        self.sql = sql
        self._conn = conn
        self._text = to_sqlite(sql)
        self._lease = lease

    def _submit(
        self, work: Callable[[sqlite3.Connection, str, Sequence[Any]], T], args: Sequence[Any]
    ) -> asyncio.Future[T]:
        conn = self._conn
        if conn.lease != self._lease:
            raise DatabaseError(
                f"the statement {self.sql!r} was prepared on a connection that has gone back "
                "to the pool: prepare it again inside the `async with` block that holds one"
            )
        return conn.submit(work, self._text, args)

    async def fetch(self, *args: Any) -> list[Row]:
        return await self._submit(_fetch, args)

    async def fetchrow(self, *args: Any) -> Row | None:
        return await self._submit(_fetchrow, args)

    async def fetchval(self, *args: Any) -> Any:
        return await self._submit(_fetchval, args)

    async def execute(self, *args: Any) -> int:
        return await self._submit(_execute, args)

    async def executemany(self, args: Iterable[Sequence[Any]]) -> None:
        await self._submit(_executemany, list(args))


class SQLiteConnection(Connection):
    """A `sqlite3` connection confined to its own thread."""

    __slots__ = ("raw", "_executor", "_options", "_deadline", "_depth", "lease")

    def __init__(self, executor: ThreadPoolExecutor, raw: sqlite3.Connection, options: Any) -> None:
        self._executor = executor
        self.raw: sqlite3.Connection = raw
        self._options: DatabaseOptions = options
        self._deadline = math.inf
        self._depth = 0  # transactions open on this connection, nested ones included
        self.lease = 0
        """Counts the times the connection went back to the pool (its statements' guard)."""
        raw.set_progress_handler(self._past_deadline, _PROGRESS_STEPS)

    @classmethod
    async def connect(cls, path: str, options: DatabaseOptions) -> SQLiteConnection:
        """Open a connection to `path` in a new thread of its own."""
        executor = ThreadPoolExecutor(1, thread_name_prefix="shoal-sqlite")
        loop = asyncio.get_running_loop()
        try:
            raw = await loop.run_in_executor(executor, _connect, path, options)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, raw, options)

    def _past_deadline(self) -> bool:
        return time.monotonic() > self._deadline

    def _start_clock(self) -> None:
        timeout = self._options.statement_timeout
        self._deadline = math.inf if timeout is None else time.monotonic() + timeout

    def _call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Submit `fn(*args)` to the connection's thread: a future of its result."""
        try:
            return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except RuntimeError as exc:  # its thread is gone: the pool closed the connection
            raise DatabaseError("the connection was closed with its database") from exc

    async def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Call `fn(raw)` on the connection's own thread and return its result.

        This is how to use the raw `sqlite3.Connection` (register a function,
        back up the file): never call it from the event loop directly.
        """

        def call() -> T:
            self._deadline = math.inf
            try:
                return fn(self.raw)
            except sqlite3.Error as exc:
                raise translate(exc, self._options.retry_after) from exc

        return await self._call(call)

    # -- work done on the connection's thread -------------------------------------

    def _run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(raw, *args)` under the statement timeout, its errors translated."""
        self._start_clock()
        try:
            return work(self.raw, *args)
        except (sqlite3.Error, OverflowError) as exc:
            raise translate(exc, self._options.retry_after) from exc

    def _rollback_quietly(self) -> None:
        self._deadline = math.inf
        if self.raw.in_transaction:
            # On failure the connection is unusable; its next statement reports it.
            with contextlib.suppress(sqlite3.Error):
                self.raw.execute("ROLLBACK")

    def submit(
        self,
        work: Callable[[sqlite3.Connection, str, Sequence[Any]], T],
        sql: str,
        args: Sequence[Any],
    ) -> asyncio.Future[T]:
        """A future of `work(raw, sql, args)`, run on the connection's thread under
        the statement timeout, its errors translated."""
        return self._call(self._run, work, sql, args)

    # -- the Connection API ---------------------------------------------------------

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._call(self._run, _fetch, sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return await self._call(self._run, _fetchrow, sql, args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._call(self._run, _fetchval, sql, args)

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._call(self._run, _execute, sql, args)

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self._call(self._run, _executemany, sql, list(args))

    async def prepare(self, sql: str) -> Statement:
        return SQLiteStatement(sql, self, self.lease)

    async def execute_script(self, script: str) -> None:
        statements = split_script(script)

        def run(raw: sqlite3.Connection) -> None:
            for statement in statements:
                raw.execute(statement)

        await self._call(self._run, _atomically, run)

    def transaction(self, *, readonly: bool = False) -> AbstractAsyncContextManager[Connection]:
        return self._transaction(readonly)

    @asynccontextmanager
    async def _transaction(self, readonly: bool) -> AsyncIterator[Connection]:
        depth = self._depth
        if depth == 0:
            begin, commit, rollback = ("BEGIN" if readonly else "BEGIN IMMEDIATE"), "COMMIT", None
        else:
            savepoint = f"shoal_{depth}"
            begin, commit = f"SAVEPOINT {savepoint}", f"RELEASE {savepoint}"
            rollback = f"ROLLBACK TO {savepoint}"
        await self._call(self._run, _control, begin)
        if readonly and depth == 0:
            await self._call(self._run, _control, "PRAGMA query_only = 1")
        self._depth = depth + 1
        try:
            yield self
        except BaseException:
            self._depth = depth
            # Submitted at once, so the rollback runs even if this task is
            # cancelled again while it waits.
            await self._call(self._undo, rollback, commit, readonly and depth == 0)
            raise
        self._depth = depth
        await self._call(self._finish, commit, readonly and depth == 0)

    def _undo(self, rollback: str | None, release: str, readonly: bool) -> None:
        self._deadline = math.inf
        try:
            if rollback is None:
                self._rollback_quietly()
            else:
                self.raw.execute(rollback)
                self.raw.execute(release)
        except sqlite3.Error:
            pass  # the error that got us here is the one worth reporting
        finally:
            if readonly:
                self.raw.execute("PRAGMA query_only = 0")

    def _finish(self, commit: str, readonly: bool) -> None:
        try:
            self._run(_control, commit)
        except BaseException:
            self._rollback_quietly()
            raise
        finally:
            if readonly:
                self.raw.execute("PRAGMA query_only = 0")

    async def reset(self) -> None:
        """Make the connection ready for its next user: roll back a transaction left open.

        The pool calls it on every release.
        """
        self.lease += 1  # the statements prepared on this lease stop here
        if self.raw.in_transaction:
            await self._call(self._rollback_quietly)
        self._depth = 0

    async def close(self) -> None:
        """Close the connection on its thread, then stop the thread."""
        try:
            await self._call(self.raw.close)
        finally:
            self._executor.shutdown(wait=False)


# -- statements, run by `SQLiteConnection._run` on the connection's thread ------------


def _fetch(raw: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
    cursor = raw.execute(to_sqlite(sql), args)
    return _rows(cursor, cursor.fetchall())


def _fetchrow(raw: sqlite3.Connection, sql: str, args: Sequence[Any]) -> Row | None:
    cursor = raw.execute(to_sqlite(sql), args)
    row = cursor.fetchone()
    rows = None if row is None else _rows(cursor, [row])
    cursor.close()  # ends the statement, so it holds no read snapshot
    return None if rows is None else rows[0]


def _fetchval(raw: sqlite3.Connection, sql: str, args: Sequence[Any]) -> Any:
    cursor = raw.execute(to_sqlite(sql), args)
    row = cursor.fetchone()
    cursor.close()
    return None if row is None else row[0]


def _execute(raw: sqlite3.Connection, sql: str, args: Sequence[Any]) -> int:
    cursor = raw.execute(to_sqlite(sql), args)
    count = cursor.rowcount
    cursor.close()
    return max(count, 0)


def _executemany(raw: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    statement = to_sqlite(sql)

    def run(raw: sqlite3.Connection) -> None:
        raw.executemany(statement, rows)

    _atomically(raw, run)


def _atomically(raw: sqlite3.Connection, work: Callable[[sqlite3.Connection], None]) -> None:
    """Run `work(raw)` inside a savepoint: all of it happens, or none of it."""
    raw.execute("SAVEPOINT shoal_atomic")
    try:
        work(raw)
    except BaseException:
        raw.execute("ROLLBACK TO shoal_atomic")
        raw.execute("RELEASE shoal_atomic")
        raise
    raw.execute("RELEASE shoal_atomic")


def _control(raw: sqlite3.Connection, statement: str) -> None:
    raw.execute(statement)


def _use_wal(raw: sqlite3.Connection, timeout: float) -> None:
    # Switching a new file to WAL takes an exclusive lock and SQLite does not
    # call the busy handler for it: two workers opening a new database at once
    # get "database is locked" for one of them. Retry until the busy timeout.
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            raw.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code is None or code & 0xFF not in (_BUSY, _LOCKED):
                raise
            if time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _connect(path: str, options: DatabaseOptions) -> sqlite3.Connection:
    try:
        raw = sqlite3.connect(
            path,
            timeout=options.busy_timeout,
            isolation_level=None,  # autocommit: transactions are explicit
            check_same_thread=False,  # confined to one thread by construction
            cached_statements=256,
        )
    except sqlite3.Error as exc:
        raise translate(exc, options.retry_after) from exc
    try:
        raw.execute("PRAGMA foreign_keys = ON")
        if path != ":memory:":
            _use_wal(raw, options.busy_timeout)
            raw.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as exc:
        raw.close()
        raise translate(exc, options.retry_after) from exc
    return raw


class SQLitePool(Pool[SQLiteConnection]):
    """Up to `max_size` thread-confined connections (one for `:memory:`)."""

    def __init__(self, path: str, options: DatabaseOptions) -> None:
        self.path = path
        self.options = options
        self.size = 1 if path == ":memory:" else options.max_size
        self._idle: asyncio.Queue[SQLiteConnection] = asyncio.Queue()
        self._all: list[SQLiteConnection] = []
        self._opening = 0
        self._closed = False

    async def open(self) -> None:
        for _ in range(max(1, min(self.options.min_size, self.size))):
            self._idle.put_nowait(await self._new())

    async def _new(self) -> SQLiteConnection:
        self._opening += 1
        try:
            conn = await SQLiteConnection.connect(self.path, self.options)
        finally:
            self._opening -= 1
        self._all.append(conn)
        return conn

    def open_connections(self) -> int:
        return len(self._all)

    async def acquire(self) -> SQLiteConnection:
        """An idle connection, a new one while under `size`, or wait `acquire_timeout`."""
        try:
            return self._idle.get_nowait()
        except asyncio.QueueEmpty:
            pass
        if len(self._all) + self._opening < self.size:
            return await self._new()
        try:
            async with asyncio.timeout(self.options.acquire_timeout):
                return await self._idle.get()
        except TimeoutError as exc:
            raise DatabaseUnavailable(
                f"no SQLite connection became free within {self.options.acquire_timeout}s "
                f"(all {self.size} are in use)",
                retry_after=self.options.retry_after,
            ) from exc

    async def release(self, conn: SQLiteConnection) -> None:
        """Return `conn` to the pool, rolling back a transaction left open on it."""
        if self._closed:  # closed under its user, who kept it past the wait in `close`
            return
        await conn.reset()
        self._idle.put_nowait(conn)

    async def close(self) -> None:
        """Close every connection, after waiting (up to `acquire_timeout`) for those
        lent out to come back, as asyncpg's pool does."""
        lent = len(self._all) - self._idle.qsize()
        try:
            async with asyncio.timeout(self.options.acquire_timeout):
                for _ in range(lent):
                    await self._idle.get()
        except TimeoutError:
            logger.warning(
                "closing SQLite connections still in use after %ss", self.options.acquire_timeout
            )
        self._closed = True
        connections, self._all = self._all, []
        for conn in connections:
            await conn.close()
