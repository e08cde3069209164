"""The app's bounded thread pool, where plain `def` handlers and `run_sync` calls run.

`await shoal.run_sync(fn, *args)` finds the pool without being handed the app:
`App.startup` registers the app's pool against the event loop it starts on
(`bind`), and `run_sync` looks up the running loop. That costs nothing per
request (no contextvar to set and reset around every request) and works the
same under granian, uvicorn and the test clients. When several apps are
started on one loop (two test clients in one test), the most recently
started one wins.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from .errors import ServiceUnavailable

__all__ = ["DEFAULT_QUEUE", "DEFAULT_THREADS", "PoolStatistics", "ThreadPool", "run_sync"]

P = ParamSpec("P")
R = TypeVar("R")

# Sync handlers mostly wait on I/O (a driver, a file, another service), so the
# pool is sized for waiting, not for CPU: 40 threads, like AnyIO's default
# limiter, keeps 40 blocking calls in flight for ~40 MiB of stacks at most
# (threads are started lazily, so an app with no sync code starts none).
# More threads rarely help a CPython process: past a few dozen, the threads
# contend for the GIL and the database's own pool is the real bound.
DEFAULT_THREADS = 40
# Past the threads, up to this many calls wait for a free thread (5 per
# thread: a queue that drains within a few typical calls' time); beyond that
# the caller gets 503 at once instead of joining an unbounded backlog whose
# clients would have timed out by the time they were served.
DEFAULT_QUEUE = 200


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """A snapshot of the pool: calls running, waiting, and finished so far.

    `threads` is the pool's size, `busy` the calls running now, `queued` the
    calls accepted but waiting for a thread, `completed` the calls finished
    (returned or raised), and `rejected` those refused with 503.
    """

    threads: int
    max_queue: int
    busy: int
    queued: int
    completed: int
    rejected: int


class ThreadPool:
    """Runs blocking calls off the event loop, in at most `threads` threads.

    At most `threads + max_queue` calls are accepted at once; one more raises
    `ServiceUnavailable` (503 with `Retry-After`). Each call runs in a copy of
    the caller's context, so contextvars (a request id, say) flow into it.
    A call whose caller was cancelled keeps its place until its thread is done
    with it, so the bound holds even when clients go away.
    """

    def __init__(self, threads: int = DEFAULT_THREADS, max_queue: int = DEFAULT_QUEUE) -> None:
        if threads < 1 or max_queue < 0:
            raise ValueError("a thread pool needs threads >= 1 and max_queue >= 0")
        self.threads = threads
        self.max_queue = max_queue
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._accepted = 0  # running + waiting
        self._busy = 0
        self._completed = 0
        self._rejected = 0

    def _get_executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="shoal-sync")
        return self._executor

    async def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call `fn(*args, **kwargs)` in the pool and wait for its result."""
        call = functools.partial(fn, *args, **kwargs)
        return await self.run_in(contextvars.copy_context(), call)

    def as_async(self, fn: Callable[..., Any], is_async: bool) -> Callable[..., Awaitable[Any]]:
        """`fn` itself when it is async, else a function that runs it in this pool.

        Decided once (at registration), so that a call on the request path is
        `await invoke(**kwargs)` whichever kind `fn` is.
        """
        return fn if is_async else functools.partial(self.run, fn)

    async def run_in(
        self, context: contextvars.Context, fn: Callable[[], R], *, bounded: bool = True
    ) -> R:
        """Call `fn()` in the pool inside `context` (not a copy) and wait for its result.

        For a series of calls that must share contextvars, as the steps of one
        WSGI response do; the calls must not overlap. `bounded=False` skips the
        503 check, for the later steps of work already admitted (they still
        count, so new work is refused while they run).
        """
        with self._lock:
            if bounded and self._accepted >= self.threads + self.max_queue:
                self._rejected += 1
                raise ServiceUnavailable(
                    detail="The service is busy: "
                    "every worker thread is taken and the queue is full.",
                    retry_after=1,
                )
            self._accepted += 1
        try:
            future = self._get_executor().submit(context.run, self._track, fn)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, future: Future[Any] | None) -> None:
        with self._lock:
            self._accepted -= 1

    def _track(self, fn: Callable[[], R]) -> R:
        with self._lock:
            self._busy += 1
        try:
            return fn()
        finally:
            with self._lock:
                self._busy -= 1
                self._completed += 1

    def statistics(self) -> PoolStatistics:
        """An immutable snapshot of the pool's counters."""
        with self._lock:
            return PoolStatistics(
                threads=self.threads,
                max_queue=self.max_queue,
                busy=self._busy,
                queued=self._accepted - self._busy,
                completed=self._completed,
                rejected=self._rejected,
            )

    def close(self) -> None:
        """Wait for running calls to finish and stop the threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


# The pools of the apps started on each loop, most recent last (see module docstring).
_bound: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[ThreadPool]] = (
    weakref.WeakKeyDictionary()
)


def bind(loop: asyncio.AbstractEventLoop, pool: ThreadPool) -> Callable[[], None]:
    """Make `pool` the one `run_sync` uses on `loop`; return the function that undoes it."""
    pools = _bound.setdefault(loop, [])
    pools.append(pool)

    def unbind() -> None:
        if pool in pools:
            pools.remove(pool)

    return unbind


async def run_sync(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Call blocking `fn(*args, **kwargs)` in the running app's thread pool and await it.

    ```python
    @app.get("/report")
    async def report() -> dict:
        rows = await run_sync(legacy_db.fetch_all, "SELECT ...")
        return {"rows": rows}
    ```

    The call shares the app's bound: past `threads + max_queue` calls it
    raises `ServiceUnavailable` (503). The caller's contextvars flow into the
    thread. Raises `RuntimeError` outside a started app's event loop.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "run_sync() must be awaited on the event loop; in a plain def handler, "
            "which already runs in the thread pool, call the function directly"
        ) from None
    pools = _bound.get(loop)
    if not pools:
        raise RuntimeError(
            "run_sync() needs a started shoal App on this event loop "
            "(serve it, or enter its TestClient)"
        )
    return await pools[-1].run(fn, *args, **kwargs)
