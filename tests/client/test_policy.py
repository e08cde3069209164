"""The client's policies, driven by hand with a fake clock: breaker, budget, back-off, headers."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from shoal.client import Breaker, CircuitBreaker, Retry, RetryBudget, Timeout, parse_timeout
from shoal.client._policy import retry_after


def test_breaker_walks_its_state_table() -> None:
    breaker = CircuitBreaker(Breaker(failures=3, window=10.0, reset_after=5.0))
    for now in (0.0, 1.0):
        breaker.failure(now)
        assert breaker.state == "closed" and breaker.allow(now)
    breaker.failure(2.0)
    assert breaker.state == "open" and breaker.opened == 1
    assert not breaker.allow(6.9)  # still cooling down
    assert breaker.allow(7.0) and breaker.state == "half-open"  # the probe
    assert not breaker.allow(7.1)  # one probe at a time
    breaker.failure(7.2)
    assert breaker.state == "open" and breaker.opened == 2
    assert breaker.allow(12.5)
    breaker.abandon()  # a cancelled probe frees the slot
    assert breaker.allow(12.6)
    breaker.success(12.7)
    assert breaker.state == "closed" and breaker.allow(12.8)


def test_breaker_counts_failures_in_a_row_within_the_window() -> None:
    breaker = CircuitBreaker(Breaker(failures=3, window=10.0))
    breaker.failure(0.0)
    breaker.failure(1.0)
    breaker.success(1.5)  # a success breaks the streak
    breaker.failure(2.0)
    breaker.failure(3.0)
    assert breaker.state == "closed"
    breaker.failure(20.0)  # the streak began outside the window: it starts over
    breaker.failure(21.0)
    assert breaker.state == "closed"
    breaker.failure(22.0)
    assert breaker.state == "open"


def test_budget_bounds_retries_by_calls() -> None:
    budget = RetryBudget(ratio=0.2, reserve=3)
    granted = 0
    for _ in range(100):
        budget.deposit()
        granted += budget.withdraw()
    assert granted <= 3 + 0.2 * 100
    assert granted >= 20
    quiet = RetryBudget(ratio=0.5, reserve=2)
    for _ in range(1000):
        quiet.deposit()
    assert quiet.balance == 2  # saving up in quiet times is capped at the reserve


def test_full_jitter_stays_within_the_exponential_bound() -> None:
    retry = Retry(backoff=0.1, max_backoff=0.5)
    rng = random.Random(1)
    for attempt, bound in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.5), (10, 0.5)]:
        delays = [retry.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8  # spread over the whole range


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("2", 2.0), ("0.25", 0.25), (" 3 ", 3.0), ("", None), (None, None), ("soon", None),
     ("0", None), ("-1", None), ("nan", None), ("inf", None), ("1e400", None)],
)  # fmt: skip
def test_parse_timeout(value: str | None, seconds: float | None) -> None:
    assert parse_timeout(value) == seconds


def test_retry_after_parses_seconds_and_dates() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(None) is None and retry_after("later") is None
    in_ten = retry_after(formatdate(__import__("time").time() + 10, usegmt=True))
    assert in_ten is not None and 8 <= in_ten <= 11


@pytest.mark.parametrize(
    "make",
    [lambda: Timeout(total=0), lambda: Timeout(connect=-1), lambda: Retry(attempts=0),
     lambda: Retry(budget=-1), lambda: Breaker(failures=0), lambda: Breaker(reset_after=0)],
)  # fmt: skip
def test_bad_settings_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]
