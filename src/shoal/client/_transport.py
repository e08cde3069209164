"""Transports: the one small interface between `ServiceClient` and whatever carries bytes.

`HttpTransport` is the default: HTTP/1.1 keep-alive connections on asyncio's
protocols, each answer parsed by httptools (the C parser uvicorn uses); it
does only what a client of a JSON service needs, and costs about a third of
aiohttp's CPU per call (chosen by measurement against aiohttp, httpx,
niquests, pyreqwest and rnet: docs/benchmarks.md). `AiohttpTransport` puts the
client on aiohttp's instead (the `aiohttp` extra). `AppTransport` calls
another shoal app in process through its `AsyncTestClient`, so a service's
tests can run its upstreams without sockets and still go through the same
client code: timeouts, retries, the breaker and propagation all apply.
"""

from __future__ import annotations

import asyncio
import re
import ssl as ssl_module
from collections import deque
from collections.abc import Mapping
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from shoal import App

__all__ = [
    "AiohttpTransport",
    "AppTransport",
    "Headers",
    "HttpTransport",
    "RawResponse",
    "Transport",
    "TransportError",
]


class TransportError(Exception):
    """The transport got no answer: no connection, or the connection was lost.

    `sent` is False when the request surely never reached the upstream
    (the connection was refused). The client translates it to
    `UpstreamUnavailable`; callers never see it.
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class RawResponse:
    """What a transport returns: status, headers (case-insensitive mapping), body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Transport(Protocol):
    """Carries one request to `base_url + target` and returns the whole response.

    `target` is the path with its query string. Raises `TransportError` when
    there is no answer; timeouts are the client's business (it cancels
    `send`), except `connect_timeout`, which the transport applies.
    """

    async def open(self, base_url: str) -> None:
        """Get ready to send (create pools); called when the client opens."""

    async def send(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        connect_timeout: float,
    ) -> RawResponse:
        """Send one request and read the whole response."""
        ...

    async def aclose(self) -> None:
        """Close connections; called when the client closes."""


class AiohttpTransport:
    """HTTP/1.1 over aiohttp's client, with a pool of `limit` keep-alive connections.

    The client's transport before `HttpTransport`, kept as the other choice
    (it asks for compressed answers and decompresses them; `HttpTransport`
    asks for none). It needs the `aiohttp` extra (`pip install shoal[aiohttp]`).
    """

    # Idle pooled connections are dropped after `keepalive` seconds: well below
    # granian's 30 s limit for a connection to send its next request, so the
    # client never reuses a connection the server is closing (a POST on one
    # would fail, and could not be resent).
    def __init__(self, *, limit: int = 100, keepalive: float = 15.0) -> None:
        self.limit = limit
        self.keepalive = keepalive
        self._session: Any = None  # aiohttp is imported at open(), not with shoal.client
        self._aiohttp: Any = None
        self._timeouts: dict[float, Any] = {}
        self._connect_errors: tuple[type[BaseException], ...] = ()
        self._lost: tuple[type[BaseException], ...] = ()

    async def open(self, base_url: str) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self.limit, keepalive_timeout=self.keepalive, ttl_dns_cache=60
        )
        self._session = aiohttp.ClientSession(
            base_url,
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=True,
            raise_for_status=False,
        )
        self._aiohttp = aiohttp
        self._connect_errors = (aiohttp.ClientConnectorError,)
        self._lost = (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError,
                      aiohttp.ClientPayloadError)  # fmt: skip

    def _timeout(self, connect: float) -> Any:
        # sock_connect, not connect: it bounds making a new connection only, so
        # a call on a pooled connection arms no timer (the client's own timer
        # bounds the whole call, waiting for a free connection included)
        timeout = self._timeouts.get(connect)
        if timeout is None:
            timeout = self._aiohttp.ClientTimeout(total=None, sock_connect=connect)
            self._timeouts[connect] = timeout
        return timeout

    async def send(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        connect_timeout: float,
    ) -> RawResponse:
        session = self._session
        if session is None:
            raise RuntimeError("the transport is not open: open the client (app startup) first")
        try:
            async with session.request(
                method,
                target,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=self._timeout(connect_timeout),
            ) as response:
                content = await response.read()
                return RawResponse(response.status, response.headers, content)
        except self._connect_errors as exc:
            raise TransportError(f"cannot connect: {exc}", sent=False) from exc
        except self._aiohttp.ConnectionTimeoutError as exc:
            raise TransportError(f"connecting timed out: {exc}", sent=False) from exc
        except self._lost as exc:
            raise TransportError(f"the connection was lost: {exc!r}", sent=True) from exc

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


# -- the default transport: HTTP/1.1 on asyncio protocols, httptools' parser ---------

# what may stand in a request target unquoted: visible ASCII (a space, a control
# character or a non-ASCII character is percent-encoded, so nothing can split the line)
_UNSAFE_TARGET = re.compile(r"[^\x21-\x7e]")
_TARGET_SAFE = "/?#[]@!$&'()*+,;=:-._~%"
# methods sent again once, at once, when a connection dies before any byte of the
# answer came (a keep-alive connection the server closed as it was reused)
_RESEND = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_MAX_HEADER = 65_536  # bytes in one header value of an answer
_MAX_HEADERS = 256  # headers in an answer


class Headers(dict[str, str]):
    """A response's headers: names in lower case, looked up in any case.

    A name that came several times holds its values joined with ", ".
    """

    __slots__ = ()

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        """The value of `name` (any case), or `default`."""
        return dict.get(self, name.lower(), default)


class _Lost(Exception):
    """The connection died before the whole answer came (`answered`: a byte of it came)."""

    def __init__(self, message: str, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed by httptools."""

    def __init__(self, loop: asyncio.AbstractEventLoop, parser: Any, max_size: int) -> None:
        self.loop = loop
        self.max_size = max_size
        self.size = 0  # bytes of the current answer's body so far
        self.parser = parser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[RawResponse] | None = None
        self.names: list[bytes] = []
        self.values: list[bytes] = []
        self.body: list[bytes] = []
        self.head = False  # the request was a HEAD: its answer has no body
        self.answered = False  # a byte of the current answer came
        self.complete = False  # the current answer is whole
        self.closed = False
        self.keep_alive = False  # the last answer lets the connection live on
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.complete:  # nothing asked: the server is confused
            self.close()
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # httptools.HttpParserError, or a callback's (in its context)
            reason = exc.__context__ if exc.__context__ is not None else exc
            self._fail(_Lost(f"a malformed answer: {reason}", True))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        # an answer with neither length nor chunks ends when the connection does
        if self.names and not self.complete and self._delimited_by_close():
            self.complete = True
            self._deliver()
            return
        self._fail(_Lost(f"the connection was lost: {exc!r}", self.answered))

    # httptools' callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if len(value) > _MAX_HEADER or len(self.names) >= _MAX_HEADERS:
            raise ValueError("the answer's headers are too large")
        self.names.append(name)
        self.values.append(value)

    def on_headers_complete(self) -> None:
        if self.head and self.parser.get_status_code() >= 200:
            self.complete = True
            self._deliver()
            self.close()  # the parser would wait for a body that never comes

    def on_body(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_size:
            raise ValueError(f"the answer's body is larger than {self.max_size} bytes")
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200:  # 1xx, informational: the answer follows
            self.names, self.values, self.body, self.size = [], [], [], 0
            return
        # asked here: once the parser moves past the message, it no longer knows
        self.keep_alive = self.parser.should_keep_alive()
        if not self.complete:
            self.complete = True
            self._deliver()

    # the transport's side
    def request(self, data: bytes, head: bool) -> asyncio.Future[RawResponse]:
        """Write one request; the future gets its answer."""
        self.names, self.values, self.body, self.size = [], [], [], 0
        self.head, self.answered, self.complete, self.keep_alive = head, False, False, False
        waiter = self.waiter = self.loop.create_future()
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            # closed by the server while it was handed over: as if lost at once
            waiter.set_exception(_Lost("the connection was closed", False))
        else:
            transport.write(data)
        return waiter

    def reusable(self) -> bool:
        """Can the next request use this connection?"""
        return self.complete and self.keep_alive and not self.closed

    def close(self) -> None:
        """Drop the connection (no more requests on it)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _delimited_by_close(self) -> bool:
        return not any(n.lower() in (b"content-length", b"transfer-encoding") for n in self.names)

    def _deliver(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        headers = Headers()
        if self.names:
            # decoded all at once (the parser lets no line break into a name or value)
            keys = b"\n".join(self.names).decode("latin-1").lower().split("\n")
            values = b"\n".join(self.values).decode("latin-1").split("\n")
            headers.update(zip(keys, values, strict=True))
            if len(headers) < len(keys):  # a name came twice: join its values
                headers.clear()
                for key, value in zip(keys, values, strict=True):
                    previous = dict.get(headers, key)
                    headers[key] = value if previous is None else f"{previous}, {value}"
        body = self.body
        content = body[0] if len(body) == 1 else b"".join(body)
        waiter.set_result(RawResponse(self.parser.get_status_code(), headers, content))

    def _fail(self, error: BaseException) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


class HttpTransport:
    """HTTP/1.1 with a pool of at most `limit` keep-alive connections (the default transport).

    Written on asyncio's protocols with httptools' response parser (the C
    parser uvicorn uses): it does what a client of a JSON service needs and
    nothing else, for about a third of aiohttp's CPU per call (measured: see
    docs/benchmarks.md). `https://` base URLs get TLS with the system's
    certificates (`ssl` may give another `SSLContext`). Responses are taken
    whole into memory, up to `max_size` bytes of body (64 MiB; more, or more
    than 256 headers or a 64 KiB header value, is a lost connection: the
    upstream is broken); an informational 1xx answer is skipped; no
    redirects are followed, no cookies kept, nothing
    decompressed (no `Accept-Encoding` is sent). Idle connections are closed
    after `keepalive` seconds, well before granian closes them (30 s), so the
    pool rarely reuses one the server is closing; when it does, and no byte
    of the answer came, a GET, HEAD, OPTIONS, PUT or DELETE is sent again at
    once on a new connection (a POST never is).
    """

    def __init__(
        self,
        *,
        limit: int = 100,
        keepalive: float = 15.0,
        ssl: ssl_module.SSLContext | None = None,
        max_size: int = 64 * 1024 * 1024,
    ) -> None:
        if limit < 1:
            raise ValueError("HttpTransport(limit=...) must be at least 1")
        self.limit = limit
        self.max_size = max_size
        self.keepalive = keepalive
        self.ssl = ssl
        self._idle: list[_Connection] = []  # newest last: reused first, while warm
        self._count = 0  # connections open or opening
        self._waiting: deque[asyncio.Future[_Connection | None]] = deque()
        self._parser: Any = None
        self._address: tuple[str, int] = ("", 0)
        self._authority = ""
        self._prefix = ""
        self._tls: ssl_module.SSLContext | None = None
        self._open = False

    async def open(self, base_url: str) -> None:
        import httptools  # imported when a client opens, not with shoal.client

        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {base_url!r}")
        tls = parts.scheme == "https"
        self._address = (parts.hostname, parts.port or (443 if tls else 80))
        self._authority = parts.netloc.rpartition("@")[2]
        self._prefix = parts.path.rstrip("/")
        self._tls = (self.ssl or ssl_module.create_default_context()) if tls else None
        self._parser = httptools.HttpResponseParser
        self._open = True

    async def send(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        connect_timeout: float,
    ) -> RawResponse:
        if not self._open:
            raise RuntimeError("the transport is not open: open the client (app startup) first")
        if _UNSAFE_TARGET.search(target):
            target = quote(target, safe=_TARGET_SAFE)
        lines = [f"{method} {self._prefix}{target} HTTP/1.1\r\nhost: {self._authority}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers]
        if body or method in _WITH_BODY:
            lines.append(f"content-length: {len(body)}\r\n")
        lines.append("\r\n")
        head = "".join(lines)
        # a header name or value with a line break in it would smuggle in another header
        if head.count("\n") != len(lines) + 1 or head.count("\r") != len(lines) + 1:
            raise ValueError("a header name or value holds a line break")
        data = head.encode("latin-1") + body if body else head.encode("latin-1")
        is_head = method == "HEAD"
        for resend in (method in _RESEND, False):
            connection = await self._acquire(connect_timeout)
            try:
                answer = await connection.request(data, is_head)
            except _Lost as exc:
                if resend and not exc.answered:
                    continue
                raise TransportError(str(exc), sent=True) from None
            finally:
                self._release(connection)
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    async def _acquire(self, connect_timeout: float) -> _Connection:
        idle = self._idle
        while idle:
            connection = idle.pop()
            if not connection.closed:
                if monotonic() - connection.idle_since < self.keepalive:
                    return connection
                connection.close()
            self._count -= 1
        if self._count >= self.limit:  # wait for a connection, or for room to make one
            waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                handed_over = waiter.done() and not waiter.cancelled()
                if handed_over and waiter.exception() is None:  # handed over as we were cancelled
                    found = waiter.result()
                    if found is None:
                        self._count -= 1
                        self._wake()
                    else:
                        self._release(found)
                raise
            if handed is not None:
                return handed
        else:
            self._count += 1
        # room for one more connection (counted already)
        loop = asyncio.get_running_loop()
        parser = self._parser
        try:
            async with asyncio.timeout(connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, parser, self.max_size), *self._address, ssl=self._tls
                )
        except BaseException as exc:
            self._count -= 1
            self._wake()
            if isinstance(exc, TimeoutError):
                raise TransportError(f"connecting timed out after {connect_timeout} s",
                                     sent=False) from exc  # fmt: skip
            if isinstance(exc, OSError):
                raise TransportError(f"cannot connect: {exc}", sent=False) from exc
            raise
        return connection

    def _release(self, connection: _Connection) -> None:
        """A request is over (answered or not): keep the connection for the next, or drop it."""
        connection.waiter = None
        if not (self._open and connection.reusable()):
            connection.close()
            self._count -= 1
            self._wake()
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        connection.idle_since = monotonic()
        self._idle.append(connection)

    def _wake(self) -> None:
        """Room for a new connection: let the first waiter make it."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._count += 1  # the slot is the waiter's now
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._open = False
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        self._count -= len(idle)
        while self._waiting:  # calls waiting for a connection: none will come
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(TransportError("the client closed", sent=False))


class AppTransport:
    """Sends the client's requests to a shoal `app` in process (a test double, not a mock).

    ```python
    with gateway.users.using(AppTransport(users.app)):
        with TestClient(gateway.app) as client:
            ...
    ```

    The app is started when the client opens and stopped when it closes,
    unless `manage_lifespan=False` (the test starts it itself).
    """

    def __init__(self, app: App, *, manage_lifespan: bool = True) -> None:
        from shoal.testing import AsyncTestClient

        self.app = app
        self.manage_lifespan = manage_lifespan
        self._client = AsyncTestClient(app, client=("127.0.0.1", 50001))
        self.requests = 0  # requests sent, for tests that count them

    async def open(self, base_url: str) -> None:
        if self.manage_lifespan:
            await self.app.startup()

    async def send(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        connect_timeout: float,
    ) -> RawResponse:
        self.requests += 1
        response = await self._client.request(
            method, target, headers=dict(headers), content=body or None
        )
        return RawResponse(response.status_code, response.headers, response.content)

    async def aclose(self) -> None:
        if self.manage_lifespan:
            await self.app.shutdown()
