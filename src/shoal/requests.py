"""The transport-free `Request` that handlers and middleware see.

Adapters build a `Request` from their protocol's scope. Everything that costs
something (headers, query string, body) is parsed only when first asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

import msgspec

from .datastructures import Headers, QueryParams, State
from .errors import JSON_DECODE_ERRORS, BadRequest, HTTPError, PayloadTooLarge, malformed_json
from .forms import (
    DEFAULT_MAX_FIELD_SIZE,
    DEFAULT_MAX_PARTS,
    DEFAULT_SPOOL_SIZE,
    FormData,
    parse_form,
)
from .limits import Limits
from .responses import no_body

if TYPE_CHECKING:
    from .app import App, Endpoint

__all__ = ["Request", "parse_cookie_header"]

HeaderLoader = Callable[[], list[tuple[str, str]]]

_json_decode = msgspec.json.Decoder().decode


# Generated request ids are a random per-process prefix and a counter: unique
# across workers and restarts in practice, and far cheaper than a uuid4. The
# counter is written in decimal (`str` of an int costs half as much as hex),
# joined to the prefix inline in `Request.id` (`prefix + str(next count)`:
# 40 % cheaper than a chain of `map` objects doing the same in C, measured).
_id_prefix = ""
_id_count: Callable[[], int] = itertools.count(1).__next__


def _reseed_ids() -> None:
    global _id_prefix, _id_count
    _id_prefix = os.urandom(5).hex() + "-"
    _id_count = itertools.count(1).__next__


_reseed_ids()
os.register_at_fork(after_in_child=_reseed_ids)  # forked workers must not repeat ids

_MAX_ID_LENGTH = 200

_UNREAD = object()  # `Request._client` before the transport was asked

_peers: dict[str, tuple[str, int] | None] = {}


def _peer(address: str) -> tuple[str, int] | None:
    # "host:port" (granian's form) parsed once per connection, not once per
    # request: a keep-alive connection sends its requests from one address
    found = _peers.get(address, _UNREAD)
    if found is _UNREAD:
        host, _, port = address.rpartition(":")
        found = (host.strip("[]"), int(port)) if port.isdigit() else None
        if len(_peers) >= 4096:  # bounded: at most a few thousand connections' worth
            _peers.clear()
        _peers[address] = found
    return found  # type: ignore[return-value]


# Methods whose requests carry no body in practice: no size check, no draining.
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

DEFAULT_MAX_BODY_SIZE = 1024 * 1024


class Connection(NamedTuple):
    """How the request arrived: what `Request.scheme` and `Request.http_version` report.

    Adapters may pass any object with these two attributes (granian's RSGI
    scope has both), so building a request costs no extra object.
    """

    scheme: str = "http"
    http_version: str = "1.1"


_DEFAULT_CONNECTION = Connection()


# Past the limit, up to this much more of the body is read and dropped (for at
# most this long) before the 413 is sent. A server that answers and closes
# while the client still sends makes the client's kernel discard the answer
# with a reset: the client would see a broken connection instead of the 413.
DISCARD_LIMIT = 1024 * 1024
DISCARD_TIMEOUT = 1.0


def body_timed_out(timeout: float) -> HTTPError:
    """The 408 for a body that did not arrive in time; the connection is closed after it."""
    return HTTPError(
        408,
        f"The request body did not arrive within {timeout} s.",
        headers={"connection": "close"},
    )


def uri_too_long(limit: int) -> HTTPError:
    """The 414 for a path or query string longer than the app's `max_request_line`."""
    return HTTPError(414, f"The request target is over this service's limit of {limit} bytes.")


async def discard(chunks: AsyncIterable[bytes]) -> bool:
    """Read and drop what is left of a body, at most `DISCARD_LIMIT` bytes for
    at most `DISCARD_TIMEOUT` seconds; errors end it quietly.

    True when the body was dropped to its end; False when it gave up, and the
    connection must then be closed (what is left of the body is on the wire).
    """
    dropped = 0
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DISCARD_TIMEOUT):
            async for chunk in chunks:
                dropped += len(chunk)
                if dropped > DISCARD_LIMIT:
                    return False
            return True
    return False


def parse_cookie_header(values: list[str]) -> dict[str, str]:
    """`{name: value}` from `Cookie` header values (see `Request.cookies`)."""
    cookies: dict[str, str] = {}
    for value in values:
        for pair in value.split(";"):
            name, eq, content = pair.partition("=")
            name = name.strip()
            if not eq or not name or name in cookies:
                continue
            content = content.strip()
            if len(content) >= 2 and content[0] == content[-1] == '"':
                content = content[1:-1]
            cookies[name] = content
    return cookies


class Request:
    """One HTTP request.

    `method` and `path` (percent-decoded) are plain attributes; everything
    else (`query_string`, `headers`, `query`, `client`, `state`, `await
    body()`, `await json()`) is computed on first use, so a request costs
    only what its handler reads.

    `headers` is a list of (name, value) pairs or a function returning one;
    `body` is a function returning an async iterator of chunks; `client` is
    `(host, port)` or a `"host:port"` string.
    """

    # Lazily computed slots hold None until first use. (Left unset and read
    # through try/except AttributeError, each first read would raise and
    # catch an exception: about 1 us, the cost of fifty stores of None.)
    __slots__ = (
        "method",
        "path",
        "_query_string",
        "app",
        "_headers_source",
        "_stream",
        "_client",
        "_connection",
        "path_params",
        "endpoint",
        "_headers",
        "_query",
        "_state",
        "_body",
        "_consumed",
        "_raw_path",
        "_limit",
        "_id",
        "_host",
        "_scheme",
        "_cookies",
        "_form",
    )
    _client: tuple[str, int] | str | object | None  # _UNREAD: not asked yet
    path_params: dict[str, Any]
    """The converted path parameters of the matched route (empty before routing)."""
    endpoint: Endpoint | None
    """The route's endpoint once routed (`endpoint.template` is the route); None before."""
    _headers: Headers | None
    _query: QueryParams | None
    _state: State | None
    _body: bytes | None
    _consumed: bool
    _raw_path: bytes | None
    _limit: int | None
    _id: str | None
    _host: str | None
    _scheme: str | None
    _cookies: dict[str, str] | None
    _form: FormData | None

    def __init__(
        self,
        method: str,
        path: str,
        query_string: str = "",
        headers: HeaderLoader | list[tuple[str, str]] = list,
        body: Callable[[], AsyncIterator[bytes]] | None = None,
        client: tuple[str, int] | str | None = None,
        app: App | None = None,
        connection: Any = _DEFAULT_CONNECTION,
        *,
        raw_path: bytes | None = None,
        max_body_size: int | None = None,
    ) -> None:
        self._unset_lazy()
        self.method = method
        self.path = path
        self._query_string = query_string
        self.app = app
        self._headers_source = headers
        self._stream = body
        if client is not None:
            self._client = client
        self._connection = connection
        self.path_params = {}
        self.endpoint = None
        self._raw_path = raw_path
        self._limit = max_body_size

    def _unset_lazy(self) -> None:
        # what is computed on first use starts as None (see `__slots__`)
        self._id = self._headers = self._query = self._state = self._body = None
        self._raw_path = self._limit = self._host = self._scheme = None
        self._cookies = self._form = None
        self._consumed = False
        self._client = _UNREAD

    @property
    def query_string(self) -> str:
        """The raw query string, without the `?` (`""` when there is none)."""
        return self._query_string

    @property
    def scheme(self) -> str:
        """`http` or `https` (as the server saw it, unless middleware set it)."""
        scheme: str | None = self._scheme
        if scheme is None:
            scheme = self._connection.scheme
        return scheme

    @scheme.setter
    def scheme(self, value: str) -> None:
        # set by middleware that knows better (shoal.security.TrustedProxies)
        self._scheme = value

    @property
    def host(self) -> str:
        """The host the client asked for: the `Host` header, unless middleware set it."""
        host = self._host
        return self.headers.get("host", "") if host is None else host

    @host.setter
    def host(self, value: str) -> None:
        self._host = value

    @property
    def http_version(self) -> str:
        """`1.1`, `2`..."""
        version: str = self._connection.http_version
        return version

    @property
    def max_body_size(self) -> int:
        """The largest body this request may have (the app's `max_body_size`)."""
        limit = self._limit
        if limit is None:
            limit = self._limit = (
                self.app.max_body_size if self.app is not None else DEFAULT_MAX_BODY_SIZE
            )
        return limit

    @property
    def client(self) -> tuple[str, int] | None:
        """The peer's `(host, port)`, when the server knows it."""
        client = self._client
        if client is _UNREAD:
            client = self._client = self._client_address()
        if isinstance(client, str):
            client = self._client = _peer(client)
        return client  # type: ignore[return-value]  # a tuple or None by now

    @client.setter
    def client(self, value: tuple[str, int] | None) -> None:
        self._client = value

    def _client_address(self) -> tuple[str, int] | str | None:
        """The peer address from the transport, for adapters that fill it lazily."""
        return None

    @property
    def raw_path(self) -> bytes:
        """The path as sent, still percent-encoded (re-encoded where the server decoded it)."""
        raw = self._raw_path
        if raw is None:
            raw = self._raw_path = quote(self.path, safe="/:@!$&'()*+,;=-._~").encode("ascii")
        return raw

    @property
    def headers(self) -> Headers:
        """The request headers, case-insensitive and multi-valued."""
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers(self._header_items())
        return headers

    def header(self, name: str) -> str | None:
        """The first value of header `name` (lower case), or None.

        Cheaper than `headers.get` on a request whose headers were not parsed
        yet: adapters that can look one header up (granian) do so.
        """
        return self.headers.get(name)

    def _header_items(self) -> list[tuple[str, str]]:
        """The raw (name, value) header pairs from the transport (adapters may override)."""
        source = self._headers_source
        return source if isinstance(source, list) else source()

    @property
    def cookies(self) -> dict[str, str]:
        """The request's cookies, `{name: value}`, parsed from `Cookie` on first use.

        A value in double quotes is unquoted (RFC 6265 allows them); a pair
        without `=` is skipped; of two cookies with one name, the first wins
        (browsers send the one with the longest path first).
        """
        cookies = self._cookies
        if cookies is None:
            cookies = self._cookies = parse_cookie_header(self.headers.getall("cookie") or [])
        return cookies

    @property
    def query(self) -> QueryParams:
        """The parsed query string; `request.query.getall("tag")` for repeats."""
        query = self._query
        if query is None:
            query = self._query = QueryParams.parse(self.query_string)
        return query

    @property
    def state(self) -> State:
        """Per-request attributes set by middleware and dependencies."""
        state = self._state
        if state is None:
            state = self._state = State()
        return state

    @property
    def id(self) -> str:
        """The request id: the client's `X-Request-ID` if it sent a sane one, else a new one.

        Computed on first use (nothing is spent on requests that never ask);
        a sane incoming id is printable ASCII of at most 200 characters.
        Middleware may assign another.
        """
        found = self._id
        if found is None:
            incoming = self.header("x-request-id")
            if (
                incoming
                and len(incoming) <= _MAX_ID_LENGTH
                and incoming.isascii()
                and incoming.isprintable()
            ):
                found = incoming
            else:
                found = _id_prefix + str(_id_count())
            self._id = found
        return found

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
        timeout = self.app.limits.body_timeout if self.app is not None else Limits.body_timeout
        deadline = asyncio.get_running_loop().time() + timeout
        seen = 0
        chunks = self._chunks()
        while True:
            try:
                # the whole body must arrive by the deadline: a client that
                # trickles it (slow-body attack) holds a connection no longer
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise body_timed_out(timeout) from None
            seen += len(chunk)
            if seen > limit:
                await discard(chunks)
                raise PayloadTooLarge(
                    detail=f"The body is over this service's limit of {limit} bytes."
                )
            yield chunk

    def _chunks(self) -> AsyncIterator[bytes]:
        """The raw body chunks from the transport (adapters may override)."""
        return self._stream() if self._stream is not None else no_body()

    async def body(self) -> bytes:
        """The whole body; 413 past `max_body_size`, 400 if it cannot be read."""
        body = self._body
        if body is None:
            chunks = [chunk async for chunk in self.stream()]
            body = self._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return body

    @property
    def received_body(self) -> bytes:
        """The body that `await body()` read: for code that runs after it (typed body params).

        Raises `RuntimeError` when the body has not been read yet.
        """
        body = self._body
        if body is None:
            raise RuntimeError("the request body has not been read: await request.body()")
        return body

    async def form(
        self,
        *,
        max_parts: int = DEFAULT_MAX_PARTS,
        max_field_size: int = DEFAULT_MAX_FIELD_SIZE,
        spool_size: int = DEFAULT_SPOOL_SIZE,
    ) -> FormData:
        """The body parsed as a form (urlencoded or multipart); see `shoal.forms`.

        Parsed once (later calls return the same `FormData`); 415 for another
        content type, 400 when malformed, 413 past a limit.
        """
        form = self._form
        if form is None:
            form = self._form = await parse_form(
                self.headers.get("content-type", ""),
                self.stream(),
                max_parts=max_parts,
                max_field_size=max_field_size,
                spool_size=spool_size,
            )
        return form

    async def json(self) -> Any:
        """The body decoded as JSON; 400 naming the position of a syntax error."""
        body = await self.body()
        try:
            return _json_decode(body)
        except JSON_DECODE_ERRORS as exc:
            raise malformed_json(exc, body) from None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"
