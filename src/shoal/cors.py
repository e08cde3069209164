"""Cross-origin resource sharing (CORS): which web pages may call this API from a browser.

```python
app.add_middleware(
    CORS(allow_origins=["https://app.example.org"], allow_headers=["authorization"])
)
```

Add it last (the last middleware added runs outermost): then errors that
other middleware answer (401, 429...) carry the CORS headers too, and the
page's script can read them.

The rules follow the Fetch standard (https://fetch.spec.whatwg.org/#http-cors-protocol):

- **Origins match exactly**: the request's `Origin` is compared, as a whole
  string, with the configured ones (scheme, host and port: `http://localhost:3000`
  is not `http://127.0.0.1:3000`, and `https://example.org.evil.net` is not
  `https://example.org`). An origin is checked when configured: a path, a
  trailing slash or a missing scheme is a `ConfigurationError`.
- **`["*"]` allows every origin**, answered with `Access-Control-Allow-Origin: *`;
  combined with `allow_credentials=True` it is a `ConfigurationError` (browsers
  refuse `*` with credentials, and echoing any origin back would hand every
  site on the web the user's session).
- **A preflight** (an `OPTIONS` request with `Origin` and
  `Access-Control-Request-Method`) is answered here, before routing: 204 with
  the allowed methods and headers and `Access-Control-Max-Age` when the
  origin, the method and every requested header are allowed; otherwise 403
  problem+json without any `Access-Control-*` header, whose detail says what
  was refused (the browser then fails the call; the detail shows in its
  developer tools).
- **Every other response** to an allowed origin gets
  `Access-Control-Allow-Origin` (and `-Credentials`, `-Expose-Headers` when
  configured). A response that depends on the origin carries `Vary: Origin`,
  also when the request had no `Origin` header, so that a shared cache never
  serves one origin's answer to another.
- `allow_headers=["*"]` (or `allow_methods=["*"]`) allows whatever the
  preflight asks for, by echoing it back (also valid with credentials).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import ConfigurationError, Forbidden
from .requests import Request
from .responses import Response, problem_response

if TYPE_CHECKING:
    from .app import Handler

__all__ = ["CORS"]

DEFAULT_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

# The response headers a page may read without `expose_headers`: the
# CORS-safelisted response header names.
_SAFELISTED_RESPONSE = frozenset(
    {"cache-control", "content-language", "content-length", "content-type", "expires",
     "last-modified", "pragma"}
)  # fmt: skip


def _check_origin(origin: str) -> str:
    """`origin` serialized (`scheme://host[:port]`, lower case), or ConfigurationError."""
    if origin == "*":
        return origin
    parts = urlsplit(origin)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
        or origin.endswith(("?", "#"))
    ):
        raise ConfigurationError(
            f"CORS origin {origin!r} is not an origin: write scheme://host[:port] with no path "
            "or trailing slash, e.g. 'https://app.example.org'"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError(f"CORS origin {origin!r} has an invalid port") from None
    return origin.lower()


class CORS:
    """A middleware answering CORS preflights and adding CORS headers (see the module docs).

    `allow_origins`: the exact origins allowed (`["*"]`: all, without
    credentials). `allow_methods` (default: GET, HEAD, POST, PUT, PATCH,
    DELETE) and `allow_headers` (default: none beyond the CORS-safelisted
    ones) bound what a preflight may ask for; `["*"]` allows any.
    `allow_credentials` lets the page send cookies and `Authorization` and
    read the answer. `expose_headers` are response headers the page's script
    may read beyond the safelisted ones. `max_age` (seconds, 600) is how long
    a browser may cache a preflight's answer.
    """

    def __init__(
        self,
        *,
        allow_origins: Iterable[str],
        allow_methods: Iterable[str] = DEFAULT_METHODS,
        allow_headers: Iterable[str] = (),
        allow_credentials: bool = False,
        expose_headers: Iterable[str] = (),
        max_age: int = 600,
    ) -> None:
        if isinstance(allow_origins, str):
            raise ConfigurationError("CORS allow_origins is a list of origins, not one string")
        origins = [_check_origin(origin.strip()) for origin in allow_origins]
        if not origins:
            raise ConfigurationError("CORS allow_origins is empty: list the allowed origins")
        self.any_origin = "*" in origins
        if self.any_origin and len(origins) > 1:
            raise ConfigurationError("CORS allow_origins: '*' already allows every origin")
        if self.any_origin and allow_credentials:
            raise ConfigurationError(
                "CORS: allow_origins=['*'] with allow_credentials=True is refused: browsers "
                "do not send credentials to '*', and reflecting every origin would let any site "
                "act with your users' sessions; list the origins instead"
            )
        if max_age < 0:
            raise ConfigurationError("CORS max_age must be >= 0")
        self.origins = frozenset(origins)
        methods = [method.strip().upper() for method in allow_methods]
        self.any_method = "*" in methods
        self.methods = frozenset(methods)
        headers = [header.strip().lower() for header in allow_headers]
        self.any_header = "*" in headers
        self.headers = frozenset(headers)
        self.credentials = allow_credentials
        self.max_age = max_age
        self._methods_value = ", ".join(methods)
        self._headers_value = ", ".join(headers)
        exposed = [h.strip().lower() for h in expose_headers if h.strip().lower()]
        self._expose_value = ", ".join(h for h in exposed if h not in _SAFELISTED_RESPONSE)

    def allows_origin(self, origin: str) -> bool:
        """Whether `origin` (a request's `Origin` header, as sent) is allowed: exact match."""
        return self.any_origin or origin in self.origins

    def preflight(self, request: Request, origin: str, method: str) -> Response:
        """The answer to a preflight from `origin` asking for `method`."""
        requested = request.header("access-control-request-headers") or ""
        asked = [h.strip().lower() for h in requested.split(",") if h.strip()]
        refused: str | None = None
        if not self.allows_origin(origin):
            refused = f"origin {origin!r} is not allowed"
        elif not (self.any_method or method in self.methods):
            refused = f"method {method!r} is not allowed from this origin"
        elif not self.any_header:
            extra = [h for h in asked if h not in self.headers]
            if extra:
                refused = f"request header(s) {', '.join(extra)} not allowed from this origin"
        if refused is not None:
            response = problem_response(Forbidden(detail=f"CORS preflight refused: {refused}"))
            response.add_vary("Origin")
            return response
        headers = [
            ("access-control-allow-origin", "*" if self.any_origin else origin),
            ("access-control-allow-methods", method if self.any_method else self._methods_value),
            ("access-control-max-age", str(self.max_age)),
        ]
        allowed_headers = ", ".join(asked) if self.any_header else self._headers_value
        if allowed_headers:
            headers.append(("access-control-allow-headers", allowed_headers))
        if self.credentials:
            headers.append(("access-control-allow-credentials", "true"))
        response = Response(status=204, headers=headers)
        if not self.any_origin:
            response.add_vary("Origin")
        return response

    def __call__(self, call_next: Handler) -> Handler:
        """Wrap `call_next`: preflights answered here, CORS headers on the rest."""
        any_origin = self.any_origin
        origins = self.origins
        simple: list[tuple[str, str]] = []
        if self.credentials:
            simple.append(("access-control-allow-credentials", "true"))
        if self._expose_value:
            simple.append(("access-control-expose-headers", self._expose_value))

        async def cors(request: Request) -> Response:
            origin = request.header("origin")
            if origin is None:
                response = await call_next(request)
                if not any_origin:
                    response.add_vary("Origin")
                return response
            if request.method == "OPTIONS":
                method = request.header("access-control-request-method")
                if method is not None:
                    return self.preflight(request, origin, method.strip())
            response = await call_next(request)
            if any_origin:
                response.headers.append(("access-control-allow-origin", "*"))
                response.headers.extend(simple)
            else:
                response.add_vary("Origin")
                if origin in origins:
                    response.headers.append(("access-control-allow-origin", origin))
                    response.headers.extend(simple)
            return response

        return cors
