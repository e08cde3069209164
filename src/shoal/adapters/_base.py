"""What every adapter shares: its app, the app's entry handler fetched once, the
rule for a request body nobody read, the rule for a client that hangs up, and
the last check before a response is written."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from ..errors import HTTPError
from ..logs import escape
from ..requests import Request, discard
from ..responses import Response, StreamingResponse, problem_response

if TYPE_CHECKING:
    from ..app import App, Handler

logger = logging.getLogger("shoal")

CLOSE = ("connection", "close")
"""The response header that makes the server close the connection after it."""


async def cancelled_on_disconnect(
    handler: Handler,
    request: Request,
    watch: Callable[[Callable[[], None]], Callable[[], None]],
) -> Response | None:
    """`handler(request)`, cancelled if the client disconnects first (then None).

    For the methods that change things: a client that hangs up mid-request
    cancels the handler, so its transaction rolls back instead of finishing
    for nobody (and the cancellation runs the handler's `finally` blocks:
    nothing is half done). `watch(gone)` is the adapter's way to learn of the
    disconnect: it calls `gone()` when the client has left and returns the
    function that stops watching.
    """
    task = asyncio.current_task()
    state = {"answered": False, "gone": False}

    def gone() -> None:
        if not state["answered"] and task is not None:
            state["gone"] = True
            task.cancel()

    stop = watch(gone)
    try:
        return await handler(request)
    except asyncio.CancelledError:
        if not state["gone"] or task is None:
            raise
        task.uncancel()
        logger.info(
            "the client of %s %s disconnected; its handler was cancelled",
            escape(request.method),
            escape(request.path),
        )
        return None
    finally:
        state["answered"] = True
        stop()


async def drop_unread_body(
    request: Request,
    response: Response,
    unread: bool,
    chunks: Callable[[], AsyncIterator[bytes]],
) -> None:
    """Before a complete response is written, drop what is left of an unread body.

    A request answered without reading its body (a 404, a 413, a handler
    that ignores it) still has the body on the wire: closing the connection
    while the client sends can make its kernel discard the answer. A
    streamed response skips this: it may be read while the client sends.
    `unread` is the adapter's word that body bytes may remain; `chunks()`
    iterates them. When the rest of the body does not come (too big, too
    slow), the response closes the connection: the next request could not
    be told apart from the body's remains. A body refused for its size (413)
    or one its client waits to be asked for (`Expect: 100-continue`) is not
    read at all: the connection closes after the answer, and the client is
    never told to send what would be thrown away.
    """
    if not unread or isinstance(response, StreamingResponse):
        return
    expect = request.headers.get("expect", "").lower()
    unwanted = response.status == 413 or expect == "100-continue"
    if unwanted or not await discard(chunks()):
        response.headers = [*response.headers, CLOSE]


def unsendable(request: Request, response: Response) -> Response:
    """The 500 that replaces a response whose status no server can write.

    `Response` refuses such a status when built; one set afterwards (or
    through `Response.from_parts`) would stop granian's process, so the
    adapters check `200 <= status <= 599` and call this when it fails.
    """
    logger.error(
        "a response to %s %s has the status %s, which HTTP cannot carry; answered 500",
        escape(request.method),
        escape(request.path),
        escape(repr(response.status)),
    )
    return problem_response(HTTPError(500, "The server hit an internal error; it has been logged."))


def framing_error(
    http_version: str, hosts: int, codings: list[str] | None, has_length: bool
) -> Response | None:
    """The answer to a request whose head breaks HTTP/1.1's framing rules, or None.

    Checked by the adapters on every request, beyond what the servers check
    (granian and uvicorn accept all of these): HTTP/1.1 needs exactly one
    `Host` (RFC 9112 §3.2); the only transfer coding shoal reads is a single
    `chunked` (§6.1: an unknown coding is a 501, a repeated one or any on
    HTTP/1.0 is faulty framing, and so is a `Content-Length` beside it: the
    request-smuggling pair, which a proxy in front may read the other way).
    Each answer closes the connection: after a framing error the next
    request cannot be found. `codings` is the list of `Transfer-Encoding`
    values, or None when there is none (the common case, kept cheap);
    `has_length` says whether a `Content-Length` came too.
    """
    if hosts != 1 and http_version == "1.1":
        detail = "An HTTP/1.1 request must carry exactly one Host header."
        return _closing(HTTPError(400, f"{detail} It had {hosts}."))
    if codings is None:
        return None
    names = [name.strip().lower() for value in codings for name in value.split(",")]
    if http_version == "1.0":
        return _closing(HTTPError(400, "Transfer-Encoding is not allowed in HTTP/1.0."))
    if has_length:
        return _closing(HTTPError(400, "Content-Length and Transfer-Encoding together."))
    if names == ["chunked"]:
        return None
    unknown = [name for name in names if name != "chunked"]
    if unknown:
        coding = escape(unknown[0])
        return _closing(HTTPError(501, f"Transfer-Encoding {coding!r} is not supported."))
    return _closing(HTTPError(400, "Transfer-Encoding must be a single 'chunked'."))


def head_too_large(limit: int) -> Response:
    """The 431 for a header section over `max_header_size`; it closes the connection."""
    detail = f"The request's headers are over this service's limit of {limit} bytes."
    return _closing(HTTPError(431, detail))


def _closing(error: HTTPError) -> Response:
    error.headers["connection"] = "close"
    return problem_response(error)


class Adapter:
    """Base of the protocol adapters: `_handle` is the app's composed entry handler."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._handle: Handler | None = None

    def _compose(self) -> Handler:
        # fetched on first use, not at construction: composing freezes the app
        self._handle = self.app.compose()
        return self._handle
