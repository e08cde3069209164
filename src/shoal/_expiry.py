"""Timeouts by the thousand: one loop timer for all of an owner's waits, not one each.

`asyncio.timeout()` costs about 6 µs on Python 3.11 (an object, a timer
handle in the loop's heap, its cancellation); a service client's attempts and
a database pool's acquisitions each need one, on every call. An `Expiry` keeps
their tasks and end times in a dict and one loop timer for the earliest end.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from time import monotonic
from typing import Any, Generic, TypeVar

__all__ = ["Deadlines", "Expiry"]

Task = asyncio.Task[Any]
T = TypeVar("T")
K = TypeVar("K")


def _task_of(loop: asyncio.AbstractEventLoop) -> Callable[[], Task | None]:
    """`asyncio.current_task(loop)` as one call into C, for every attempt."""
    if sys.version_info >= (3, 12):  # pragma: no cover - the venv runs 3.11
        return partial(asyncio.current_task, loop)  # C since 3.12
    # 3.11's current_task() is a Python function around this C dict (its code
    # no longer changes): looked up directly, a fifth of the cost
    tasks: dict[asyncio.AbstractEventLoop, Task] = asyncio.tasks._current_tasks  # type: ignore[attr-defined]
    return partial(tasks.get, loop)


def _no_task() -> Task | None:
    return None


class Deadlines(Generic[K]):
    """Keys with an end time each, and one loop timer for the earliest end.

    An owner puts a key and its end in `pending`, calls `arm` when that end is
    earlier than `at`, and pops the key when done. The timer fires at the
    earliest end (as often that of a key long gone), hands each key that is
    due to `expire`, and is set again for the next earliest end.
    """

    __slots__ = ("pending", "at", "handle", "loop")

    def __init__(self) -> None:
        self.pending: dict[K, float] = {}
        self.at = float("inf")
        self.handle: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def expire(self, key: K) -> None:
        """`key`'s end has come (it is out of `pending` already)."""
        raise NotImplementedError

    def arm(self, at: float) -> None:
        """Set the loop timer for `at` (earlier than the one set)."""
        if self.handle is not None:
            self.handle.cancel()
        self.at = at
        loop = self.loop or asyncio.get_running_loop()
        self.handle = loop.call_later(max(0.0, at - monotonic()), self._fire)

    def _fire(self) -> None:
        self.handle, self.at = None, float("inf")
        now = monotonic() + 0.0005  # the loop's clock may run a hair behind
        due = [key for key, end in self.pending.items() if end <= now]
        for key in due:
            del self.pending[key]
            self.expire(key)
        if self.pending:
            self.arm(min(self.pending.values()))

    def close(self) -> None:
        """Stop the loop timer and forget every key (the owner is closing)."""
        if self.handle is not None:
            self.handle.cancel()
        self.handle, self.at = None, float("inf")
        self.pending.clear()


class Expiry(Deadlines[Task]):
    """Cancels a client's attempts that run past their end, with one loop timer for all.

    An attempt puts its task and end time in `pending` (a task is in one
    attempt of a client at a time: its call awaits it), arms the timer if its
    end is the earliest, and takes the task out when it is over (the client
    does this inline: it runs on every attempt). A client's calls mostly share
    one timeout, so a new attempt's end is later than the one already set and
    arms nothing: a dict insert and delete per attempt instead of a timer
    handle in the loop's heap. The timer fires at the earliest end (as often
    the end of an attempt long finished), cancels the tasks that are due,
    marks them in `fired` (so an attempt can tell its timeout from someone
    else's cancellation) and is set again for the next earliest end.
    """

    __slots__ = ("fired", "current_task")

    def __init__(self) -> None:
        super().__init__()
        self.fired: set[Task] = set()
        self.current_task: Callable[[], Task | None] = _no_task  # (the client is not open)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Time attempts made on `loop` (the client is opening)."""
        self.loop = loop
        self.current_task = _task_of(loop)

    async def wait(self, awaitable: Awaitable[T], end: float) -> T:
        """Await `awaitable`, cancelled at `end` (a `time.monotonic()` time): `TimeoutError`.

        As `async with asyncio.timeout_at(...)` for the loop's clock: a
        cancellation from anyone else goes on as `CancelledError`. (The
        service client does the same inline: it runs on every attempt.)
        """
        task = self.current_task()
        if task is None:
            raise RuntimeError("Expiry.wait must run in an asyncio task, on the loop it started on")
        cancelling = task.cancelling()
        self.pending[task] = end
        if end < self.at:
            self.arm(end)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if not self.discard(task) or task.uncancel() > cancelling:
                raise
            raise TimeoutError from None
        finally:
            if self.pending.pop(task, None) is None or self.fired:
                self.discard(task)  # fired, but the wait went on: forget it

    def discard(self, task: Task) -> bool:
        """The attempt is over: forget it. True if its time ran out (the task was cancelled)."""
        self.pending.pop(task, None)
        if self.fired and task in self.fired:
            self.fired.discard(task)
            return True
        return False

    def expire(self, task: Task) -> None:
        self.fired.add(task)  # (so that its attempt can tell its timeout from a cancel)
        task.cancel()

    def close(self) -> None:
        """Stop the loop timer (the client is closing)."""
        super().close()
        self.fired.clear()
