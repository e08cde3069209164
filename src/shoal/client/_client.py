"""`ServiceClient`: calls to one upstream service, with the policies a service needs.

One client per upstream, owned by the app's lifespan and injected by type:

```python
class Users(ServiceClient):
    \"\"\"The users service.\"\"\"

users = app.use(Users(os.environ.get("USERS_URL", "http://127.0.0.1:8001")))

@app.get("/dashboard/{user_id:int}")
async def dashboard(user_id: int, users: Users) -> dict:
    user = (await users.get(f"/users/{user_id}")).json(type=User)
```

A call runs this loop (each step decided here and nowhere else):

1. Its time is the smaller of its timeout and what is left of the request's
   deadline; with less than `min_time` left, it is not started
   (`UpstreamTimeout`, reason "deadline").
2. The breaker is asked first: open, the call fails at once
   (`UpstreamUnavailable`, reason "breaker-open").
3. The attempt is sent with the request id, trace context and the time left
   (`X-Request-Timeout`); it is cancelled when the time is up.
4. No connection, a lost connection, or 502/503/504 (or 429 with
   `Retry-After`): an idempotent call is retried after a back-off (or the
   upstream's `Retry-After`) if attempts, the retry budget and the time left
   allow. Otherwise the call fails: `UpstreamUnavailable`, or `UpstreamError`
   for an error status when `raise_for_status` (the default).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import msgspec

from .._expiry import Expiry
from ..errors import ConfigurationError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from ..metrics import BUCKETS, Histogram, Sample, histogram_samples
from ..tracing import client_span
from ._context import CONTEXT, propagate
from ._policy import CLOSED, Breaker, CircuitBreaker, Retry, RetryBudget, Timeout, retry_after
from ._response import ClientResponse, decode_any
from ._transport import HttpTransport, RawResponse, Transport, TransportError

if TYPE_CHECKING:
    from shoal import App

__all__ = ["ClientResponse", "ServiceClient", "UpstreamStatistics"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})
# latency histogram bounds, seconds: the same as every shoal histogram
LATENCY_BUCKETS = BUCKETS
_FOLD_AT = 1024  # latencies kept before they are folded into the histogram

_MISSING: Any = object()
_TIMEOUT, _RETRY, _BREAKER = Timeout(), Retry(), Breaker()
_JSON_TYPE = ("content-type", "application/json")
_encode = msgspec.json.Encoder().encode
_SECONDS_TEXT: dict[int, str] = {}


def _seconds_text(ms: int) -> str:
    """`ms` milliseconds in seconds, "4.999": the `X-Request-Timeout` value.

    The texts are kept (and looked up before this is called): a client's
    calls mostly share a timeout, so the same few values come back, and
    formatting a number costs more than the rest of the call's header work.
    """
    text = f"{ms // 1000}.{ms % 1000:03d}"
    if len(_SECONDS_TEXT) < 10_000:  # the first 10 s of milliseconds: about a MiB at most
        _SECONDS_TEXT[ms] = text
    return text


@dataclass(frozen=True, slots=True)
class UpstreamStatistics:
    """`client.statistics()`: one upstream's counters since the client opened.

    `calls` made; `attempts` sent (calls + retries); `retries`;
    `retries_denied` by the retry budget; `rejected` at once by the open
    breaker; `timeouts` (attempts cut off, and calls not started for want of
    time); `errors`: calls that raised. `latency_*` describe attempts that got
    an answer: count, sum and max in seconds, and cumulative histogram counts
    per upper bound of `LATENCY_BUCKETS`. `breaker` is its state ("closed",
    "open", "half-open") and `breaker_opened` how often it opened.
    """

    name: str
    base_url: str
    calls: int
    attempts: int
    retries: int
    retries_denied: int
    rejected: int
    timeouts: int
    errors: int
    latency_count: int
    latency_sum: float
    latency_max: float
    latency_buckets: tuple[tuple[float, int], ...]
    breaker: str
    breaker_opened: int


class ServiceClient:
    """Calls to one upstream service at `base_url`, owned by the app (`app.use(...)`).

    `name` (default: the subclass's name in lower case, else the host) names
    the upstream in errors and statistics. `timeout` is the default time of
    a call (a `Timeout`, or a number for its total), `retry` and `breaker`
    the policies (`Retry(attempts=1)` turns retries off). `headers` are sent
    with every call. `required=True` marks an upstream the service cannot
    work without: `check()` probes it for readiness at `health_path`.
    `min_time` is the least time left for which a call is still started.
    `transport` defaults to `HttpTransport()` (`AiohttpTransport()` is the
    other choice); `AppTransport(app)` calls a shoal app in process.

    Declare one subclass per upstream, so handlers receive each by its type;
    two clients of the same class in one app are a `ConfigurationError`.
    """

    name: str = ""

    def __init__(
        self,
        base_url: str,
        *,
        name: str | None = None,
        timeout: Timeout | float = _TIMEOUT,
        retry: Retry = _RETRY,
        breaker: Breaker = _BREAKER,
        headers: Mapping[str, str] | None = None,
        required: bool = False,
        health_path: str = "/",
        min_time: float = 0.001,
        transport: Transport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if name is None:
            name = self.name or (
                type(self).__name__.lower()
                if type(self) is not ServiceClient
                else self.base_url.split("://", 1)[-1]
            )
        self.name = name
        self.timeout = timeout if isinstance(timeout, Timeout) else Timeout(total=timeout)
        self.retry = retry
        self.breaker_config = breaker
        self.headers = [(k.lower(), v) for k, v in (headers or {}).items()]
        self.required = required
        self.health_path = health_path
        self.min_time = min_time
        self.transport: Transport = transport if transport is not None else HttpTransport()
        self._host = urlsplit(self.base_url).hostname or self.base_url
        self._tracer: Any = None
        self._rng = random.Random()
        self._reset()

    def _reset(self) -> None:
        self.breaker = CircuitBreaker(self.breaker_config)
        self.budget = RetryBudget(self.retry.budget, self.retry.reserve)
        self._calls = self._attempts = self._retries = self._denied = 0
        self._rejected = self._timeouts = self._errors = 0
        self._credited = 0  # calls already paid into the retry budget
        # attempts' latencies, appended on each answer and folded into the
        # histogram by the thousand or when read: one append on the call's path
        self._latencies: list[float] = []
        self._latency = Histogram()
        self._latency_max = 0.0
        self._open = False
        self._expiry = Expiry()

    # -- lifespan -------------------------------------------------------------

    def __shoal_attach__(self, app: App) -> None:
        """Called by `app.use(self)`: install propagation; refuse an ambiguous twin."""
        twins = [r for r in app.resources if type(r) is type(self) and r is not self]
        if twins:
            raise ConfigurationError(
                f"the app already uses a {type(self).__name__}; handlers receive clients by "
                "type, so declare one subclass per upstream (class Users(ServiceClient): ...)"
            )
        propagate(app)
        if self.required:  # /readyz fails while a required upstream does not answer
            app.health.add(self.check, f"upstream {self.name}")

    def use_tracer(self, tracer: Any) -> None:
        """Trace each call with `tracer` (an OpenTelemetry tracer; None: stop)."""
        self._tracer = tracer

    def collect_metrics(self) -> list[Sample]:
        """This upstream's samples for `/metrics` (see `shoal.metrics`)."""
        stats = self.statistics()
        labels = (("upstream", self.name),)
        samples: list[Sample] = [
            ("shoal_client_calls_total", labels, float(stats.calls)),
            ("shoal_client_retries_total", labels, float(stats.retries)),
            ("shoal_client_errors_total", labels, float(stats.errors)),
            ("shoal_client_timeouts_total", labels, float(stats.timeouts)),
            ("shoal_client_rejected_total", labels, float(stats.rejected)),
            ("shoal_client_breaker_opened_total", labels, float(stats.breaker_opened)),
        ]
        for state in ("closed", "open", "half-open"):
            value = 1.0 if stats.breaker == state else 0.0
            samples.append(("shoal_client_breaker_state", (*labels, ("state", state)), value))
        samples += histogram_samples(
            "shoal_client_attempt_duration_seconds",
            labels,
            stats.latency_buckets,
            stats.latency_count,
            stats.latency_sum,
        )
        return samples

    async def __aenter__(self) -> ServiceClient:
        self._reset()
        self._expiry.start(asyncio.get_running_loop())
        await self.transport.open(self.base_url)
        self._open = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._open = False
        self._expiry.close()
        await self.transport.aclose()

    async def aclose(self) -> None:
        """Close the connections (what leaving `async with client:` does)."""
        await self.__aexit__(None, None, None)

    def using(self, transport: Transport) -> _Swap:
        """Use `transport` until the `with` block ends (before the app starts): for tests."""
        return _Swap(self, transport)

    # -- calls ------------------------------------------------------------------
    # (the verbs hand back request()'s coroutine rather than awaiting it in one
    # of their own: a frame less on every call)

    def get(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, ClientResponse]:
        """`GET path` (idempotent: retried). See `request` for the options."""
        # (no options, the commonest GET: a plain call, without an empty dict unpacked)
        return self.request("GET", path, **kwargs) if kwargs else self.request("GET", path)

    def post(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, ClientResponse]:
        """`POST path` (retried only with `idempotent=True`). See `request`."""
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, ClientResponse]:
        """`PUT path` (idempotent: retried). See `request`."""
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, ClientResponse]:
        """`PATCH path` (retried only with `idempotent=True`). See `request`."""
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, ClientResponse]:
        """`DELETE path` (idempotent: retried). See `request`."""
        return self.request("DELETE", path, **kwargs)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = _MISSING,
        content: bytes | None = None,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        idempotent: bool | None = None,
        raise_for_status: bool = True,
    ) -> ClientResponse:
        """Call the upstream; return its answer, or raise (see the module docs for the loop).

        `json` is encoded with msgspec (or `content` sent as is); `params`
        become the query string; `headers` are added to the client's.
        `timeout` (seconds) replaces the client's total for this call.
        `idempotent` says whether the call may be retried: by default GET,
        HEAD, PUT, DELETE and OPTIONS are, POST and PATCH are not;
        `idempotent=True` on a POST sends an `Idempotency-Key` (the same on
        every attempt) so the upstream can tell a retry from a new request.
        An error status (>= 400) raises `UpstreamError` unless
        `raise_for_status=False`; 502/503/504 left after the retries raise
        `UpstreamUnavailable`.
        """
        if not self._open:
            raise RuntimeError(
                f"client {self.name!r} is not open: register it with app.use() and start the app"
            )
        start = monotonic()
        context = CONTEXT.get()
        total = self.timeout.total if timeout is None else timeout
        end = start + total
        by_deadline = False
        send: list[tuple[str, str]] = [*self.headers]
        if context is not None:
            deadline = context.deadline
            if deadline < end:
                end, by_deadline = deadline, True
            send += context.forward
        if json is not _MISSING:
            content = _encode(json)
            send.append(_JSON_TYPE)
        if headers:  # the call's own headers win over the client's and the forwarded ones
            given = [(k.lower(), v) for k, v in headers.items()]
            names = {k for k, _ in given}
            send = [h for h in send if h[0] not in names]
            send += [h for h in given if h[0] != "x-request-timeout"]  # always the computed one
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        elif (idempotent and method not in IDEMPOTENT_METHODS) and not (
            headers and any(k.lower() == "idempotency-key" for k in headers)
        ):
            send.append(("idempotency-key", str(uuid.uuid4())))
        target = path
        if params:
            target = f"{path}?{urlencode(params, doseq=True)}"
        body = content or b""
        self._calls += 1  # paid into the retry budget when a retry asks (_withdraw)
        try:
            if self._tracer is None:
                return await self._attempts_loop(
                    method, target, send, body, end, by_deadline, idempotent, raise_for_status
                )
            url = self.base_url + target
            with client_span(self._tracer, method, url, self._host, send) as span:
                response = await self._attempts_loop(
                    method, target, send, body, end, by_deadline, idempotent, raise_for_status
                )
                span.set_attribute("http.response.status_code", response.status)
                return response
        except (UpstreamError, UpstreamUnavailable):
            self._errors += 1
            raise

    async def _attempts_loop(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        end: float,
        by_deadline: bool,
        idempotent: bool,
        raise_for_status: bool,
    ) -> ClientResponse:
        breaker = self.breaker
        retries = 0
        while True:
            now = monotonic()
            left = end - now
            if left < self.min_time:
                self._timeouts += 1
                raise self._timed_out(by_deadline, started=False)
            if breaker.state != CLOSED and not breaker.allow(now):  # (closed: allowed)
                self._rejected += 1
                raise UpstreamUnavailable(
                    self.name, "breaker-open",
                    f"The upstream service {self.name!r} is failing; calls are paused.",
                )  # fmt: skip
            self._attempts += 1
            # the call's own list (built for it by request()): the time left goes last
            # (in whole milliseconds, rounded down; the texts are kept, see _seconds_text)
            ms = int(left * 1000)
            timeout_header = ("x-request-timeout", _SECONDS_TEXT.get(ms) or _seconds_text(ms))
            if retries:
                headers[-1] = timeout_header
            else:
                headers.append(timeout_header)
            # not asyncio.timeout(): the client's one loop timer (Expiry.wait, written
            # out here: it runs on every attempt) cancels the attempt, for a fraction
            # of the cost
            expiry = self._expiry
            task = expiry.current_task()
            if task is None:
                raise RuntimeError("ServiceClient calls must run in an asyncio task")
            cancelling = task.cancelling()
            expiry.pending[task] = end  # (see Expiry: the timer is set for the earliest end)
            if end < expiry.at:
                expiry.arm(end)
            raw: RawResponse | None = None
            try:
                raw = await self.transport.send(
                    method, target, headers, body, self.timeout.connect
                )
            except asyncio.CancelledError:
                # ours only if our timer fired and no one else cancelled the task
                # too (the rule of asyncio.timeout): else the cancellation goes on
                if not expiry.discard(task) or task.uncancel() > cancelling:
                    breaker.abandon()
                    raise
                breaker.failure(monotonic())
                self._timeouts += 1
                raise self._timed_out(by_deadline, started=True) from None
            except TransportError as exc:
                breaker.failure(monotonic())
                failure: BaseException = exc
                wait = None
            finally:  # whatever happened: a task left behind would be cancelled later
                if expiry.pending.pop(task, None) is None or expiry.fired:
                    expiry.discard(task)  # fired, but the attempt went on: forget it
            if raw is not None:
                done = monotonic()
                latencies = self._latencies
                latencies.append(done - now)
                if len(latencies) >= _FOLD_AT:
                    self._fold_latencies()
                status = raw.status
                if status < 500:
                    if breaker.streak or breaker.state != CLOSED:  # else nothing changes
                        breaker.success(done)
                else:
                    breaker.failure(done)
                if status < 400:  # the usual answer, first
                    return ClientResponse(status, raw.headers, raw.body, self.name)
                if status not in RETRY_STATUSES and not (
                    status == 429 and "retry-after" in raw.headers
                ):
                    return self._answer(raw, raise_for_status)
                wait = retry_after(raw.headers.get("retry-after"))
                failure = self._answer_error(raw, raise_for_status)
            # a failure that a retry may mend
            if not idempotent or retries + 1 >= self.retry.attempts:
                return self._give_up(failure)
            if wait is None:
                wait = self.retry.delay(retries, self._rng)
            elif wait > self.retry.max_retry_after:
                return self._give_up(failure)
            if monotonic() + wait + self.min_time >= end:
                return self._give_up(failure)
            if not self._withdraw():
                self._denied += 1
                return self._give_up(failure)
            retries += 1
            self._retries += 1
            if wait > 0:
                await asyncio.sleep(wait)

    def _withdraw(self) -> bool:
        # the budget is paid for the calls made since the last retry, then asked
        self.budget.deposit(self._calls - self._credited)
        self._credited = self._calls
        return self.budget.withdraw()

    def _fold_latencies(self) -> None:
        latencies = self._latencies
        if latencies:
            self._latency.observe_all(latencies)  # sorts them: the largest is last
            self._latency_max = max(self._latency_max, latencies[-1])
            latencies.clear()

    def _answer(self, raw: RawResponse, raise_for_status: bool) -> ClientResponse:
        response = ClientResponse(raw.status, raw.headers, raw.body, self.name)
        if raw.status >= 400 and raise_for_status:
            raise self._upstream_error(response)
        return response

    def _answer_error(self, raw: RawResponse, raise_for_status: bool) -> BaseException:
        # a retryable status that may end the call: what it raises, or returns
        response = ClientResponse(raw.status, raw.headers, raw.body, self.name)
        if not raise_for_status:
            return _Return(response)
        error = UpstreamUnavailable(self.name, "status")
        error.__cause__ = self._upstream_error(response)
        return error

    def _upstream_error(self, response: ClientResponse) -> UpstreamError:
        try:
            problem = decode_any(response.content) if response.content else None
        except msgspec.DecodeError:
            problem = None
        return UpstreamError(self.name, response.status, problem, response)

    def _give_up(self, failure: BaseException) -> ClientResponse:
        if isinstance(failure, _Return):
            return failure.response
        raise self._final(failure)

    def _final(self, failure: BaseException) -> BaseException:
        if isinstance(failure, TransportError):
            error = UpstreamUnavailable(
                self.name, "connect", f"The upstream service {self.name!r} cannot be reached."
            )
            error.__cause__ = failure
            return error
        return failure

    def _timed_out(self, by_deadline: bool, *, started: bool) -> UpstreamTimeout:
        if by_deadline:
            what = "ran out of" if started else "had too little left of"
            return UpstreamTimeout(
                self.name, "deadline",
                f"The call to {self.name!r} {what} the request's time budget.",
            )  # fmt: skip
        return UpstreamTimeout(
            self.name, "timeout", f"The upstream service {self.name!r} did not answer in time."
        )

    # -- visibility -------------------------------------------------------------

    def statistics(self) -> UpstreamStatistics:
        """An immutable snapshot of this upstream's counters (for /metrics)."""
        self._fold_latencies()
        latency = self._latency
        cumulative, running = [], 0
        for bound, count in zip(LATENCY_BUCKETS, latency.buckets, strict=False):
            running += count  # (the +Inf bucket left out: past the last bound, count and sum)
            cumulative.append((bound, running))
        return UpstreamStatistics(
            name=self.name,
            base_url=self.base_url,
            calls=self._calls,
            attempts=self._attempts,
            retries=self._retries,
            retries_denied=self._denied,
            rejected=self._rejected,
            timeouts=self._timeouts,
            errors=self._errors,
            latency_count=latency.count,
            latency_sum=latency.sum,
            latency_max=self._latency_max,
            latency_buckets=tuple(cumulative),
            breaker=self.breaker.state,
            breaker_opened=self.breaker.opened,
        )

    async def check(self, timeout: float = 1.0) -> bool:
        """Readiness: does the upstream answer `GET health_path` with a status below 500?

        Bypasses retries and the breaker (a probe must see the upstream as it
        is), but an open breaker counts as not ready. For `/readyz`: only
        upstreams marked `required=True` should decide the service's readiness.
        """
        if not self._open or self.breaker.state == "open":
            return False
        try:
            async with asyncio.timeout(timeout):
                raw = await self.transport.send(
                    "GET", self.health_path, [("x-request-timeout", f"{timeout:.3f}")], b"",
                    min(timeout, self.timeout.connect),
                )  # fmt: skip
        except (TimeoutError, TransportError):
            return False
        return raw.status < 500

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.base_url}>"


class _Return(Exception):
    """Not an error: a retryable status given back as is (`raise_for_status=False`)."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response


class _Swap:
    def __init__(self, client: ServiceClient, transport: Transport) -> None:
        self.client = client
        self.previous = client.transport
        client.transport = transport

    def __enter__(self) -> Transport:
        return self.client.transport

    def __exit__(self, *exc_info: object) -> None:
        self.client.transport = self.previous


def upstreams(app: App) -> list[ServiceClient]:
    """The service clients `app` uses, in registration order (for /metrics and /readyz)."""
    return [r for r in app.resources if isinstance(r, ServiceClient)]


async def check_required(app: App, timeout: float = 1.0) -> dict[str, bool]:
    """Readiness of every upstream marked `required=True`, probed concurrently, by name."""
    required = [c for c in upstreams(app) if c.required]
    results = await asyncio.gather(*(c.check(timeout) for c in required))
    return {c.name: ok for c, ok in zip(required, results, strict=True)}
