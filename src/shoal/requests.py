"""The transport-free `Request` that handlers and middleware see.

Adapters build a `Request` from their protocol's scope. Everything that costs
something (headers, query string, body) is parsed only when first asked for.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from .datastructures import Headers, QueryParams, State
from .errors import BadRequest, PayloadTooLarge

if TYPE_CHECKING:
    from .app import App

__all__ = ["Request"]

HeaderLoader = Callable[[], list[tuple[str, str]]]

_json_decode = msgspec.json.Decoder().decode

# Generated request ids are a random per-process prefix and a counter: unique
# across workers and restarts in practice, and far cheaper than a uuid4.
_id_prefix = os.urandom(5).hex()
_id_counter = itertools.count(1)


def _reseed_ids() -> None:
    global _id_prefix, _id_counter
    _id_prefix = os.urandom(5).hex()
    _id_counter = itertools.count(1)


os.register_at_fork(after_in_child=_reseed_ids)  # forked workers must not repeat ids

_MAX_ID_LENGTH = 200


async def _no_body() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover - makes this an async generator


class Request:
    """One HTTP request.

    `method`, `path` (percent-decoded), `query_string`, `client` and
    `path_params` are plain attributes; `headers`, `query`, `state`,
    `await body()` and `await json()` are computed on first use.
    """

    __slots__ = (
        "method",
        "path",
        "query_string",
        "client",
        "scheme",
        "http_version",
        "path_params",
        "max_body_size",
        "app",
        "_raw_path",
        "_load_headers",
        "_headers",
        "_query",
        "_state",
        "_body",
        "_stream",
        "_consumed",
        "_id",
    )

    def __init__(
        self,
        method: str,
        path: str,
        *,
        query_string: str = "",
        headers: HeaderLoader | list[tuple[str, str]] = list,
        body: Callable[[], AsyncIterator[bytes]] | None = None,
        client: tuple[str, int] | None = None,
        scheme: str = "http",
        http_version: str = "1.1",
        raw_path: bytes | None = None,
        max_body_size: int = 1024 * 1024,
        app: App | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self.client = client
        self.scheme = scheme
        self.http_version = http_version
        self.path_params: dict[str, Any] = {}
        self.max_body_size = max_body_size
        self.app = app
        self._raw_path = raw_path
        if isinstance(headers, list):
            self._headers: Headers | None = Headers(headers)
            self._load_headers: HeaderLoader | None = None
        else:
            self._headers = None
            self._load_headers = headers
        self._query: QueryParams | None = None
        self._state: State | None = None
        self._body: bytes | None = None
        self._stream = body
        self._consumed = False
        self._id: str | None = None

    @property
    def raw_path(self) -> bytes:
        """The path as sent, still percent-encoded (re-encoded where the server decoded it)."""
        if self._raw_path is None:
            self._raw_path = quote(self.path, safe="/:@!$&'()*+,;=-._~").encode("ascii")
        return self._raw_path

    @property
    def headers(self) -> Headers:
        """The request headers, case-insensitive and multi-valued."""
        if self._headers is None:
            assert self._load_headers is not None
            self._headers = Headers(self._load_headers())
        return self._headers

    @property
    def query(self) -> QueryParams:
        """The parsed query string; `request.query.getall("tag")` for repeats."""
        if self._query is None:
            self._query = QueryParams.parse(self.query_string)
        return self._query

    @property
    def state(self) -> State:
        """Per-request attributes set by middleware and dependencies."""
        if self._state is None:
            self._state = State()
        return self._state

    @property
    def id(self) -> str:
        """The request id: the client's `X-Request-ID` if it sent a sane one, else a new one.

        Computed on first use (nothing is spent on requests that never ask);
        a sane incoming id is printable ASCII of at most 200 characters.
        Middleware may assign another.
        """
        if self._id is None:
            incoming = self.headers.get("x-request-id")
            if (
                incoming
                and len(incoming) <= _MAX_ID_LENGTH
                and incoming.isascii()
                and incoming.isprintable()
            ):
                self._id = incoming
            else:
                self._id = f"{_id_prefix}-{next(_id_counter):x}"
        return self._id

    @id.setter
    def id(self, value: str) -> None:
        self._id = value

    @property
    def url(self) -> str:
        """Path and query string, as a client would write them."""
        return self.path + ("?" + self.query_string if self.query_string else "")

    def content_length(self) -> int | None:
        """The declared `Content-Length`, or None; a malformed value is a 400."""
        value = self.headers.get("content-length")
        if value is None:
            return None
        if not value.isdigit():
            raise BadRequest(detail=f"Content-Length is not a number: {value!r}")
        return int(value)

    def check_declared_size(self) -> None:
        """Refuse at once (413) a body whose declared length is over the limit."""
        declared = self.content_length()
        if declared is not None and declared > self.max_body_size:
            raise PayloadTooLarge(
                detail=f"The body is {declared} bytes; this service accepts at most "
                f"{self.max_body_size}."
            )

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks as they arrive, enforcing `max_body_size`."""
        if self._body is not None:
            yield self._body
            return
        if self._consumed:
            raise RuntimeError("the request body was already streamed")
        self._consumed = True
        self.check_declared_size()
        limit = self.max_body_size
        seen = 0
        async for chunk in self._stream() if self._stream is not None else _no_body():
            seen += len(chunk)
            if seen > limit:
                raise PayloadTooLarge(
                    detail=f"The body is over this service's limit of {limit} bytes."
                )
            yield chunk

    async def body(self) -> bytes:
        """The whole body; 413 past `max_body_size`, 400 if it cannot be read."""
        if self._body is None:
            chunks = [chunk async for chunk in self.stream()]
            self._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """The body decoded as JSON; 400 naming the position of a syntax error."""
        body = await self.body()
        try:
            return _json_decode(body)
        except msgspec.DecodeError as exc:
            raise BadRequest(detail=f"Malformed JSON body: {exc}") from exc

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"
