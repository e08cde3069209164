"""The loop-stall watchdog: names the code that holds the event loop too long.

Two parts, and nothing on the request path:

- a **heartbeat** on the loop: a timer callback every `interval` (a quarter of
  the threshold) that stamps when the next beat is due;
- a **watchdog thread** that wakes every `interval` and compares the clock
  with that stamp. When the beat is overdue by more than the threshold, the
  loop is held: the thread samples the loop thread's stack
  (`sys._current_frames()`) while the blocking code is still running, and
  recognises in it the handler (its code object, collected at startup) and
  the request (the `request` local of the outermost of the entry frames the
  app names when it starts the watchdog).

When the loop runs again, the late heartbeat measures how long it was held,
logs one warning on the `shoal.watchdog` logger (with the `StallReport` in the
record's `stall` attribute, for structured handlers), counts it in
`statistics()` and tells the listeners (the strict test client is one).

Rules, each decided here:

- A loop that is not running (between a test client's calls, before a
  server's first request) is paused, not held: the thread notes it and the
  next beat is not counted.
- Code that never releases the GIL (a long C call) cannot be sampled while it
  runs, since the thread cannot run either: the stall is still counted and
  logged, with the stack the thread finds just after the call (or none).
- An overloaded loop whose one iteration takes past the threshold is reported
  too, with whatever ran when the sample was taken: it is a real stall for
  every request waiting on that loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

from .logs import escape

if TYPE_CHECKING:
    from .app import Endpoint
    from .requests import Request

__all__ = ["DEFAULT_STALL_THRESHOLD", "StallReport", "Watchdog", "WatchdogStatistics"]

logger = logging.getLogger("shoal.watchdog")

DEFAULT_STALL_THRESHOLD = 0.1
"""Seconds: a tenth of a second on the loop is already a visible delay for every request."""

_MAX_FRAMES = 64
_MIN_INTERVAL = 0.005


@dataclass(frozen=True, slots=True)
class StallReport:
    """One stall: how long the loop was held, by which request and which code.

    `duration` is how long the loop was held, measured by the late heartbeat
    (within one heartbeat interval). `handler` (module and qualified name) and
    `location` ("file:line" in the handler) come from the stack sampled during
    the stall, `stack` is that stack formatted like a traceback (outermost
    first, from the app's entry frame in); each is None or empty when not known.
    """

    duration: float
    threshold: float
    method: str | None = None
    path: str | None = None
    route: str | None = None
    handler: str | None = None
    location: str | None = None
    request_id: str | None = None
    stack: tuple[str, ...] = ()

    def message(self) -> str:
        """The warning as logged: one headline, then the sampled stack."""
        where = f"in handler {self.handler}" if self.handler else "outside any handler"
        facts = []
        if self.method is not None:
            facts.append(f"request {escape(self.method)} {escape(self.path or '')}")
        if self.route is not None:
            facts.append(f"route {self.route}")
        if self.request_id is not None:
            facts.append(f"request id {escape(self.request_id)}")
        line = (
            f"the event loop was held for {self.duration:.3f} s "
            f"(threshold {self.threshold:.3f} s) {where}"
        )
        if facts:
            line += " (" + ", ".join(facts) + ")"
        if self.location:
            line += f" at {self.location}"
        if not self.stack:
            return line + "\n(no stack: the blocking code did not let the watchdog thread run)"
        return (
            line
            + "\nStack sampled during the stall (most recent call last):\n"
            + "".join(self.stack)
        )


@dataclass(frozen=True, slots=True)
class WatchdogStatistics:
    """Stalls seen so far: how many, the longest, and the loop time lost in all."""

    threshold: float | None
    stalls: int
    longest: float
    total: float


@dataclass(slots=True)
class _Sample:
    """What the watchdog thread saw during a stall; finished on the loop thread."""

    stack: tuple[str, ...]
    endpoint: Endpoint | None
    location: str | None
    request: Request | None


Listener = Callable[[StallReport], None]


class Watchdog:
    """Watches one app's event loop; `App.startup` starts it and shutdown stops it.

    `threshold` is in seconds; None turns the watchdog off (`start` does
    nothing). Everything but `start`, `stop` and `statistics` runs on the
    loop thread.
    """

    def __init__(self, threshold: float | None = DEFAULT_STALL_THRESHOLD) -> None:
        if threshold is not None and not threshold > 0:
            raise ValueError(
                f"stall_threshold must be a positive number of seconds or None, got {threshold!r}"
            )
        self.threshold = threshold
        # a beat every quarter threshold; never more than 200 wake-ups a second
        self.interval = max(threshold / 4, _MIN_INTERVAL) if threshold is not None else 0.0
        self.listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._stalls = 0
        self._longest = 0.0
        self._total = 0.0
        self._last: tuple[float, StallReport] | None = None  # (when it ended, the report)
        self._find_route: Callable[[str], str | None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._timer: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._handlers: dict[CodeType, Endpoint] = {}
        self._entry_codes: frozenset[CodeType] = frozenset()
        # shared with the watchdog thread, under _lock:
        self._due = 0.0  # when the next heartbeat should run (time.monotonic)
        self._pending: _Sample | None = None
        self._sampled_due = -1.0
        self._paused = False

    @property
    def running(self) -> bool:
        """Whether the watchdog is watching a loop now."""
        return self._thread is not None

    # -- lifecycle (loop thread) --------------------------------------------

    def start(
        self,
        endpoints: list[Endpoint],
        entry_codes: frozenset[CodeType],
        find_route: Callable[[str], str | None],
    ) -> None:
        """Watch the running loop (call it on the loop's thread, at startup).

        `endpoints` are the handlers to recognise in a sampled stack;
        `entry_codes` the code objects of the app's entry functions, whose
        frames hold the request in a local named `request` (the outermost one
        found wins, and the reported stack starts there); `find_route(path)`
        names the route template of a request stalled outside a handler.
        """
        if self.threshold is None or self._thread is not None:
            return
        self._find_route = find_route
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._handlers = _handler_codes(endpoints)
        self._entry_codes = entry_codes
        with self._lock:
            self._due = time.monotonic() + self.interval
            self._pending = None
            self._paused = False
        self._timer = self._loop.call_later(self.interval, self._beat)
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="shoal-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching: cancel the heartbeat and end the thread."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=5)
        self._loop = None
        self._find_route = None
        self._handlers = {}

    def reset(self) -> None:
        """Forget the time since the last beat: the loop was stopped, not held.

        For code that stops and restarts a loop between calls (the test
        client does, between requests); call it on the loop thread.
        """
        with self._lock:
            self._due = time.monotonic() + self.interval
            self._pending = None
            self._paused = False

    def _beat(self) -> None:
        self.check()
        if self._loop is not None and self._thread is not None:
            self._timer = self._loop.call_later(self.interval, self._beat)

    def check(self) -> StallReport | None:
        """Report a stall that just ended, if any; the heartbeat calls it.

        Also callable on the loop thread at any moment (the test client calls
        it after each request, so a stall is reported before the call returns).
        """
        if self.threshold is None or self._thread is None:
            return None
        now = time.monotonic()
        with self._lock:
            sample, self._pending = self._pending, None
            if self._paused:  # the loop was stopped, not held, since the last beat
                self._paused = False
                sample, held = None, 0.0
            else:
                held = now - self._due
            self._due = now + self.interval
        if sample is None and held <= self.threshold:
            return None
        report = self._report(max(held, self.threshold), sample)
        with self._lock:
            self._stalls += 1
            self._total += report.duration
            self._longest = max(self._longest, report.duration)
            self._last = (now, report)
        logger.warning(report.message(), extra={"stall": report})
        for listener in list(self.listeners):
            try:
                listener(report)
            except Exception:
                logger.exception("a stall listener failed")
        return report

    def _report(self, held: float, sample: _Sample | None) -> StallReport:
        assert self.threshold is not None
        if sample is None:
            return StallReport(held, self.threshold)
        request, endpoint = sample.request, sample.endpoint
        method = path = route = request_id = None
        if request is not None:
            method, path = request.method, request.path
            try:
                request_id = request.id
            except Exception:  # headers no longer readable: report the rest
                request_id = None
            if endpoint is None and self._find_route is not None:
                route = self._find_route(path)
        handler = None
        if endpoint is not None:
            route = endpoint.template
            module = getattr(endpoint.handler, "__module__", None)
            handler = f"{module}.{endpoint.name}" if module else endpoint.name
        return StallReport(
            duration=held,
            threshold=self.threshold,
            method=method,
            path=path,
            route=route,
            handler=handler,
            location=sample.location,
            request_id=request_id,
            stack=sample.stack,
        )

    # -- the watchdog thread -------------------------------------------------

    def _watch(self) -> None:
        loop = self._loop
        assert loop is not None and self.threshold is not None
        threshold, interval, stop = self.threshold, self.interval, self._stop
        while not stop.wait(interval):
            if loop.is_closed():
                return
            if not loop.is_running():
                with self._lock:
                    self._paused = True
                    self._pending = None
                continue
            with self._lock:
                if self._paused:
                    # running again: measure from now, so that code blocking
                    # the loop's first step after the pause is still caught
                    self._paused = False
                    self._due = time.monotonic() + interval
                    continue
                due = self._due
                if self._pending is not None or self._sampled_due == due:
                    continue
            if time.monotonic() - due <= threshold:
                continue
            sample = self._sample()
            with self._lock:
                if self._due == due and not self._paused:  # still the same stall
                    self._pending = sample
                    self._sampled_due = due

    def _sample(self) -> _Sample:
        frame: FrameType | None = sys._current_frames().get(self._loop_thread)
        frames: list[FrameType] = []  # innermost first
        while frame is not None and len(frames) < 4 * _MAX_FRAMES:
            frames.append(frame)
            frame = frame.f_back
        endpoint: Endpoint | None = None
        location = None
        request: Any = None
        cut = min(len(frames), _MAX_FRAMES)
        for index, frame in enumerate(frames):
            code = frame.f_code
            if endpoint is None and code in self._handlers:
                endpoint = self._handlers[code]
                location = f"{code.co_filename}:{frame.f_lineno}"
            elif code in self._entry_codes:  # keep going: the outermost one wins
                request = frame.f_locals.get("request")
                cut = index + 1
        summary = traceback.StackSummary.extract(
            ((f, f.f_lineno) for f in reversed(frames[:cut])), lookup_lines=True
        )
        del frame, frames
        return _Sample(tuple(summary.format()), endpoint, location, request)

    # -- reading -------------------------------------------------------------

    def recent_stall(self, longer_than: float, within: float) -> StallReport | None:
        """The last stall, if it held the loop over `longer_than` s and ended `within` s ago."""
        with self._lock:
            last = self._last
        if last is None:
            return None
        ended, report = last
        if report.duration > longer_than and time.monotonic() - ended <= within:
            return report
        return None

    def statistics(self) -> WatchdogStatistics:
        """An immutable snapshot: stalls so far, the longest and the total held time."""
        with self._lock:
            return WatchdogStatistics(self.threshold, self._stalls, self._longest, self._total)


def _handler_codes(endpoints: list[Endpoint]) -> dict[CodeType, Endpoint]:
    """Every code object that is a handler's body, mapped to its endpoint."""
    codes: dict[CodeType, Endpoint] = {}
    for endpoint in endpoints:
        handler = endpoint.handler
        call = type(handler).__call__  # a callable object's own code
        candidates = [handler, inspect.unwrap(handler), call]
        for candidate in candidates:
            code = getattr(candidate, "__code__", None)
            if isinstance(code, CodeType):
                codes.setdefault(code, endpoint)
    return codes
