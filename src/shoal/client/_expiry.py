"""Timeouts for a client's attempts: one loop timer for all of them, not one each."""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import Any

__all__ = ["Expiry", "Timer"]


class Timer:
    """Cancels `task` when called, and remembers that it did.

    `cancelling` is how many cancellations the task had pending when the
    attempt began, so the client can tell its own from someone else's.
    """

    __slots__ = ("task", "fired", "cancelling")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        if task is None:
            raise RuntimeError("ServiceClient calls must run in an asyncio task")
        self.task = task
        self.fired = False
        self.cancelling = task.cancelling()

    def __call__(self) -> None:
        self.fired = True
        self.task.cancel()


class Expiry:
    """Cancels a client's attempts that run past their end, with one loop timer for all.

    Each attempt registers its `Timer` and end time; the loop timer is set for
    the earliest end and moved only when an earlier end arrives. A client's
    calls mostly share one timeout, so a new attempt's end is later than the
    one already set and arms nothing: a dict insert and delete per attempt
    instead of a timer handle in the loop's heap. The timer fires at the
    earliest end (as often the end of an attempt long finished), cancels what
    is due and is set again for the next earliest end.
    """

    __slots__ = ("pending", "handle", "at")

    def __init__(self) -> None:
        self.pending: dict[Timer, float] = {}
        self.handle: asyncio.TimerHandle | None = None
        self.at = float("inf")

    def add(self, timer: Timer, end: float) -> None:
        """Cancel `timer`'s task at `end` (a `time.monotonic()` time) unless discarded first."""
        self.pending[timer] = end
        if end < self.at:
            self._arm(end)

    def discard(self, timer: Timer) -> None:
        """The attempt is over: forget it."""
        self.pending.pop(timer, None)

    def _arm(self, at: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.at = at
        self.handle = asyncio.get_running_loop().call_later(max(0.0, at - monotonic()), self._fire)

    def _fire(self) -> None:
        self.handle, self.at = None, float("inf")
        now = monotonic() + 0.0005  # the loop's clock may run a hair behind
        due = [timer for timer, end in self.pending.items() if end <= now]
        for timer in due:
            del self.pending[timer]
            timer()
        if self.pending:
            self._arm(min(self.pending.values()))

    def close(self) -> None:
        """Stop the loop timer (the client is closing)."""
        if self.handle is not None:
            self.handle.cancel()
        self.handle, self.at = None, float("inf")
        self.pending.clear()
