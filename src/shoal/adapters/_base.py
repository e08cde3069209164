"""What every adapter shares: its app, the app's entry handler fetched once, and
the rule for a request body nobody read."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from ..requests import discard
from ..responses import Response, StreamingResponse

if TYPE_CHECKING:
    from ..app import App, Handler


async def drop_unread_body(
    response: Response, unread: bool, chunks: Callable[[], AsyncIterator[bytes]]
) -> None:
    """Before a complete response is written, drop what is left of an unread body.

    A request answered without reading its body (a 404, a 413, a handler
    that ignores it) still has the body on the wire: closing the connection
    while the client sends can make its kernel discard the answer. A
    streamed response skips this: it may be read while the client sends.
    `unread` is the adapter's word that body bytes may remain; `chunks()`
    iterates them.
    """
    if unread and not isinstance(response, StreamingResponse):
        await discard(chunks())


class Adapter:
    """Base of the protocol adapters: `_handle` is the app's composed entry handler."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._handle: Handler | None = None

    def _compose(self) -> Handler:
        # fetched on first use, not at construction: composing freezes the app
        self._handle = self.app.compose()
        return self._handle
