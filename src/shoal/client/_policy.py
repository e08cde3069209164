"""The client's policies, with no I/O: timeouts, retries, the retry budget, the breaker.

Each is a small object the client consults per attempt; none of them knows
HTTP or sockets, so each is tested by calling it with a clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from time import time

__all__ = ["CLOSED", "Breaker", "CircuitBreaker", "Retry", "RetryBudget", "Timeout", "retry_after"]


@dataclass(frozen=True, slots=True)
class Timeout:
    """How long a call may take: `total` seconds in all (retries included), `connect` to connect.

    `total` bounds the whole call, every attempt and every back-off sleep
    included; the request's deadline, when there is one, can only shorten it.
    """

    total: float = 5.0
    connect: float = 1.0

    def __post_init__(self) -> None:
        if not (self.total > 0 and self.connect > 0):
            raise ValueError("timeouts must be positive numbers of seconds")


@dataclass(frozen=True, slots=True)
class Retry:
    """When and how often an idempotent call is tried again.

    At most `attempts` tries in all (1 turns retries off). Between tries the
    client sleeps a random time in `[0, min(max_backoff, backoff * 2**n))`
    ("full jitter": retries of many callers spread out instead of arriving
    together). An upstream's `Retry-After` of at most `max_retry_after`
    seconds replaces the back-off; a longer one ends the call. `budget` and
    `reserve` bound retries across calls: see `RetryBudget`.
    """

    attempts: int = 3
    backoff: float = 0.05
    max_backoff: float = 1.0
    max_retry_after: float = 2.0
    budget: float = 0.2
    reserve: int = 10

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Retry(attempts=...) must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0 or self.budget < 0 or self.reserve < 0:
            raise ValueError("Retry's back-off, budget and reserve cannot be negative")

    def delay(self, retry: int, rng: random.Random) -> float:
        """The sleep before retry number `retry` (0 for the first retry): full jitter."""
        return rng.uniform(0.0, min(self.max_backoff, self.backoff * (2**retry)))


class RetryBudget:
    """Retries may be at most `ratio` of calls, plus a `reserve` for quiet times.

    A token bucket counted in calls, not seconds: the bucket starts full at
    `reserve` tokens, every call adds `ratio` of a token (up to `reserve`),
    and every retry takes a whole one. So over any stretch of calls,
    retries <= reserve + ratio * calls: in an outage, when every call fails,
    the upstream sees at most `1 + ratio` times the load, not `attempts` times.
    """

    __slots__ = ("ratio", "reserve", "balance")

    def __init__(self, ratio: float, reserve: int) -> None:
        self.ratio = ratio
        self.reserve = float(reserve)
        self.balance = float(reserve)

    def deposit(self, calls: int = 1) -> None:
        """Count `calls` calls (the client pays them in when a retry asks: the same sum)."""
        balance = self.balance + self.ratio * calls
        self.balance = balance if balance < self.reserve else self.reserve

    def withdraw(self) -> bool:
        """Take a token for one retry; False when the budget is spent."""
        if self.balance >= 1.0:
            self.balance -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True)
class Breaker:
    """When the circuit breaker opens and when it tries again.

    It opens after `failures` failed attempts in a row (no success between
    them), all within `window` seconds; stays open `reset_after` seconds,
    refusing every call at once; then lets one probe through (half-open):
    the probe's success closes it, its failure opens it again.
    """

    failures: int = 5
    window: float = 10.0
    reset_after: float = 5.0

    def __post_init__(self) -> None:
        if self.failures < 1 or self.window <= 0 or self.reset_after <= 0:
            raise ValueError("Breaker needs failures >= 1 and positive window and reset_after")


CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

# The breaker's state machine as a table: (state, event) -> next state. Events:
# "trip" (enough failures in a row within the window), "cooled" (reset_after
# has passed since it opened), "success" and "failure" (of the half-open probe).
# A pair not in the table leaves the state as it is.
TRANSITIONS: dict[tuple[str, str], str] = {
    (CLOSED, "trip"): OPEN,
    (OPEN, "cooled"): HALF_OPEN,
    (HALF_OPEN, "success"): CLOSED,
    (HALF_OPEN, "failure"): OPEN,
}


class CircuitBreaker:
    """One upstream's breaker (see `Breaker` for the rules); `clock` is `time.monotonic`."""

    __slots__ = ("config", "state", "opened_at", "probing", "streak", "_first", "opened")

    def __init__(self, config: Breaker) -> None:
        self.config = config
        self.state = CLOSED
        self.opened_at = 0.0
        self.probing = False  # a half-open probe is in flight
        self.streak = 0  # failures in a row (0: nothing for success() to do when closed)
        self._first = 0.0  # when the streak's oldest failure in the window happened
        self.opened = 0  # times it opened, for statistics

    def _move(self, event: str, now: float) -> None:
        new = TRANSITIONS.get((self.state, event), self.state)
        if new == OPEN:
            self.opened_at = now
            self.opened += 1
        if new != HALF_OPEN:
            self.probing = False
        if new == CLOSED:
            self.streak = 0
        self.state = new

    def allow(self, now: float) -> bool:
        """May an attempt start now? Takes the probe slot when half-open."""
        state = self.state
        if state == CLOSED:
            return True
        if state == OPEN:
            if now - self.opened_at < self.config.reset_after:
                return False
            self._move("cooled", now)
        if self.probing:
            return False
        self.probing = True
        return True

    def success(self, now: float) -> None:
        """An attempt got an answer that was not a server failure."""
        self.streak = 0
        if self.state == HALF_OPEN:
            self._move("success", now)

    def failure(self, now: float) -> None:
        """An attempt failed: no connection, a timeout, or a 5xx answer."""
        if self.state == HALF_OPEN:
            self._move("failure", now)
            return
        if self.state != CLOSED:
            return
        if self.streak == 0 or now - self._first > self.config.window:
            self.streak, self._first = 0, now
        self.streak += 1
        if self.streak >= self.config.failures:
            self._move("trip", now)

    def abandon(self) -> None:
        """The probe was cancelled before it could tell anything: free the slot."""
        self.probing = False


def retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time())
