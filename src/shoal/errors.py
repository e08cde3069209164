"""Every exception shoal raises, in one tree.

```
ShoalError                      base of everything shoal raises
├── ConfigurationError          the app was set up wrongly (found at start-up, never per request)
│   └── RouteConflict           two routes would answer the same request
├── StartupError                a startup hook or lifespan failed; the server does not start
└── HTTPError                   an error with an HTTP status, sent as RFC 9457 problem+json
    ├── BadRequest              400: malformed body, unreadable body, bad framing
    ├── NotFound                404: no route for the path
    ├── MethodNotAllowed        405: the path exists, the method does not (carries `Allow`)
    ├── PayloadTooLarge         413: the body is over the app's limit
    ├── ValidationError         422: the request is well-formed but its values are invalid
    └── ServiceUnavailable      503: overloaded or a dependency is down (carries `Retry-After`)
```

A handler raises `HTTPError(status, detail)` (or a subclass) to answer with an
error; anything else it raises is logged with its traceback and answered with
a 500 problem body that says nothing about the internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

__all__ = [
    "BadRequest",
    "ConfigurationError",
    "HTTPError",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RouteConflict",
    "ServiceUnavailable",
    "ShoalError",
    "StartupError",
    "ValidationError",
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
