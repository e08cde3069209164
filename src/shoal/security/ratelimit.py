"""Rate limiting: GCRA (a token bucket without a timer), per app or per route.

```python
limiter = RateLimit(Rate(100, per=1.0, burst=20), key=jwt_subject(auth))
limiter.install(app)                       # the whole app: 100/s per user, bursts of 20

@app.post("/runs", rate_limit=Rate(5, per=60))   # this route: its own, stricter limit
async def create_run(...): ...

@app.get("/status", rate_limit=None)       # this route: no limit at all
async def status(): ...
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


def _whole_seconds(seconds: float) -> int:
    """`seconds` rounded up, after dropping float noise (`now + 30 - now` is not always 30).

    The noise is dropped by subtracting a microsecond: `round(seconds, 6)`
    did the same at ten times the cost.
    """
    return math.ceil(seconds - 1e-6)


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
        return Decision(*self.step(key, rate.interval, rate.interval * rate.capacity, now))

    def step(
        self, key: str, interval: float, tau: float, now: float
    ) -> tuple[bool, int, float, float]:
        """`hit_now` with the rate's figures precomputed, as a plain tuple (the hot path)."""
        tats = self._tats
        tat = tats.get(key, now)
        if tat < now:
            tat = now
        new_tat = tat + interval
        ahead = new_tat - now
        if ahead > tau + 1e-9:  # float noise must not cost a request
            return False, 0, tat - now, ahead - tau
        if len(tats) >= self.max_keys and key not in tats:
            self._sweep(now)
        tats[key] = new_tat
        return True, int((tau - ahead) / interval + 1e-9), ahead, 0.0

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
    __slots__ = ("rate", "prefix", "policy", "name", "interval", "tau", "header")

    def __init__(self, rate: Rate, prefix: str, name: str) -> None:
        self.rate = rate
        self.prefix = prefix
        self.name = name
        self.interval = rate.interval
        self.tau = rate.interval * rate.capacity
        window = math.ceil(self.tau)
        self.policy = f'"{name}";q={rate.capacity};w={window}'
        self.header = ("ratelimit-policy", self.policy)

    def refuse(self, retry_after: float) -> Response:
        retry = max(1, _whole_seconds(retry_after))
        rate = self.rate
        return problem_response(
            TooManyRequests(
                f"Over the rate limit of {rate.limit:g} requests per {rate.per:g} s; "
                f"retry in {retry} s.",
                headers={
                    "retry-after": str(retry),
                    "ratelimit-policy": self.policy,
                    "ratelimit": f'"{self.name}";r=0;t={retry}',
                },
            )
        )


class RateLimit:
    """Limits the rate of requests, per app (`rate`) and per route (`rate_limit=` option).

    `key` says what is counted: `client_address` (the default), `api_key_id(keys)`,
    `jwt_subject(bearer)`, or any function of the request (sync or async)
    returning a string; None falls back to the client address. `backend` is a
    `MemoryBackend` (default) or a `RedisBackend`. `headers=False` sends the
    `RateLimit` headers on refusals only (the draft makes them optional; it
    saves a little per request). `install(app)` adds the middleware and opens
    the backend with the app.
    """

    def __init__(
        self,
        rate: Rate | None = None,
        *,
        key: KeyFunc = client_address,
        backend: RateLimitBackend | None = None,
        name: str = "default",
        headers: bool = True,
    ) -> None:
        self.rate = rate
        self.headers = headers
        self.key = key
        self.backend: RateLimitBackend = backend if backend is not None else MemoryBackend()
        self.name = name
        self._key_is_async = inspect.iscoroutinefunction(key)
        self._memory = self.backend if isinstance(self.backend, MemoryBackend) else None
        self._app: App | None = None
        self._default = _Policy(rate, f"{name}:", name) if rate is not None else None

    def install(self, app: App) -> RateLimit:
        """Add the middleware to `app`; a backend with a lifespan opens and closes with it."""
        self._app = app
        app.add_middleware(self)
        if hasattr(self.backend, "__aenter__"):
            app.use(self.backend)  # type: ignore[type-var]
        return self

    def _route_policies(self) -> dict[int, _Policy | None]:
        routes: dict[int, _Policy | None] = {}
        if self._app is not None:  # checked by __call__
            for endpoint in self._app.endpoints:
                if "rate_limit" in endpoint.options:
                    rate = endpoint.options["rate_limit"]
                    if rate is not None and not isinstance(rate, Rate):
                        raise ConfigurationError(
                            f"rate_limit= of {endpoint.template} must be a Rate or None"
                        )
                    routes[id(endpoint)] = (
                        None
                        if rate is None
                        else _Policy(rate, f"{self.name}:{endpoint.template}:", self.name)
                    )
        return routes

    def _exempt(self) -> frozenset[str]:
        # the operations routes (probes, metrics) are never limited: a kubelet
        # that gets a 429 from /livez restarts a healthy pod
        if self._app is None:
            return frozenset()
        return frozenset(e.template for e in self._app.endpoints if not e.observed)

    def _policy_for(self, request: Request, routes: dict[int, _Policy | None]) -> _Policy | None:
        assert self._app is not None
        try:
            endpoint, _ = self._app.router.match(request.method, request.path)
        except (NotFound, MethodNotAllowed):
            return self._default
        if endpoint is not None and id(endpoint) in routes:
            return routes[id(endpoint)]
        return self._default

    def __call__(self, call_next: Handler) -> Handler:
        """Wrap `call_next` (the rest of the chain) in the limit.

        Called when the app composes its middleware, once every route is
        registered: the per-route limits are collected then, and an app with
        none never routes a request twice.
        """
        if self._app is None:
            raise ConfigurationError(
                "add a RateLimit with limiter.install(app), not app.add_middleware(): it "
                "needs the app for per-route limits and to open its backend"
            )
        routes = self._route_policies()
        default = self._default
        key_of = self.key
        key_is_async = self._key_is_async
        memory = self._memory
        backend = self.backend
        send_headers = self.headers
        monotonic = time.monotonic
        if memory is not None and default is not None and not routes and not key_is_async:
            return self._fast(call_next, default, memory)

        exempt = self._exempt()

        async def limited(request: Request) -> Response:
            if request.path in exempt:  # the health and metrics probes
                return await call_next(request)
            policy = self._policy_for(request, routes) if routes else default
            if policy is None:
                return await call_next(request)
            found = key_of(request)
            if key_is_async:
                found = await found  # type: ignore[misc]
            if found is None:
                found = client_address(request) or "unknown"
            key = policy.prefix + found  # type: ignore[operator]
            if memory is not None:
                allowed, remaining, reset, retry_after = memory.step(
                    key, policy.interval, policy.tau, monotonic()
                )
            else:
                allowed, remaining, reset, retry_after = await backend.hit(key, policy.rate)
            if not allowed:
                return policy.refuse(retry_after)
            response = await call_next(request)
            if not send_headers:
                return response
            response.headers += (
                policy.header,
                ("ratelimit", f'"{policy.name}";r={remaining};t={_whole_seconds(reset)}'),
            )
            return response

        return limited

    def _fast(self, call_next: Handler, policy: _Policy, memory: MemoryBackend) -> Handler:
        """The common case (one limit, in process, a plain key function), inlined: the
        GCRA step of `MemoryBackend.step` without a call, for the hot path."""
        key_of = self.key
        monotonic = time.monotonic
        tats = memory._tats
        max_keys = memory.max_keys
        prefix, interval, tau = policy.prefix, policy.interval, policy.tau
        limit = tau + 1e-9
        header, remaining_head = policy.header, f'"{policy.name}";r='
        ceil = math.ceil
        send_headers = self.headers

        exempt = self._exempt()

        async def limited(request: Request) -> Response:
            if request.path in exempt:  # the health and metrics probes
                return await call_next(request)
            found = key_of(request)
            if found is None:
                found = client_address(request) or "unknown"
            key = prefix + found  # type: ignore[operator]
            now = monotonic()
            tat = tats.get(key, now)
            if tat < now:
                tat = now
            ahead = tat + interval - now
            if ahead > limit:
                return policy.refuse(ahead - tau)
            if len(tats) >= max_keys and key not in tats:
                memory._sweep(now)
            tats[key] = tat + interval
            response = await call_next(request)
            if not send_headers:
                return response
            remaining = int((tau - ahead) / interval + 1e-9)
            value = f"{remaining_head}{remaining};t={ceil(ahead - 1e-6)}"  # _whole_seconds
            response.headers += (header, ("ratelimit", value))
            return response

        return limited
