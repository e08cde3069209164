"""ASGI 3 adapter: serves an `App` on uvicorn, hypercorn or `granian --interface asgi`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from .._supervision import apply_limit_overrides, supervise
from ..errors import BadRequest
from ..requests import BODYLESS_METHODS, Connection, Request, uri_too_long
from ..responses import Response, StreamingResponse, problem_response
from ..websockets import Transport, WebSocket
from ._base import (
    Adapter,
    cancelled_on_disconnect,
    drop_unread_body,
    framing_error,
    head_too_large,
    unsendable,
)

if TYPE_CHECKING:
    pass

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger("shoal")


def _decode_headers(raw: list[tuple[bytes, bytes]]) -> Callable[[], list[tuple[str, str]]]:
    return lambda: [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw]


class _Body:
    """The request body's `receive` side; `done` once nothing more can come."""

    __slots__ = ("receive", "done", "finished")

    def __init__(self, receive: Receive, scope: Scope) -> None:
        self.receive = receive
        self.done = not _may_have_body(scope)
        self.finished: asyncio.Event | None = None  # set with `done`, for a watcher

    def _end(self) -> None:
        self.done = True
        if self.finished is not None:
            self.finished.set()

    async def read(self) -> AsyncIterator[bytes]:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self._end()
                raise BadRequest(detail="The client disconnected before sending the whole body.")
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                self._end()
                return


def _watch_disconnect(body: _Body) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """The ASGI side of `cancelled_on_disconnect` (writes only): once the body is
    read, `receive()` has nothing left to say but `http.disconnect`, so a
    watcher waits for the body's end, then for that."""

    def watch(gone: Callable[[], None]) -> Callable[[], None]:
        body.finished = asyncio.Event()
        if body.done:
            body.finished.set()

        async def wait() -> None:
            assert body.finished is not None
            await body.finished.wait()
            while (await body.receive())["type"] != "http.disconnect":
                pass
            gone()

        watcher = asyncio.ensure_future(wait())

        def stop() -> None:
            watcher.cancel()
            if watcher.done() and not watcher.cancelled():
                watcher.exception()  # a receive() that failed: retrieved, not lost

        return stop

    return watch


def _may_have_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
            return True
    return scope.get("http_version") == "2" and scope["method"] not in BODYLESS_METHODS


async def _wait_disconnect(receive: Receive) -> None:
    """Return when the client has gone (only once the request body is all read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class _ASGISocket:
    """The ASGI WebSocket events as a `shoal.websockets.Transport`."""

    __slots__ = ("scope", "_receive", "_send", "close_code")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.close_code: int | None = None

    async def accept(self, subprotocol: str | None, headers: list[tuple[str, str]]) -> None:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": raw})

    async def receive(self) -> str | bytes | None:
        message = await self._receive()
        if message["type"] == "websocket.receive":
            text: str | None = message.get("text")
            if text is not None:
                return text
            data: bytes = message.get("bytes") or b""
            return data
        self.close_code = message.get("code", 1005)  # websocket.disconnect
        return None

    async def send_text(self, data: str) -> None:
        await self._send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def refuse(self, response: Response) -> None:
        # a problem document goes out through the denial-response extension where the
        # server has it; a bare refusal (and any on servers without it) is a 403
        extensions = self.scope.get("extensions") or {}
        if not response.body or "websocket.http.response" not in extensions:
            await self._send({"type": "websocket.close", "code": 1008, "reason": ""})
            return
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.with_length()]
        await self._send(
            {"type": "websocket.http.response.start", "status": response.status, "headers": headers}
        )
        await self._send({"type": "websocket.http.response.body", "body": response.body})


class ASGIAdapter(Adapter):
    """The ASGI callable for one app: `http` requests and the `lifespan` protocol."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        hosts = 0
        codings: list[str] | None = None
        has_length = False
        size = 0
        for name, value in scope.get("headers", ()):
            size += len(name) + len(value) + 4
            if name == b"host":
                hosts += 1
            elif name == b"transfer-encoding":
                codings = [*(codings or []), value.decode("latin-1")]
            elif name == b"content-length":
                has_length = True
        if size > app.limits.max_header_size:  # granian checks this itself; uvicorn does not
            await self._send_complete(send, head_too_large(app.limits.max_header_size))
            return
        if hosts != 1 or codings is not None:
            version = scope.get("http_version", "1.1")
            refused = framing_error(version, hosts, codings, has_length)
            if refused is not None:  # the body's framing is not to be trusted: not read
                await self._send_complete(send, refused)
                return
        client = scope.get("client")
        body = _Body(receive, scope)
        request = Request(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            _decode_headers(scope.get("headers", [])),
            body.read,
            (client[0], client[1]) if client else None,
            app,
            Connection(scope.get("scheme", "http"), scope.get("http_version", "1.1")),
            raw_path=scope.get("raw_path"),
        )
        limit = app.limits.max_request_line
        if len(request.path) > limit or len(request.query_string) > limit:
            response = problem_response(uri_too_long(limit))
        else:
            handler = self._handle or self._compose()
            if request.method in BODYLESS_METHODS:
                response = await handler(request)
            else:
                answered = await cancelled_on_disconnect(handler, request, _watch_disconnect(body))
                if answered is None:
                    return  # the client is gone: nobody to answer
                response = answered
            if not 200 <= response.status <= 599:
                response = unsendable(request, response)
        await drop_unread_body(request, response, not body.done, body.read)
        if not isinstance(response, StreamingResponse):
            await self._send_complete(send, response)
            return
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.with_length()]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        # ASGI servers report a client that hangs up only through receive():
        # watch it (once the body is read, so no chunk is stolen) and stop
        # the stream at its next chunk, so its iterator is closed.
        gone = asyncio.ensure_future(_wait_disconnect(receive)) if body.done else None

        async def send_chunk(chunk: bytes) -> None:
            if gone is not None and gone.done():
                raise ConnectionResetError("the client disconnected")
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        try:
            # an iterator that fails midway propagates out of the app: the
            # server logs it once and aborts the connection (ASGI's only
            # way to end a started response with an error)
            await response.send_to(send_chunk)
        finally:
            if gone is not None:
                gone.cancel()
                if gone.done() and not gone.cancelled():
                    gone.exception()  # a receive() that failed: retrieved, not lost
        with contextlib.suppress(OSError):  # the client is gone; send_to logged it
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return  # the client left before the handshake
        client = scope.get("client")
        socket = WebSocket(
            _ASGISocket(scope, receive, send),
            "GET",
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            _decode_headers(scope.get("headers", [])),
            None,
            (client[0], client[1]) if client else None,
            self.app,
            Connection(scope.get("scheme", "ws"), scope.get("http_version", "1.1")),
            raw_path=scope.get("raw_path"),
        )
        await self.app.handle_websocket(socket)

    @staticmethod
    def socket_transport(scope: Scope, receive: Receive, send: Send) -> Transport:
        """The `shoal.websockets.Transport` over one ASGI WebSocket connection's events."""
        return _ASGISocket(scope, receive, send)

    @staticmethod
    async def _send_complete(send: Send, response: Response) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.with_length()]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    supervise()
                    apply_limit_overrides(self.app)
                    await self.app.startup()
                except Exception as exc:
                    logger.exception("shoal: startup failed")
                    reason = repr(exc.__cause__ or exc)
                    await send({"type": "lifespan.startup.failed", "message": reason})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.app.shutdown()
                except Exception as exc:
                    logger.exception("shoal: shutdown failed")
                    await send({"type": "lifespan.shutdown.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return
