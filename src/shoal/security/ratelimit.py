"""Rate limiting: GCRA (a token bucket without a timer), per app or per route.

```python
limiter = RateLimit(Rate(100, per=1.0, burst=20), key=jwt_subject(auth))
limiter.install(app)                       # the whole app: 100/s per user, bursts of 20

@app.post("/runs", rate_limit=Rate(5, per=60))   # this route: its own, stricter limit
async def create_run(...): ...

@app.get("/livez", rate_limit=None)        # this route: no limit at all
async def livez(): ...
```

GCRA keeps one number per key, the *theoretical arrival time* (TAT): a
request at `now` is allowed when `max(TAT, now) + interval - now <= burst *
interval`, and then pushes TAT by `interval` (= `per / limit`). Over any
window of `t` seconds a key gets at most `burst + t * limit / per` requests.
Refused requests cost nothing and change nothing.

Answers carry the IETF draft's headers (draft-ietf-httpapi-ratelimit-headers):
`RateLimit-Policy: "default";q=20;w=1` (the burst, and the seconds in which
it refills) and `RateLimit: "default";r=7;t=1` (requests left now, seconds
until the bucket is full again). A refusal is a 429 problem with those and
`Retry-After` (whole seconds, rounded up).

Backends: `MemoryBackend` (the default) is per process, so with
`shoal run --workers N` each worker enforces the limit on its own (N times
the limit in all, at worst); `RedisBackend` shares one count between every
worker and replica, atomically (one Lua script per request).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..errors import ConfigurationError, MethodNotAllowed, NotFound, TooManyRequests
from ..requests import Request
from ..responses import Response, problem_response

if TYPE_CHECKING:
    from ..app import App, Handler
    from .apikeys import APIKeys
    from .jwt import JWTBearer

__all__ = [
    "Decision",
    "MemoryBackend",
    "Rate",
    "RateLimit",
    "RateLimitBackend",
    "api_key_id",
    "client_address",
    "jwt_subject",
]

KeyFunc = Callable[[Request], "str | Awaitable[str | None] | None"]


@dataclass(frozen=True, slots=True)
class Rate:
    """`limit` requests per `per` seconds, with bursts of up to `burst` (default: `limit`)."""

    limit: float
    per: float = 1.0
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.limit <= 0 or self.per <= 0 or (self.burst is not None and self.burst < 1):
            raise ConfigurationError(f"a rate needs limit > 0, per > 0, burst >= 1: {self!r}")

    @property
    def interval(self) -> float:
        """Seconds between two requests at the steady rate."""
        return self.per / self.limit

    @property
    def capacity(self) -> int:
        """The burst: how many requests a fresh key may send at once."""
        return self.burst if self.burst is not None else max(1, math.ceil(self.limit))


class Decision(NamedTuple):
    """A backend's answer: allowed or not, requests left, seconds to full, seconds to wait."""

    allowed: bool
    remaining: int
    reset: float
    retry_after: float


class RateLimitBackend(Protocol):
    """Where the per-key state lives: `await backend.hit(key, rate)` counts one request."""

    async def hit(self, key: str, rate: Rate) -> Decision: ...


class MemoryBackend:
    """The per-process backend: a dict of TATs (one per key and limit).

    Per worker: with N workers, a client may get up to N times the limit. Keys
    whose bucket is full again are dropped once the dict holds `max_keys`.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._tats: dict[str, float] = {}

    def hit_now(self, key: str, rate: Rate, now: float) -> Decision:
        """The GCRA step at time `now` (monotonic seconds)."""
        interval = rate.interval
        tau = interval * rate.capacity
        tats = self._tats
        tat = tats.get(key, now)
        if tat < now:
            tat = now
        new_tat = tat + interval
        ahead = new_tat - now
        if ahead > tau + 1e-9:  # float noise must not cost a request
            return Decision(False, 0, tat - now, ahead - tau)
        if len(tats) >= self.max_keys and key not in tats:
            self._sweep(now)
        tats[key] = new_tat
        return Decision(True, int((tau - ahead) / interval + 1e-9), ahead, 0.0)

    async def hit(self, key: str, rate: Rate) -> Decision:
        """Count one request for `key` under `rate`."""
        return self.hit_now(key, rate, time.monotonic())

    def _sweep(self, now: float) -> None:
        full = [key for key, tat in self._tats.items() if tat <= now]
        for key in full:
            del self._tats[key]
        if len(self._tats) >= self.max_keys:  # still full: forget the oldest half
            for key in list(self._tats)[: self.max_keys // 2]:
                del self._tats[key]


# -- what a request is counted as ----------------------------------------------


def client_address(request: Request) -> str | None:
    """Key by the client's address (behind proxies, use `TrustedProxies` first)."""
    client = request.client
    return client[0] if client is not None else None


def api_key_id(keys: APIKeys) -> KeyFunc:
    """Key by the id of the request's API key (client address when it has none)."""

    def key(request: Request) -> str | None:
        try:
            return "key:" + keys.authenticate(request).id
        except Exception:
            return None

    return key


def jwt_subject(bearer: JWTBearer[Any]) -> KeyFunc:
    """Key by the `sub` of the request's verified token (client address when it has none).

    The token is verified here (and the result kept for the handler), so an
    invalid token counts against the address, never against a subject.
    """

    async def key(request: Request) -> str | None:
        try:
            await bearer.authenticate(request)
        except Exception:
            return None
        sub = bearer.payload(request).get("sub")
        return "sub:" + sub if isinstance(sub, str) else None

    return key


# -- the middleware -------------------------------------------------------------


class _Policy:
    __slots__ = ("rate", "prefix", "policy", "name")

    def __init__(self, rate: Rate, prefix: str, name: str) -> None:
        self.rate = rate
        self.prefix = prefix
        self.name = name
        window = math.ceil(rate.capacity * rate.interval)
        self.policy = f'"{name}";q={rate.capacity};w={window}'


class RateLimit:
    """Limits the rate of requests, per app (`rate`) and per route (`rate_limit=` option).

    `key` says what is counted: `client_address` (the default), `api_key_id(keys)`,
    `jwt_subject(bearer)`, or any function of the request (sync or async)
    returning a string; None falls back to the client address. `backend` is a
    `MemoryBackend` (default) or a `RedisBackend`. `install(app)` adds the
    middleware and opens the backend with the app.
    """

    def __init__(
        self,
        rate: Rate | None = None,
        *,
        key: KeyFunc = client_address,
        backend: RateLimitBackend | None = None,
        name: str = "default",
    ) -> None:
        self.rate = rate
        self.key = key
        self.backend: RateLimitBackend = backend if backend is not None else MemoryBackend()
        self.name = name
        self._key_is_async = inspect.iscoroutinefunction(key)
        self._memory = self.backend if isinstance(self.backend, MemoryBackend) else None
        self._app: App | None = None
        self._default = _Policy(rate, f"{name}:", name) if rate is not None else None
        self._routes: dict[int, _Policy | None] | None = None

    def install(self, app: App) -> RateLimit:
        """Add the middleware to `app`; a backend with a lifespan opens and closes with it."""
        self._app = app
        app.add_middleware(self)
        if hasattr(self.backend, "__aenter__"):
            app.use(self.backend)  # type: ignore[type-var]
        return self

    def _route_policies(self) -> dict[int, _Policy | None]:
        routes: dict[int, _Policy | None] = {}
        if self._app is not None:
            for endpoint in self._app.endpoints:
                if "rate_limit" in endpoint.options:
                    rate = endpoint.options["rate_limit"]
                    if rate is not None and not isinstance(rate, Rate):
                        raise ConfigurationError(
                            f"rate_limit= of {endpoint.template} must be a Rate or None"
                        )
                    routes[id(endpoint)] = (
                        None if rate is None
                        else _Policy(rate, f"{self.name}:{endpoint.template}:", self.name)
                    )
        return routes

    def _policy_for(self, request: Request) -> _Policy | None:
        routes = self._routes
        if routes is None:
            routes = self._routes = self._route_policies()
        if routes:
            assert self._app is not None
            try:
                endpoint, _ = self._app.router.match(request.method, request.path)
            except (NotFound, MethodNotAllowed):
                return self._default
            if endpoint is not None and id(endpoint) in routes:
                return routes[id(endpoint)]
        return self._default

    def __call__(self, call_next: Handler) -> Handler:
        """Wrap `call_next` (the rest of the chain) in the limit."""

        async def limited(request: Request) -> Response:
            policy = self._policy_for(request)
            if policy is None:
                return await call_next(request)
            found = self.key(request)
            if self._key_is_async:
                found = await found  # type: ignore[misc]
            if found is None:
                found = client_address(request) or "unknown"
            key = policy.prefix + found  # type: ignore[operator]
            if self._memory is not None:
                decision = self._memory.hit_now(key, policy.rate, time.monotonic())
            else:
                decision = await self.backend.hit(key, policy.rate)
            if not decision.allowed:
                retry = max(1, math.ceil(decision.retry_after))
                return problem_response(
                    TooManyRequests(
                        f"Over the rate limit of {policy.rate.limit:g} requests per "
                        f"{policy.rate.per:g} s; retry in {retry} s.",
                        headers={
                            "retry-after": str(retry),
                            "ratelimit-policy": policy.policy,
                            "ratelimit": f'"{policy.name}";r=0;t={retry}',
                        },
                    )
                )
            response = await call_next(request)
            response.headers.append(("ratelimit-policy", policy.policy))
            reset = math.ceil(decision.reset)
            response.headers.append(
                ("ratelimit", f'"{policy.name}";r={decision.remaining};t={reset}')
            )
            return response

        return limited
