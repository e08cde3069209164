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
from .errors import ConfigurationError
from .requests import Request
from .responses import StreamingResponse
from .watchdog import StallReport

__all__ = ["AsyncTestClient", "BlockingError", "CookieJar", "TestClient", "TestResponse"]

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
