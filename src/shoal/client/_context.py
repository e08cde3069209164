"""What an outgoing call inherits from the request being served: deadline, id, trace.

The first `app.use(ServiceClient(...))` installs `Propagation`, a middleware
that notes, per request, the request and when it arrived in a contextvar (one
`set` and one `reset`: nothing is parsed until a call needs it). A client
call made while serving the request reads it from there, so handlers pass
nothing by hand, and `asyncio.gather` of several calls inherits it too.

The time budget comes in as `X-Request-Timeout: <seconds>`, a positive
decimal number of seconds (`2`, `0.250`): the time the caller will wait for
this answer, counted from when the request arrived. A missing or malformed
value means the app's default (`propagate(app, default_timeout=...)`, 30 s
unless set), which also caps the incoming value.
"""

from __future__ import annotations

import re
import weakref
from contextvars import ContextVar
from time import monotonic
from typing import TYPE_CHECKING

from shoal import Request

if TYPE_CHECKING:
    from shoal import App, Handler, Response

__all__ = [
    "CONTEXT",
    "DEFAULT_REQUEST_TIMEOUT",
    "REQUEST_TIMEOUT_HEADER",
    "CallContext",
    "Propagation",
    "current",
    "parse_timeout",
    "propagate",
    "time_left",
]

REQUEST_TIMEOUT_HEADER = "x-request-timeout"
DEFAULT_REQUEST_TIMEOUT = 30.0

# W3C Trace Context, version 00: passed on only when well-formed
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def parse_timeout(value: str | None) -> float | None:
    """Seconds from an `X-Request-Timeout` value; None when absent or malformed."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not 0 < seconds < float("inf"):  # rejects nan, inf, 0 and negatives
        return None
    return seconds


class CallContext:
    """The request being served, as outgoing calls see it (deadline, headers to pass on)."""

    __slots__ = ("request", "arrived", "default_timeout", "_deadline", "_forward")

    def __init__(self, request: Request, arrived: float, default_timeout: float) -> None:
        self.request = request
        self.arrived = arrived
        self.default_timeout = default_timeout
        self._deadline: float | None = None
        self._forward: list[tuple[str, str]] | None = None

    @property
    def deadline(self) -> float:
        """When the request's time is up, in `time.monotonic()` seconds."""
        if self._deadline is None:
            incoming = parse_timeout(self.request.headers.get(REQUEST_TIMEOUT_HEADER))
            budget = self.default_timeout
            if incoming is not None and incoming < budget:
                budget = incoming
            self._deadline = self.arrived + budget
        return self._deadline

    @property
    def forward(self) -> list[tuple[str, str]]:
        """The headers every call passes on: the request id, and the trace context if valid."""
        if self._forward is None:
            request = self.request
            forward = [("x-request-id", request.id)]
            headers = request.headers
            parent = headers.get("traceparent")
            if parent is not None and _TRACEPARENT.fullmatch(parent.strip()):
                forward.append(("traceparent", parent.strip()))
                state = headers.get("tracestate")
                if state:
                    forward.append(("tracestate", state))
            self._forward = forward
        return self._forward


CONTEXT: ContextVar[CallContext | None] = ContextVar("shoal.client.context", default=None)
"""The request being served on this task (None outside requests); `current()` reads it."""


def current() -> CallContext | None:
    """The context of the request being served on this task, or None outside requests."""
    return CONTEXT.get()


def time_left() -> float | None:
    """Seconds left of the current request's time budget (None outside a request).

    For work other than client calls that should respect the deadline too
    (`asyncio.timeout(time_left())` around a slow query, say).
    """
    context = CONTEXT.get()
    if context is None:
        return None
    return context.deadline - monotonic()


class Propagation:
    """The middleware that opens a `CallContext` for each request of one app."""

    def __init__(self, default_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        self.default_timeout = default_timeout

    def __call__(self, handler: Handler) -> Handler:
        context_var = CONTEXT

        async def propagate(request: Request) -> Response:
            token = context_var.set(CallContext(request, monotonic(), self.default_timeout))
            try:
                return await handler(request)
            finally:
                context_var.reset(token)

        return propagate


_installed: weakref.WeakKeyDictionary[App, Propagation] = weakref.WeakKeyDictionary()


def propagate(app: App, *, default_timeout: float | None = None) -> Propagation:
    """Install deadline/id/trace propagation on `app` (once); set its default time budget.

    `app.use(ServiceClient(...))` calls this for you; call it yourself to set
    `default_timeout`, the seconds a request may take when its caller sent no
    `X-Request-Timeout` (and the most it may ask for). Before the app starts.
    """
    propagation = _installed.get(app)
    if propagation is None:
        propagation = Propagation()
        app.add_middleware(propagation)
        _installed[app] = propagation
    if default_timeout is not None:
        if not default_timeout > 0:
            raise ValueError("default_timeout must be a positive number of seconds")
        propagation.default_timeout = default_timeout
    return propagation
