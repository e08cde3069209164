"""The app's bounded thread pool, where plain `def` handlers and `run_sync` calls run."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from .errors import ServiceUnavailable

P = ParamSpec("P")
R = TypeVar("R")

# Sync handlers mostly wait on I/O (a driver, a file, another service), so the
# pool is sized for waiting, not for CPU: 40 threads, like AnyIO's default
# limiter, keeps 40 blocking calls in flight for ~40 MiB of stacks at most.
DEFAULT_THREADS = 40
# Past the threads, up to this many calls wait for a free thread; beyond that
# the caller gets 503 at once instead of joining an unbounded backlog.
DEFAULT_QUEUE = 200


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """A snapshot of the pool: calls running, waiting, and finished so far."""

    threads: int
    busy: int
    queued: int
    completed: int
    rejected: int


class ThreadPool:
    """Runs blocking calls off the event loop, in at most `threads` threads.

    At most `threads + max_queue` calls are accepted at once; one more raises
    `ServiceUnavailable` (503 with `Retry-After`). Each call runs in a copy of
    the caller's context, so contextvars (a request id, say) flow into it.
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
        with self._lock:
            if self._accepted >= self.threads + self.max_queue:
                self._rejected += 1
                raise ServiceUnavailable(
                    detail="The service is busy: "
                    "every worker thread is taken and the queue is full.",
                    retry_after=1,
                )
            self._accepted += 1
        try:
            call = functools.partial(self._track, fn, *args, **kwargs)
            context = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._get_executor(), context.run, call)
        finally:
            with self._lock:
                self._accepted -= 1

    def _track(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        with self._lock:
            self._busy += 1
        try:
            return fn(*args, **kwargs)
        finally:
            with self._lock:
                self._busy -= 1
                self._completed += 1

    def statistics(self) -> PoolStatistics:
        """An immutable snapshot of the pool's counters."""
        with self._lock:
            return PoolStatistics(
                threads=self.threads,
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
