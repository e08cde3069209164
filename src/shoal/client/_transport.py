"""Transports: the one small interface between `ServiceClient` and whatever carries bytes.

`AiohttpTransport` is the real one (aiohttp's client: pooled keep-alive
connections; chosen by measurement, see docs/client.md). `AppTransport` calls
another shoal app in process through its `AsyncTestClient`, so a service's
tests can run its upstreams without sockets and still go through the same
client code: timeouts, retries, the breaker and propagation all apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shoal import App

__all__ = ["AiohttpTransport", "AppTransport", "RawResponse", "Transport", "TransportError"]


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

    aiohttp has no HTTP/2 client; between services on one network, HTTP/1.1
    keep-alive connections from a pool do the same job (see docs/client.md).
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
