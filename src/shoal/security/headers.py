"""Security headers with an API's defaults, added to every response.

```python
app.add_middleware(SecurityHeaders(hsts=31_536_000, server="runs"))
```

- `X-Content-Type-Options: nosniff`: a browser never guesses a JSON body is
  HTML or a script.
- `Referrer-Policy: no-referrer` (configurable).
- `Cache-Control: no-store` on errors and on authenticated responses (those
  to a request with an `Authorization` header, or that `shoal.security`
  authenticated), unless the handler set its own `Cache-Control`: neither a
  shared cache nor the browser's disk keeps one user's data or a transient
  error.
- `Strict-Transport-Security` only when asked (`hsts=` max-age in seconds):
  once sent it binds browsers to HTTPS for that long, so it is a decision.
- `Server`: granian already sends `server: granian` with no version (uvicorn
  `server: uvicorn`); `server="name"` replaces it with your own word.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..requests import Request
from ..responses import Response

if TYPE_CHECKING:
    from ..app import Handler

__all__ = ["SecurityHeaders"]


class SecurityHeaders:
    """A middleware adding the headers above; each is configurable or can be turned off."""

    def __init__(
        self,
        *,
        hsts: int | None = None,
        hsts_subdomains: bool = False,
        hsts_preload: bool = False,
        referrer_policy: str | None = "no-referrer",
        nosniff: bool = True,
        no_store: bool = True,
        server: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        always: list[tuple[str, str]] = []
        if nosniff:
            always.append(("x-content-type-options", "nosniff"))
        if referrer_policy:
            always.append(("referrer-policy", referrer_policy))
        if hsts is not None:
            value = f"max-age={hsts}"
            if hsts_subdomains:
                value += "; includeSubDomains"
            if hsts_preload:
                value += "; preload"
            always.append(("strict-transport-security", value))
        always.extend((name.lower(), value) for name, value in (extra or {}).items())
        self.always = tuple(always)
        self.no_store = no_store
        self.server = server

    def __call__(self, call_next: Handler) -> Handler:
        """Wrap `call_next` so its responses carry the headers."""
        always = self.always
        no_store = self.no_store
        server = self.server

        async def secured(request: Request) -> Response:
            response = await call_next(request)
            headers = response.headers
            headers.extend(always)
            if (
                no_store
                and (
                    response.status >= 400
                    or "authorization" in request.headers
                    or request.state.__dict__.get("shoal_authenticated")
                )
                and response.header("cache-control") is None
            ):
                headers.append(("cache-control", "no-store"))
            if server is not None:
                response.headers = [(k, v) for k, v in headers if k != "server"]
                response.headers.append(("server", server))
            return response

        return secured
