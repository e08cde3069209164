"""Test clients that call the app in-process: no socket, no server, plain pytest.

```python
from shoal.testing import TestClient

def test_now():
    with TestClient(app) as client:      # runs startup, then shutdown
        response = client.get("/")
    assert response.status_code == 200
```

`AsyncTestClient` is the same for `async def` tests (`async with`).

Each client keeps a cookie jar (`client.cookies`, a `CookieJar`), as a
browser would: cookies the app sets come back on later requests whose path
they match, until they expire or the app deletes them.

`client.websocket_connect(path)` opens a WebSocket to the app's handler, in
process too (`with client.websocket_connect("/ws") as socket:
socket.send_text("hi"); socket.receive_text()`).

`TestClient(app, forbid_blocking=True)` is the strict mode: a request during
which code held the event loop past the app's `stall_threshold` fails the
test with `BlockingError`, naming the handler and the line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import msgspec

from .app import App
from .background import wait as wait_for_background
from .datastructures import Headers
from .errors import ConfigurationError, WebSocketDisconnect
from .requests import Request
from .responses import StreamingResponse
from .watchdog import StallReport
from .websockets import WebSocket

__all__ = [
    "AsyncTestClient",
    "AsyncWebSocketSession",
    "BlockingError",
    "CookieJar",
    "TestClient",
    "TestResponse",
    "WebSocketSession",
]

Params = Mapping[str, Any] | Sequence[tuple[str, Any]]

_MISSING: Any = object()


class TestResponse:
    """What a test client returns: `status_code`, `headers`, `content`, `text`, `json()`."""

    __test__ = False  # not a pytest test class

    def __init__(self, status_code: int, headers: Headers, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.content.decode("utf-8")

    def json(self) -> Any:
        """The body decoded as JSON."""
        return msgspec.json.decode(self.content)

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_code}>"


def _one_chunk(body: bytes) -> Any:
    async def read() -> AsyncIterator[bytes]:
        if body:
            yield body

    return read


class BlockingError(AssertionError):
    """A request held the event loop past the threshold under `forbid_blocking=True`.

    `report` is the watchdog's `StallReport` (handler, line, stack, duration).
    """

    __test__ = False

    def __init__(self, report: StallReport) -> None:
        self.report = report
        culprit = f"handler {report.handler}" if report.handler else "code outside any handler"
        at = f" at {report.location}" if report.location else ""
        stack = "".join(report.stack) or "(the stack could not be sampled)\n"
        super().__init__(
            f"{report.method} {report.path}: {culprit}{at} blocked the event loop for "
            f"{report.duration:.3f} s (threshold {report.threshold:.3f} s). Blocking code must "
            "not run on the loop: make the handler a plain def (it then runs in the thread "
            "pool) or await shoal.run_sync(...) around the blocking call.\n"
            f"Stack sampled during the stall:\n{stack}"
        )


def _path_matches(path: str, cookie_path: str) -> bool:
    """RFC 6265 section 5.1.4: does request `path` fall under `cookie_path`?"""
    if path == cookie_path:
        return True
    if path.startswith(cookie_path):
        return cookie_path.endswith("/") or path[len(cookie_path)] == "/"
    return False


class CookieJar(Mapping[str, str]):
    """The cookies a test client keeps: read as `{name: value}`, set by the app or by hand.

    It follows `Set-Cookie` as a browser does for one host: `Path` scopes a
    cookie (default: the request path's directory), `Max-Age` and `Expires`
    end it (zero or past: deleted at once). `Domain`, `Secure` and
    `SameSite` are recorded in the header but not enforced: the test client
    talks to one app, over no network.
    """

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str], tuple[str, float | None]] = {}

    def _live(self) -> dict[tuple[str, str], str]:
        now = time.time()
        cookies = self._cookies.items()
        expired = [key for key, (_, ends) in cookies if ends is not None and ends <= now]
        for key in expired:
            del self._cookies[key]
        return {key: value for key, (value, _) in self._cookies.items()}

    def __getitem__(self, name: str) -> str:
        for (key, _), value in self._live().items():
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._live()))

    def __len__(self) -> int:
        return len(dict.fromkeys(name for name, _ in self._live()))

    def set(self, name: str, value: str, path: str = "/") -> None:
        """Put a cookie in the jar, as if the app had set it (a session cookie)."""
        self._cookies[(name, path)] = (value, None)

    def delete(self, name: str) -> None:
        """Drop every cookie called `name`, whatever its path."""
        for key in [key for key in self._cookies if key[0] == name]:
            del self._cookies[key]

    def clear(self) -> None:
        """Drop every cookie."""
        self._cookies.clear()

    def header_for(self, path: str) -> str | None:
        """The `Cookie` header a request to `path` carries (longest paths first), or None."""
        matching = sorted(
            ((cookie_path, name, value) for (name, cookie_path), value in self._live().items()
             if _path_matches(path, cookie_path)),
            key=lambda item: -len(item[0]),
        )  # fmt: skip
        return "; ".join(f"{name}={value}" for _, name, value in matching) or None

    def receive(self, set_cookie: str, request_path: str) -> None:
        """Apply one `Set-Cookie` header value received for a request to `request_path`."""
        pair, *attributes = set_cookie.split(";")
        name, eq, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name:
            return  # ignored, as browsers do
        path = request_path[: request_path.rfind("/")] or "/"
        ends: float | None = None
        max_age: float | None = None
        for attribute in attributes:
            key, _, text = attribute.strip().partition("=")
            key = key.lower()
            if key == "path" and text.startswith("/"):
                path = text
            elif key == "max-age" and text.lstrip("-").isdigit():
                max_age = float(text)
            elif key == "expires" and ends is None:
                with contextlib.suppress(TypeError, ValueError):
                    ends = parsedate_to_datetime(text).timestamp()
        if max_age is not None:  # Max-Age wins over Expires
            ends = time.time() + max_age
        if ends is not None and ends <= time.time():
            self._cookies.pop((name, path), None)
        else:
            self._cookies[(name, path)] = (value, ends)


class _InProcessSocket:
    """The test client's `shoal.websockets.Transport`: two queues, no socket."""

    def __init__(self) -> None:
        self.close_code: int | None = None
        self.to_app: asyncio.Queue[str | bytes | tuple[str, int]] = asyncio.Queue()
        self.to_client: asyncio.Queue[Any] = asyncio.Queue()

    async def accept(self, subprotocol: str | None, headers: list[tuple[str, str]]) -> None:
        self.to_client.put_nowait(("accept", subprotocol, headers))

    async def receive(self) -> str | bytes | None:
        item = await self.to_app.get()
        if isinstance(item, tuple):  # ("close", code): the client closed
            self.close_code = item[1]
            return None
        return item

    async def send_text(self, data: str) -> None:
        self.to_client.put_nowait(data)

    async def send_bytes(self, data: bytes) -> None:
        self.to_client.put_nowait(data)

    async def close(self, code: int, reason: str) -> None:
        self.to_client.put_nowait(("close", code, reason))
        self.to_app.put_nowait(("close", code))  # the client's answering close

    async def refuse(self, response: Any) -> None:
        self.to_client.put_nowait(("refuse", response.status))


class AsyncWebSocketSession:
    """A WebSocket to the app, in process: what `AsyncTestClient.websocket_connect` opens.

    `receive*()` raise `WebSocketDisconnect` (with the app's code and reason)
    once the app closed the socket; a refused handshake raises it from
    `async with`, with the HTTP status in `reason` (`"403"`).
    """

    __test__ = False

    def __init__(self, app: App, socket: WebSocket, transport: _InProcessSocket) -> None:
        self.app = app
        self.socket = socket
        self._transport = transport
        self._task: asyncio.Future[None] | None = None
        self.subprotocol: str | None = None
        """The subprotocol the app accepted."""
        self.accept_headers: list[tuple[str, str]] = []
        self.closed: tuple[int, str] | None = None
        """(code, reason) once the app closed the socket."""

    async def __aenter__(self) -> AsyncWebSocketSession:
        self._task = asyncio.ensure_future(self.app.handle_websocket(self.socket))
        first = await self._next()
        if isinstance(first, tuple) and first[0] == "accept":
            self.subprotocol, self.accept_headers = first[1], first[2]
            return self
        await self._task
        if isinstance(first, tuple) and first[0] == "refuse":
            raise WebSocketDisconnect(1008, str(first[1]))
        raise AssertionError(f"the app sent {first!r} before accepting the WebSocket")

    async def __aexit__(self, *exc_info: Any) -> None:
        if self.closed is None:
            await self.close()
        assert self._task is not None
        await self._task

    async def _next(self) -> Any:
        assert self._task is not None
        getter = asyncio.ensure_future(self._transport.to_client.get())
        await asyncio.wait([getter, self._task], return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            return ("close", 1006, "the handler ended without closing")
        return getter.result()

    async def receive(self) -> str | bytes:
        """The app's next message; `WebSocketDisconnect` once it closed the socket."""
        if self.closed is not None:
            raise WebSocketDisconnect(*self.closed)
        item = await self._next()
        if isinstance(item, tuple):
            self.closed = (item[1], item[2])
            raise WebSocketDisconnect(*self.closed)
        return item  # type: ignore[no-any-return]

    async def receive_text(self) -> str:
        """The next message, which must be text."""
        data = await self.receive()
        assert isinstance(data, str), f"expected a text message, got {data!r}"
        return data

    async def receive_bytes(self) -> bytes:
        """The next message, which must be binary."""
        data = await self.receive()
        assert isinstance(data, bytes), f"expected a binary message, got {data!r}"
        return data

    async def receive_json(self) -> Any:
        """The next message decoded as JSON."""
        return msgspec.json.decode(await self.receive())

    async def send_text(self, data: str) -> None:
        """Send a text message to the app."""
        self._transport.to_app.put_nowait(data)
        await asyncio.sleep(0)

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message to the app."""
        self._transport.to_app.put_nowait(data)
        await asyncio.sleep(0)

    async def send_json(self, data: Any) -> None:
        """Send `data` encoded as JSON, in a text message."""
        await self.send_text(msgspec.json.encode(data).decode())

    async def close(self, code: int = 1000) -> None:
        """Close the socket from the client's side; wait for the handler to end."""
        if self.closed is None:
            self.closed = (code, "")
            self._transport.to_app.put_nowait(("close", code))
        assert self._task is not None
        await self._task


class AsyncTestClient:
    """Sends requests to `app` in-process; `async with` runs its startup and shutdown.

    With `forbid_blocking=True`, a request during which the event loop was
    held past the app's `stall_threshold` raises `BlockingError`.
    """

    __test__ = False

    def __init__(
        self,
        app: App,
        *,
        client: tuple[str, int] = ("testclient", 50000),
        forbid_blocking: bool = False,
    ) -> None:
        if forbid_blocking and app.watchdog.threshold is None:
            raise ConfigurationError(
                "forbid_blocking needs the app's watchdog, and this app was made with "
                "stall_threshold=None"
            )
        self.app = app
        self.client = client
        self.forbid_blocking = forbid_blocking
        self.cookies = CookieJar()

    async def __aenter__(self) -> AsyncTestClient:
        await self.app.startup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.app.shutdown()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = _MISSING,
        content: bytes | str | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> TestResponse:
        """Send one request and return the whole response.

        The jar's cookies for `path` go in a `Cookie` header (unless `headers`
        has one), with `cookies` added for this request only; the response's
        `Set-Cookie` headers update the jar.
        """
        path, _, query = path.partition("?")
        if params:
            query = "&".join(filter(None, [query, urlencode(params, doseq=True)]))
        header_list = [(k.lower(), v) for k, v in (headers or {}).items()]
        if not any(k == "cookie" for k, _ in header_list):
            extra = "; ".join(f"{name}={value}" for name, value in (cookies or {}).items())
            cookie = "; ".join(filter(None, [extra, self.cookies.header_for(path)]))
            if cookie:
                header_list.append(("cookie", cookie))
        body = b""
        if json is not _MISSING:
            body = msgspec.json.encode(json)
            if not any(k == "content-type" for k, _ in header_list):
                header_list.append(("content-type", "application/json"))
        elif content is not None:
            body = content.encode() if isinstance(content, str) else content
        if body and not any(k == "content-length" for k, _ in header_list):
            header_list.append(("content-length", str(len(body))))
        request = Request(
            method.upper(), path, query, header_list, _one_chunk(body), self.client, self.app
        )
        watchdog = self.app.watchdog
        if self.forbid_blocking and not watchdog.running:
            raise RuntimeError(
                "forbid_blocking works once the app has started: use the client as "
                "`with TestClient(app, forbid_blocking=True) as client:`"
            )
        stalls: list[StallReport] = []
        watchdog.reset()  # the loop may have been stopped since the last call
        if self.forbid_blocking:
            watchdog.listeners.append(stalls.append)
        try:
            response = await self.app.handle(request)
            data = response.body
            if isinstance(response, StreamingResponse):
                # a stream whose iterator fails raises here: a server would abort
                # the connection, and a short body must not pass as whole
                chunks: list[bytes] = []

                async def collect(chunk: bytes) -> None:
                    chunks.append(chunk)

                await response.send_to(collect)
                data = b"".join(chunks)
            await wait_for_background(self.app)  # the request's background tasks, done
            watchdog.check()  # report a stall now, before the loop stops
        finally:
            if self.forbid_blocking:
                watchdog.listeners.remove(stalls.append)
        if stalls:
            raise BlockingError(stalls[0])
        for name, value in response.headers:
            if name == "set-cookie":
                self.cookies.receive(value, path)
        return TestResponse(response.status, Headers(response.headers), data)

    def websocket_connect(
        self,
        path: str,
        *,
        subprotocols: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> AsyncWebSocketSession:
        """A WebSocket to the app's handler of `path`: `async with client.websocket_connect(...)`.

        The jar's cookies for `path` go along, as with `request`.
        """
        path, _, query = path.partition("?")
        header_list = [(k.lower(), v) for k, v in (headers or {}).items()]
        if subprotocols:
            header_list.append(("sec-websocket-protocol", ", ".join(subprotocols)))
        cookie = self.cookies.header_for(path)
        if cookie and not any(k == "cookie" for k, _ in header_list):
            header_list.append(("cookie", cookie))
        transport = _InProcessSocket()
        socket = WebSocket(transport, "GET", path, query, header_list, None, self.client, self.app)
        return AsyncWebSocketSession(self.app, socket, transport)

    async def get(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("GET", path, **kwargs)

    async def head(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("HEAD", path, **kwargs)

    async def options(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("OPTIONS", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("DELETE", path, **kwargs)


class TestClient:
    """The synchronous test client: runs the app on its own event loop.

    Use it in plain `def` tests; inside `async def` tests use `AsyncTestClient`.
    """

    __test__ = False

    def __init__(self, app: App, **kwargs: Any) -> None:
        self.app = app
        self._client = AsyncTestClient(app, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def cookies(self) -> CookieJar:
        """The client's cookie jar (see `CookieJar`)."""
        return self._client.cookies

    def _run(self, coro: Any) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def __enter__(self) -> TestClient:
        try:
            self._run(self.app.startup())
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._run(self.app.shutdown())
        finally:
            self.close()

    def close(self) -> None:
        """Close the client's event loop."""
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def request(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        """Send one request and return the whole response (see `AsyncTestClient.request`)."""
        response: TestResponse = self._run(self._client.request(method, path, **kwargs))
        return response

    def websocket_connect(
        self,
        path: str,
        *,
        subprotocols: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> WebSocketSession:
        """A WebSocket to the app: `with client.websocket_connect("/ws") as socket:`."""
        self._run(asyncio.sleep(0))  # the loop exists before the session's queues do
        session = self._client.websocket_connect(path, subprotocols=subprotocols, headers=headers)
        return WebSocketSession(self, session)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("HEAD", path, **kwargs)

    def options(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("OPTIONS", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", path, **kwargs)


class WebSocketSession:
    """The synchronous face of `AsyncWebSocketSession`, for `TestClient.websocket_connect`."""

    __test__ = False

    def __init__(self, client: TestClient, session: AsyncWebSocketSession) -> None:
        self._client = client
        self._session = session

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the app accepted."""
        return self._session.subprotocol

    def __enter__(self) -> WebSocketSession:
        self._client._run(self._session.__aenter__())
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._client._run(self._session.__aexit__(*exc_info))

    def send_text(self, data: str) -> None:
        """Send a text message to the app."""
        self._client._run(self._session.send_text(data))

    def send_bytes(self, data: bytes) -> None:
        """Send a binary message to the app."""
        self._client._run(self._session.send_bytes(data))

    def send_json(self, data: Any) -> None:
        """Send `data` as JSON, in a text message."""
        self._client._run(self._session.send_json(data))

    def receive(self) -> str | bytes:
        """The app's next message (`WebSocketDisconnect` once it closed the socket)."""
        data: str | bytes = self._client._run(self._session.receive())
        return data

    def receive_text(self) -> str:
        """The next message, which must be text."""
        data: str = self._client._run(self._session.receive_text())
        return data

    def receive_bytes(self) -> bytes:
        """The next message, which must be binary."""
        data: bytes = self._client._run(self._session.receive_bytes())
        return data

    def receive_json(self) -> Any:
        """The next message decoded as JSON."""
        return self._client._run(self._session.receive_json())

    def close(self, code: int = 1000) -> None:
        """Close the socket from the client's side; wait for the handler to end."""
        self._client._run(self._session.close(code))
