"""Server-sent events: `EventSourceResponse` streams `ServerSentEvent`s to an `EventSource`.

```python
@app.get("/ticks")
async def ticks(last_event_id: Annotated[int | None, Header("Last-Event-ID")] = None):
    async def events():
        n = (last_event_id or 0) + 1
        while True:
            yield ServerSentEvent(Tick(n=n), event="tick", id=str(n))
            n += 1
            await asyncio.sleep(1)
    return EventSourceResponse(events())
```

- **The format** is the HTML standard's `text/event-stream`
  (https://html.spec.whatwg.org/multipage/server-sent-events.html): `data`
  that is a `str` is sent as text, one `data:` line per line; anything else
  (a Struct, a dict, a list, a number...) is encoded as JSON with msgspec.
  `event`, `id` and `retry` (milliseconds) are optional; an `id` becomes the
  `Last-Event-ID` a browser sends back when it reconnects, which the handler
  reads like any header. A line break in `event` or `id` is a `ValueError`
  (it would forge another field).
- **Items** of the iterator may be `ServerSentEvent`s or bare data (wrapped
  as `ServerSentEvent(data)`).
- **Keep-alive**: when no event came for `ping` seconds (15), a comment line
  (`: ping`) is sent, which clients ignore; it keeps proxies from closing an
  idle connection and finds a client that went away.
- **Disconnect**: when the client goes away, the next write (an event or a
  keep-alive) fails and the iterator is closed: its `finally` blocks run, so
  it may release what it holds. At most `ping` seconds pass before that.
- The response carries `Cache-Control: no-cache` and `X-Accel-Buffering: no`
  (nginx then passes each event on at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any

import msgspec

from .responses import StreamingResponse

__all__ = ["EventSourceResponse", "ServerSentEvent"]

_encode_json = msgspec.json.Encoder().encode
_LINES = re.compile(r"\r\n|\r|\n")
_PING = b": ping\n\n"


class ServerSentEvent:
    """One event: `data` (text, or anything msgspec encodes as JSON), and optional fields.

    `event` names its type (`addEventListener(event, ...)` in the browser;
    default `message`), `id` is what the client sends back as `Last-Event-ID`,
    `retry` tells the client how many milliseconds to wait before
    reconnecting, `comment` adds a comment line (ignored by clients).
    """

    __slots__ = ("data", "event", "id", "retry", "comment")

    def __init__(
        self,
        data: Any = None,
        *,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
        comment: str | None = None,
    ) -> None:
        for name, value in (("event", event), ("id", id), ("comment", comment)):
            if value is not None and _LINES.search(value):
                raise ValueError(f"a server-sent event's {name} may not contain a line break")
        if id is not None and "\0" in id:
            raise ValueError("a server-sent event's id may not contain NUL")
        if retry is not None and (not isinstance(retry, int) or retry < 0):
            raise ValueError("a server-sent event's retry is a number of milliseconds >= 0")
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry
        self.comment = comment

    def encode(self) -> bytes:
        """The event in `text/event-stream` form, ending with its blank line."""
        lines: list[str] = []
        if self.comment is not None:
            lines.append(f": {self.comment}")
        if self.event is not None:
            lines.append(f"event: {self.event}")
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        data = self.data
        if data is not None:
            text = data if isinstance(data, str) else _encode_json(data).decode()
            lines.extend(f"data: {line}" for line in _LINES.split(text))
        return ("\n".join(lines) + "\n\n").encode()

    def __repr__(self) -> str:
        return f"ServerSentEvent({self.data!r}, event={self.event!r}, id={self.id!r})"


async def _events(source: AsyncIterable[Any], ping: float | None) -> AsyncIterator[bytes]:
    """Encode `source`'s items, with a keep-alive comment after `ping` idle seconds.

    The next item is awaited in a task kept across keep-alives, so a timeout
    never cancels the source in the middle of its work.
    """
    iterator = aiter(source)
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            if ping is None:
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    return
            else:
                if pending is None:
                    pending = asyncio.ensure_future(anext(iterator))
                done, _ = await asyncio.wait((pending,), timeout=ping)
                if not done:
                    yield _PING
                    continue
                try:
                    item = pending.result()
                except StopAsyncIteration:
                    return
                finally:
                    pending = None
            event = item if isinstance(item, ServerSentEvent) else ServerSentEvent(item)
            yield event.encode()
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


class EventSourceResponse(StreamingResponse):
    """A `text/event-stream` response from an async iterable of events (see the module docs).

    `ping`: seconds without an event before a keep-alive comment (None: never).
    """

    __slots__ = ()

    def __init__(
        self,
        events: AsyncIterable[ServerSentEvent | Any],
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        *,
        ping: float | None = 15.0,
    ) -> None:
        if ping is not None and ping <= 0:
            raise ValueError("ping is a number of seconds > 0, or None")
        super().__init__(_events(events, ping), status, headers, "text/event-stream")
        names = {name for name, _ in self.headers}
        if "cache-control" not in names:
            self.headers.append(("cache-control", "no-cache"))
        if "x-accel-buffering" not in names:
            self.headers.append(("x-accel-buffering", "no"))
