"""Every exception shoal raises, in one tree.

```
ShoalError                      base of everything shoal raises
├── ConfigurationError          the app was set up wrongly (found at start-up, never per request)
│   ├── RouteConflict           two routes would answer the same request
│   └── SettingsError           shoal.settings: a variable is missing or invalid (one line each)
├── StartupError                a startup hook or lifespan failed; the server does not start
├── DatabaseError               shoal.db: the database refused a statement (500 when uncaught)
│   ├── MigrationError          a migration file failed or is inconsistent; nothing of it applied
│   ├── IntegrityError *        409: a unique, foreign key, check or not-null constraint failed
│   ├── OutOfRange *            422: an argument is out of the range its column type can hold
│   └── DatabaseUnavailable *   503: unreachable, pool exhausted, busy, statement timed out
├── EventsError                 shoal.events: the broker refused an operation or a stream is wrong
│   └── EventBusUnavailable *   503: the broker cannot be reached or did not confirm in time
├── WebSocketDisconnect         shoal.websockets: the socket closed (carries `code` and `reason`)
├── InvalidMessage              shoal.websockets: a JSON message did not decode or validate (1007)
└── HTTPError                   an error with an HTTP status, sent as RFC 9457 problem+json
    ├── BadRequest              400: malformed body, unreadable body, bad framing
    ├── NotFound                404: no route for the path
    ├── MethodNotAllowed        405: the path exists, the method does not (carries `Allow`)
    ├── PayloadTooLarge         413: the body is over the app's limit
    ├── ValidationError         422: the request is well-formed but its values are invalid
    │   └── OutOfRange *
    ├── Conflict                409: the request conflicts with the current state
    │   └── IntegrityError *
    ├── ServiceUnavailable      503: overloaded or a dependency is down (carries `Retry-After`)
    │   ├── DatabaseUnavailable *
    │   ├── EventBusUnavailable *
    │   └── UpstreamUnavailable     503: shoal.client: unreachable, breaker open, retries spent
    │       └── UpstreamTimeout     504: the call ran past its timeout or the request's deadline
    ├── UpstreamError           502: shoal.client: an upstream answered with an error status
    ├── Unauthorized            401: no credentials, or invalid ones (carries `WWW-Authenticate`)
    ├── Forbidden               403: valid credentials that lack a permission (a scope)
    └── TooManyRequests         429: over a rate limit (carries `Retry-After` and `RateLimit`)
```

(* has two parents: a handler may catch it as a database error or let it go
out as its HTTP status.) Database errors are translated from the driver
(asyncpg, sqlite3) with `raise ... from exc`: the driver's exception is the
`__cause__`, never what a caller catches.

A handler raises `HTTPError(status, detail)` (or a subclass) to answer with an
error; anything else it raises is logged with its traceback and answered with
a 500 problem body that says nothing about the internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import msgspec

__all__ = [
    "BadRequest",
    "ConfigurationError",
    "Conflict",
    "DatabaseError",
    "DatabaseUnavailable",
    "EventBusUnavailable",
    "EventsError",
    "Forbidden",
    "HTTPError",
    "IntegrityError",
    "InvalidMessage",
    "MethodNotAllowed",
    "MigrationError",
    "NotFound",
    "OutOfRange",
    "PayloadTooLarge",
    "RouteConflict",
    "ServiceUnavailable",
    "SettingsError",
    "ShoalError",
    "StartupError",
    "TooManyRequests",
    "Unauthorized",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "ValidationError",
    "WebSocketDisconnect",
]


class ShoalError(Exception):
    """Base class of every exception shoal raises."""


class ConfigurationError(ShoalError):
    """The app was configured wrongly; raised at registration or start-up."""


class RouteConflict(ConfigurationError):
    """A route was registered that another route already answers."""


class StartupError(ShoalError):
    """A startup hook or the lifespan failed, so the app cannot serve."""


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class HTTPError(ShoalError):
    """An error answered with `status` and an RFC 9457 problem body.

    `detail` is shown to the client, so it must not leak internals. `extra`
    members are added to the problem body (for example `errors` for 422), and
    `headers` to the response.
    """

    status: int = 500

    def __init__(
        self,
        status: int | None = None,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        title: str | None = None,
        type: str = "about:blank",
        **extra: Any,
    ) -> None:
        if status is not None:
            self.status = status
        if not 400 <= self.status <= 599:
            raise ValueError(f"HTTPError status must be 4xx or 5xx, got {self.status}")
        self.title = title or _phrase(self.status)
        self.detail = detail if detail is not None else self.title
        self.headers = dict(headers or {})
        self.type = type
        self.extra = extra
        super().__init__(self.detail)

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem document for this error."""
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.detail!r})"


class BadRequest(HTTPError):
    """400: the request could not be understood (malformed JSON, broken body)."""

    status = 400


class NotFound(HTTPError):
    """404: no route matches the path."""

    status = 404


class MethodNotAllowed(HTTPError):
    """405: the path exists but not for this method; `Allow` lists the methods."""

    status = 405

    def __init__(self, allowed: list[str], detail: str | None = None) -> None:
        self.allowed = allowed
        super().__init__(detail=detail, headers={"allow": ", ".join(allowed)})


class PayloadTooLarge(HTTPError):
    """413: the request body is larger than the app's `max_body_size`."""

    status = 413


class ValidationError(HTTPError):
    """422: the request is well-formed but some values are invalid.

    `errors` lists each invalid field as `{"loc": [...], "msg": ...}`.
    """

    status = 422

    def __init__(self, errors: list[dict[str, Any]], detail: str | None = None) -> None:
        self.errors = errors
        super().__init__(detail=detail or "The request has invalid fields.", errors=errors)


class ServiceUnavailable(HTTPError):
    """503: the service cannot answer now; `Retry-After` says when to try again."""

    status = 503

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail=detail, headers={"retry-after": str(retry_after)})


class Conflict(HTTPError):
    """409: the request conflicts with the current state of the resource."""

    status = 409


class DatabaseError(ShoalError):
    """The database refused a statement (bad SQL, wrong arguments, a failed cast).

    Uncaught, it is a 500 like any other bug; its subclasses carry statuses.
    `sqlstate` is the SQLSTATE code (PostgreSQL) or the SQLite error name when
    the driver reported one.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class MigrationError(DatabaseError):
    """A migration failed (and was rolled back) or the migrations folder is inconsistent."""


class IntegrityError(DatabaseError, Conflict):
    """409: a statement violated a constraint (unique, foreign key, check, not null).

    A handler may catch it (`except IntegrityError`) to answer its own way;
    uncaught, the client gets a 409 problem that names no table or column.
    `constraint` is the violated constraint's name when the driver reports it.
    """

    def __init__(
        self, message: str, *, sqlstate: str | None = None, constraint: str | None = None
    ) -> None:
        Conflict.__init__(self, detail="The request conflicts with data already stored.")
        self.message = message
        self.sqlstate = sqlstate
        self.constraint = constraint
        self.args = (message,)


class OutOfRange(DatabaseError, ValidationError):
    """422: a statement's argument is out of the range the database can hold.

    An id of `99999999999999999999` is a valid Python int but no SQLite or
    PostgreSQL integer: the client sent a value this service cannot look up
    or store, so it is the client's error, not a 500. `argument` is the
    1-based position of the offending argument when the driver says it.
    """

    def __init__(
        self, message: str, *, sqlstate: str | None = None, argument: int | None = None
    ) -> None:
        # the client never sees SQL positions: the detail says what went wrong
        ValidationError.__init__(
            self, [], detail="A value in the request is out of the range this service can store."
        )
        self.message = message
        self.sqlstate = sqlstate
        self.argument = argument
        self.args = (message,)


class DatabaseUnavailable(DatabaseError, ServiceUnavailable):
    """503: the database cannot answer now; the client may retry after `Retry-After`.

    Raised when the database is unreachable, every pooled connection is taken
    for longer than the acquire timeout, SQLite stays busy past its busy
    timeout, or a statement runs past the statement timeout.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None, retry_after: int = 1) -> None:
        ServiceUnavailable.__init__(
            self, "The database is unavailable; retry shortly.", retry_after=retry_after
        )
        self.message = message
        self.sqlstate = sqlstate
        self.args = (message,)


class Unauthorized(HTTPError):
    """401: the request has no credentials, or credentials that were refused.

    `challenge` is the `WWW-Authenticate` value (`Bearer error="invalid_token"`);
    `detail` tells the caller what to fix without saying anything about keys.
    """

    status = 401

    def __init__(self, detail: str | None = None, *, challenge: str = "Bearer") -> None:
        super().__init__(detail=detail, headers={"www-authenticate": challenge})


class Forbidden(HTTPError):
    """403: the credentials are valid but do not grant this (a missing scope)."""

    status = 403


class TooManyRequests(HTTPError):
    """429: the caller is over a rate limit; `Retry-After` says when to come back."""

    status = 429

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str]) -> None:
        super().__init__(detail=detail, headers=headers)


class SettingsError(ConfigurationError):
    """`Settings.load()` found missing or invalid variables; the service must not start.

    The message is one line: each problem as `VARIABLE: what was expected`,
    joined by `; `. A secret's value is never in it. `problems` holds the
    same as `(variable, message)` pairs.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.problems))


class EventsError(ShoalError):
    """shoal.events: the broker refused an operation (a stream's settings, a bad subject).

    Uncaught in a handler it is a 500 like any other bug; `EventBusUnavailable`
    is the one that means "try again later".
    """


class EventBusUnavailable(EventsError, ServiceUnavailable):
    """503: the broker cannot be reached, or did not confirm a publish in time.

    A publish is retried (with the same message id, so the broker stores it
    once) until its deadline; past it, this is raised. In an HTTP handler it
    becomes a 503 with `Retry-After`. Publishing through the outbox never
    raises it: the event waits in the database until the broker is back.
    """

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        ServiceUnavailable.__init__(
            self, "The event broker is unavailable; retry shortly.", retry_after=retry_after
        )
        self.message = message
        self.args = (message,)


class UpstreamError(HTTPError):
    """502: an upstream service answered a `shoal.client` call with an error status.

    `upstream` names the client, `upstream_status` is the status it answered
    and `upstream_problem` its body decoded from JSON (an RFC 9457 problem document when
    the upstream is a shoal service; None when the body is not JSON).
    `response` is the whole `shoal.client.ClientResponse`. A handler catches
    it to answer its own way (`if exc.upstream_status == 404: ...`);
    uncaught, its client gets a 502 that does not repeat the upstream's body.
    """

    status = 502

    def __init__(
        self, upstream: str, upstream_status: int, upstream_problem: Any, response: Any
    ) -> None:
        super().__init__(detail=f"The upstream service {upstream!r} answered with an error.")
        self.upstream = upstream
        self.upstream_status = upstream_status
        self.upstream_problem = upstream_problem
        self.response = response

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.upstream!r}, {self.upstream_status})"


class UpstreamUnavailable(ServiceUnavailable):
    """503: a `shoal.client` call got no answer it could use.

    The upstream refused the connection, its circuit breaker is open, or it
    kept answering 502/503/504 until the retries (or the retry budget) ran
    out. `upstream` names the client and `reason` says which:
    `"connect"`, `"breaker-open"`, `"status"`, `"timeout"` or `"deadline"`.
    Uncaught, the handler's client gets a 503 with `Retry-After`.
    """

    def __init__(self, upstream: str, reason: str, detail: str | None = None) -> None:
        super().__init__(detail or f"The upstream service {upstream!r} is unavailable.")
        self.upstream = upstream
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.upstream!r}, {self.reason!r})"


class UpstreamTimeout(UpstreamUnavailable):
    """504: a `shoal.client` call ran past its timeout, or the request's deadline left no time.

    `reason` is `"timeout"` (the call's own timeout) or `"deadline"` (what
    was left of the incoming request's time budget; the call may not even
    have been started).
    """

    status = 504


JSON_DECODE_ERRORS: tuple[type[Exception], ...] = (
    msgspec.DecodeError,
    RecursionError,
    UnicodeDecodeError,
)
"""What msgspec's JSON decoders raise for a body that is not JSON: besides
`DecodeError`, nesting deeper than it recurses, and bytes that are not UTF-8."""


def malformed_json(exc: Exception, body: bytes) -> BadRequest:
    """The 400 for a body that could not be decoded as JSON: a detail that says why.

    The one wording of a decode failure, for `request.json()` and typed
    bodies alike; never a traceback, never a 500.
    """
    if isinstance(exc, RecursionError):
        detail = "Malformed JSON body: nested too deeply"
    elif isinstance(exc, UnicodeDecodeError):
        detail = f"Malformed JSON body: not valid UTF-8 at byte {exc.start}"
    elif str(exc) == "Input data was truncated" and b"\\u" in body:
        # msgspec reads past a lone surrogate escape looking for its pair
        detail = "Malformed JSON body: truncated, or an unpaired \\u surrogate escape"
    else:
        detail = f"Malformed JSON body: {exc}"
    return BadRequest(detail=detail)


class WebSocketDisconnect(ShoalError):
    """The WebSocket closed: raised by `receive*()` once the client (or the server) closed it.

    `code` is the close code (1000 a normal close; 1005 when the close frame
    carried none, as under granian's RSGI), `reason` its text. A handler
    need not catch it: the app ends the connection quietly.
    """

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"the WebSocket closed with {code}" + (f": {reason}" if reason else ""))


class InvalidMessage(ShoalError):
    """A WebSocket message that `receive_json(type=...)` could not decode or validate.

    `errors` lists what was wrong as `{"loc": [...], "msg": ...}`, like a
    `ValidationError`'s. The socket stays open: a handler may catch it and
    answer; uncaught, the app closes the socket with 1007 (invalid payload).
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        text = "; ".join(f"{e['msg']} at {'.'.join(map(str, e['loc']))}" for e in errors)
        super().__init__(f"invalid WebSocket message: {text}")
