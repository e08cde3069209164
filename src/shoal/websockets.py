"""WebSockets: the transport-free `WebSocket` a handler talks through.

```python
@app.websocket("/ws/{room}")
async def chat(socket: WebSocket, room: str, user: User) -> None:
    await socket.accept()
    async for message in socket:          # ends when the client closes
        await socket.send_text(f"{room}: {message}")
```

A `WebSocket` is the handshake's `Request` (path, typed path parameters,
query, headers, cookies, request id: everything a `Request` has), so path
parameters, `Header()`, `Cookie()`, query parameters, providers and
`Depends` are resolved for a WebSocket handler by the same call plan as for
an HTTP one; its messages go through a `Transport`, the small interface each
adapter implements (`adapters/rsgi.py` for granian, `adapters/asgi.py`).

Rules, decided here:

- A handshake no WebSocket route answers is refused with 403; a parameter
  that does not validate, or an `HTTPError` from a dependency before
  `accept()`, refuses it with that status. Middleware does not run for
  WebSockets (it maps a `Request` to a `Response`): dependencies do.
- `receive_text/receive_bytes/receive_json` raise `WebSocketDisconnect` once
  the socket is closed; uncaught, it ends the handler quietly.
- `receive_json(type=Msg)` decodes and validates with msgspec. A message
  that does not fit raises `InvalidMessage` (its `errors` say where); the
  socket stays open, so a handler may catch it and answer. Uncaught, the
  socket is closed with 1007 (invalid payload).
- A message longer than the route's `max_message_size` (1 MiB by default)
  closes the socket with 1009 (message too big). The server's own cap comes
  first (granian: 64 MiB, uvicorn: `--ws-max-size`, 16 MiB).
- No message sent or received for `idle_timeout` seconds (300 by default;
  None: never) closes the socket with 1001 and the reason "idle timeout".
  Pings are answered by the server (granian, uvicorn) and do not count.
- An exception in the handler is logged with the request id and closes the
  socket with 1011; the worker serves on. A handler that returns without
  closing closes with 1000.
- When the app shuts down or `shoal run` starts draining, every open socket
  is closed with 1001 (going away) and new handshakes are refused (503).

granian's RSGI interface (`shoal run`'s default) sends no close code and no
subprotocol: the client sees 1005 (no status) whatever the code, and
`accept(subprotocol=...)` is logged and ignored. Serve with `shoal run
--interface asgi` or an ASGI server where these matter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import EllipsisType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

import msgspec

from ._params import split_validation_error
from .errors import JSON_DECODE_ERRORS, HTTPError, InvalidMessage, WebSocketDisconnect
from .logs import escape, set_current_request
from .requests import Request
from .responses import Response, problem_response
from .routing import WEBSOCKET

if TYPE_CHECKING:
    from .app import App

__all__ = ["OpenSockets", "Transport", "WebSocket", "WebSocketLimits", "WebSocketState"]

logger = logging.getLogger("shoal")

T = TypeVar("T")
_M = TypeVar("_M", str, bytes)  # a message's kind

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
DEFAULT_IDLE_TIMEOUT = 300.0

_now = time.monotonic
_encode = msgspec.json.Encoder().encode
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


@dataclass(frozen=True, slots=True)
class WebSocketLimits:
    """A WebSocket route's own limits; None (size) or `...` (idle) take the app's."""

    max_message_size: int | None = None
    idle_timeout: float | EllipsisType | None = ...


class Transport(Protocol):
    """What an adapter gives a `WebSocket`: accept, receive, send, close, or refuse.

    `receive()` returns the next message (`str` or `bytes`), or None once
    the client has closed (then `close_code` holds its code, when known).
    `refuse(response)` answers the handshake with an HTTP response instead
    (before `accept` only; adapters that cannot send one send 403).
    """

    close_code: int | None

    async def accept(self, subprotocol: str | None, headers: list[tuple[str, str]]) -> None: ...

    async def receive(self) -> str | bytes | None: ...

    async def send_text(self, data: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...

    async def refuse(self, response: Response) -> None: ...


class WebSocketState:
    """Where a socket is: `CONNECTING` (handshake), `CONNECTED`, `CLOSED`."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


class WebSocket(Request):
    """One WebSocket connection: its handshake request, and the messages both ways.

    Built by the adapters; a handler receives it by declaring a parameter
    annotated `WebSocket`. See the module's rules for limits and close codes.
    """

    __slots__ = (
        "transport",
        "socket_state",
        "subprotocol",
        "close_code",
        "close_reason",
        "max_message_size",
        "idle_timeout",
        "_last",
        "_timer",
        "_open",
        "_small",
        "_receive",
        "_send_text",
        "_send_bytes",
    )

    def __init__(self, transport: Transport, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.transport = transport
        self.socket_state = WebSocketState.CONNECTING
        """Where the connection is: a `WebSocketState` value."""
        self.subprotocol: str | None = None
        """The subprotocol accepted (None: none)."""
        self.close_code: int | None = None
        """Once closed: the close code, from whichever side closed first."""
        self.close_reason = ""
        self.max_message_size = DEFAULT_MAX_MESSAGE_SIZE
        self.idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._open = False  # CONNECTED, as one flag for the per-message checks

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order."""
        return [
            name.strip()
            for value in self.headers.values_of("sec-websocket-protocol") or ()
            for name in value.split(",")
            if name.strip()
        ]

    # -- the handshake and the end ----------------------------------------------

    async def accept(
        self, subprotocol: str | None = None, headers: list[tuple[str, str]] | None = None
    ) -> None:
        """Complete the handshake, choosing `subprotocol` (one the client offered)."""
        if self.socket_state != WebSocketState.CONNECTING:
            raise RuntimeError(f"accept() on a WebSocket that is {self.socket_state}")
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(f"the client did not offer the subprotocol {subprotocol!r}")
        transport = self.transport
        try:
            await transport.accept(subprotocol, headers or [])
        except Exception as exc:  # the client left during the handshake
            self._ended(1006, "")
            raise self._disconnect() from exc
        self.subprotocol = subprotocol
        self.socket_state = WebSocketState.CONNECTED
        # looked up once: each message then costs no attribute chain
        self._receive = transport.receive
        self._send_text = transport.send_text
        self._send_bytes = transport.send_bytes
        self._small = self.max_message_size >> 2
        self._open = True
        self._last = _now()
        if self.idle_timeout is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(loop.time() + self.idle_timeout, self._check_idle)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket with `code` and `reason` (before `accept`: refuse it, 403)."""
        if self.socket_state == WebSocketState.CLOSED:
            return
        if self.socket_state == WebSocketState.CONNECTING:
            self._ended(code, reason)
            await _refuse(self.transport, Response(status=403))
            return
        self._ended(code, reason)
        if len(reason) > 30:  # a close frame carries at most 123 bytes of reason
            reason = reason.encode()[:123].decode(errors="ignore")
        try:
            await self.transport.close(code, reason)
        except Exception:  # the client is already gone: closed all the same
            logger.debug("closing a WebSocket that was already gone", exc_info=True)

    def _ended(self, code: int, reason: str) -> None:
        self.socket_state = WebSocketState.CLOSED
        self._open = False
        self.close_code = code
        self.close_reason = reason
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_idle(self) -> None:
        assert self.idle_timeout is not None
        quiet = _now() - self._last
        if self.socket_state != WebSocketState.CONNECTED:
            return
        if quiet < self.idle_timeout:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(loop.time() + self.idle_timeout - quiet, self._check_idle)
            return
        self._timer = None
        logger.info("WebSocket %s idle for %.0f s: closed", escape(self.path), quiet)
        _background(self.close(1001, "idle timeout"))

    # -- receiving ----------------------------------------------------------------

    # `receive` and `_receive_kind` (behind receive_text/receive_bytes) are each
    # one coroutine frame a message: one await of the transport, a few checks.
    # `_small` is a quarter of the size limit: a message no longer than that is
    # under the limit whatever its encoding (at most 4 UTF-8 bytes a character).

    async def receive(self) -> str | bytes:
        """The next message, text (`str`) or binary (`bytes`); `WebSocketDisconnect` once closed."""
        if not self._open:
            raise self._disconnect()
        try:
            data = await self._receive()
        except Exception:  # the transport broke: the client is gone
            data = None
        if data is None or len(data) > self._small:
            return await self._unusual(data)
        self._last = _now()
        return data

    def receive_text(self) -> Coroutine[Any, Any, str]:
        """The next message, which must be text (binary: closed with 1003)."""
        return self._receive_kind(str, "expected a text message")

    def receive_bytes(self) -> Coroutine[Any, Any, bytes]:
        """The next message, which must be binary (text: closed with 1003)."""
        return self._receive_kind(bytes, "expected a binary message")

    # (the two above hand back this coroutine rather than await it in one of
    # their own: the same single frame a message, one body for both kinds)
    async def _receive_kind(self, kind: type[_M], wrong: str) -> _M:
        if not self._open:
            raise self._disconnect()
        try:
            data = await self._receive()
        except Exception:
            data = None
        if type(data) is not kind or len(data) > self._small:
            data = await self._unusual(data)
            if type(data) is not kind:
                await self.close(1003, wrong)
                raise self._disconnect()
        self._last = _now()
        return data

    async def _unusual(self, data: str | bytes | None) -> str | bytes:
        # off the fast path: the end of the socket, or a message that may be too big
        if data is None:
            if self._open:
                self._ended(self.transport.close_code or 1005, "")
            raise self._disconnect()
        size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "replace"))
        if size > self.max_message_size:
            await self.close(1009, "message too big")
            raise self._disconnect()
        self._last = _now()
        return data

    def _disconnect(self) -> WebSocketDisconnect:
        return WebSocketDisconnect(self.close_code or 1005, self.close_reason)

    @overload
    async def receive_json(self) -> Any: ...

    @overload
    async def receive_json(self, type: type[T]) -> T: ...

    @overload
    async def receive_json(self, type: Any) -> Any: ...

    async def receive_json(self, type: Any = Any) -> Any:
        """The next message (text or binary) decoded as JSON into `type` (msgspec).

        Raises `InvalidMessage` when it is not JSON or does not fit `type`.
        """
        data = await self.receive()
        decoder = _decoders.get(type)
        if decoder is None:
            decoder = _decoders[type] = msgspec.json.Decoder(type)
        try:
            return decoder.decode(data)
        except msgspec.ValidationError as exc:
            message, loc = split_validation_error(str(exc), "message")
            raise InvalidMessage([{"loc": loc, "msg": message}]) from None
        except JSON_DECODE_ERRORS as exc:
            raise InvalidMessage([{"loc": ["message"], "msg": f"not JSON: {exc}"}]) from None

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.receive()
        except WebSocketDisconnect:
            raise StopAsyncIteration from None

    # -- sending ------------------------------------------------------------------

    async def send_text(self, data: str) -> None:
        """Send a text message."""
        if not self._open:
            raise self._not_open()
        self._last = _now()
        try:
            await self._send_text(data)
        except Exception as exc:
            raise self._lost() from exc

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        if not self._open:
            raise self._not_open()
        self._last = _now()
        try:
            await self._send_bytes(data)
        except Exception as exc:
            raise self._lost() from exc

    async def send_json(self, data: Any, *, binary: bool = False) -> None:
        """Send `data` (anything msgspec encodes: dicts, Structs...) as JSON, text by default."""
        encoded = _encode(data)
        if binary:
            await self.send_bytes(encoded)
        else:
            await self.send_text(encoded.decode())

    def _not_open(self) -> Exception:
        if self.socket_state == WebSocketState.CONNECTING:
            return RuntimeError("send on a WebSocket before accept()")
        return self._disconnect()

    def _lost(self) -> WebSocketDisconnect:
        if self._open:
            self._ended(self.transport.close_code or 1006, "")
        return self._disconnect()


async def _refuse(transport: Transport, response: Response) -> None:
    try:
        await transport.refuse(response)
    except Exception:  # the client left before the answer: nobody to tell
        logger.debug("refusing a WebSocket handshake whose client was gone", exc_info=True)


def _background(awaitable: Awaitable[None]) -> None:
    task = asyncio.ensure_future(awaitable)
    _pending.add(task)
    task.add_done_callback(_pending.discard)


_pending: set[asyncio.Future[None]] = set()


class OpenSockets:
    """The app's open WebSockets, closed with 1001 at shutdown or when a drain starts.

    While at least one socket is open, a task looks every half second for
    the drain that `shoal run` announces to its workers; with none open,
    nothing runs. At shutdown, the handlers get up to `GRACE` seconds to
    end (their `finally` blocks may still need the app's resources).
    """

    POLL = 0.5
    GRACE = 1.0

    def __init__(self, is_draining: Callable[[], bool]) -> None:
        self._open: dict[WebSocket, asyncio.Task[Any] | None] = {}
        self._is_draining = is_draining
        self._watcher: asyncio.Task[None] | None = None
        self.closing = False

    def __len__(self) -> int:
        return len(self._open)

    def add(self, socket: WebSocket) -> None:
        """Track `socket` (served by the current task) until `discard`."""
        self._open[socket] = asyncio.current_task()
        if self._watcher is None:
            self._watcher = asyncio.ensure_future(self._watch())

    def discard(self, socket: WebSocket) -> None:
        """Stop tracking `socket`."""
        self._open.pop(socket, None)
        if not self._open and self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    def refusing(self) -> bool:
        """Whether new handshakes are refused: shutting down or draining."""
        return self.closing or self._is_draining()

    async def _watch(self) -> None:
        while not self._is_draining():
            await asyncio.sleep(self.POLL)
        self._watcher = None  # from here it runs to its end: `discard` must not cancel it
        logger.info("draining: closing %d WebSocket(s) with 1001", len(self._open))
        await self._close_all()

    async def aclose(self) -> None:
        """Close every open socket with 1001 (going away); refuse new ones from now on."""
        self.closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        await self._close_all()
        current = asyncio.current_task()
        handlers = [t for t in self._open.values() if t is not None and t is not current]
        if handlers:
            await asyncio.wait(handlers, timeout=self.GRACE)

    async def _close_all(self) -> None:
        sockets = list(self._open)
        if sockets:
            await asyncio.gather(
                *(s.close(1001, "server shutting down") for s in sockets), return_exceptions=True
            )

    def reopen(self) -> None:
        """Accept handshakes again (the app started again)."""
        self.closing = False


async def serve(app: App, socket: WebSocket, sockets: OpenSockets) -> None:
    """Route `socket` to its handler and run it to the end (called by the adapters via the app).

    Never raises: a handshake no route answers is refused (403); an error
    becomes its close code (module rules), logged with the request id.
    """
    try:
        endpoint, params = app.router.match(WEBSOCKET, socket.path)
    except HTTPError:  # no route, or not a WebSocket one
        endpoint = None
    if endpoint is None:
        await _refuse(socket.transport, Response(status=403))
        return
    if sockets.refusing():
        await _refuse(socket.transport, Response(status=503, headers=[("retry-after", "1")]))
        return
    socket.path_params = params
    socket.endpoint = endpoint
    limits = endpoint.websocket or WebSocketLimits()
    socket.max_message_size = limits.max_message_size or app.limits.websocket_max_message_size
    idle = limits.idle_timeout
    socket.idle_timeout = app.limits.websocket_idle_timeout if idle is ... else idle
    set_current_request(socket)  # log records made while serving it carry its id
    sockets.add(socket)
    try:
        await endpoint.plan.call(socket)
    except WebSocketDisconnect:
        pass
    except InvalidMessage as exc:
        await socket.close(1007, str(exc)[:120])
    except Exception as exc:
        await _failed(socket, exc)
    except asyncio.CancelledError:
        await socket.close(1001, "server shutting down")
        raise
    finally:
        sockets.discard(socket)
    if socket.socket_state != WebSocketState.CLOSED:
        await socket.close(1000)


async def _failed(socket: WebSocket, exc: Exception) -> None:
    if socket.socket_state == WebSocketState.CONNECTING and isinstance(exc, HTTPError):
        # before accept: a provider or a parameter refused the handshake
        logger.info("WebSocket %s refused: %s", escape(socket.path), exc.status)
        socket._ended(1008, "")
        await _refuse(socket.transport, problem_response(exc))
        return
    path = escape(socket.path)
    logger.error("unhandled error in the WebSocket handler of %s", path, exc_info=exc)
    await socket.close(1011, "internal error")
