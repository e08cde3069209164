"""Response compression: zstd or gzip, negotiated from `Accept-Encoding`.

```python
app.add_middleware(Compression())          # zstd when the client takes it, else gzip
```

- **Codings**: `zstd` (with the `zstandard` package: `pip install
  'shoal[compression]'`) and `gzip` (the standard library). zstd was chosen
  over brotli by measurement on JSON bodies (docs/benchmarks.md, "Compression"):
  at its default level it compresses a 10 KiB JSON body better than gzip -6
  for a third of the CPU, and brotli needs several times the CPU of zstd for
  a like ratio. Without `zstandard` installed, only gzip is offered.
- **Negotiation**: `Accept-Encoding` with q-values (RFC 9110 section 12.5.3):
  the coding with the highest q wins, zstd before gzip on a tie; `q=0`
  refuses a coding; `*` stands for the codings not named. No header, or
  nothing acceptable: the body goes as it is. Parsed answers are cached per
  header value.
- **What is compressed**: responses of a compressible type (JSON and
  problem+json, `text/*`, `*+json`, `*+xml`, XML, JavaScript, NDJSON, SVG,
  event streams) whose body is at least `minimum_size` bytes (1024: below
  that, the coding's framing eats most of the gain), and streaming
  responses of those types whatever their size, compressed as they stream:
  each chunk is flushed, so a client reads each event when it is sent.
- **Never**: a response that already has `Content-Encoding`, one with
  `Cache-Control: no-transform`, a 1xx/204/206/304, or one with
  `Content-Range`.
- **Caches**: every response that could have been compressed carries
  `Vary: Accept-Encoding` (also when this client got it uncompressed); a
  strong `ETag` on a compressed response becomes weak (`W/`), since the bytes
  differ from the uncompressed representation's.

The work happens on the event loop (zstd at ~2 µs per KiB of JSON here): a
service that sends multi-MiB bodies should compress them elsewhere (a proxy)
or stream them.
"""

from __future__ import annotations

import functools
import threading
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ConfigurationError
from .requests import Request
from .responses import Response, StreamingResponse

if TYPE_CHECKING:
    from .app import Handler

try:  # an optional dependency: shoal[compression]
    import zstandard
except ImportError:  # pragma: no cover - exercised only where it is missing
    zstandard = None  # type: ignore[assignment]

__all__ = ["Compression", "choose_encoding", "zstd_available"]

_COMPRESSIBLE_PREFIXES = ("text/",)
_COMPRESSIBLE = frozenset(
    {
        "application/json",
        "application/problem+json",
        "application/javascript",
        "application/xml",
        "application/x-ndjson",
        "application/graphql-response+json",
        "image/svg+xml",
    }
)
_NEVER_STATUS = frozenset({204, 206, 304})


def zstd_available() -> bool:
    """Whether the `zstandard` package is installed (then zstd is offered)."""
    return zstandard is not None


def _is_compressible(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return (
        media in _COMPRESSIBLE
        or media.startswith(_COMPRESSIBLE_PREFIXES)
        or media.endswith(("+json", "+xml"))
    )


@functools.lru_cache(maxsize=512)
def choose_encoding(accept_encoding: str, offered: tuple[str, ...]) -> str | None:
    """The coding of `offered` (in preference order) to use for `accept_encoding`, or None.

    Highest q wins, the earlier offered on a tie; `q=0` refuses; `*` covers
    the codings not named; `x-gzip` counts as `gzip`. Malformed q-values
    count as 0 (refused), never as an error.
    """
    named: dict[str, float] = {}
    star: float | None = None
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        if coding == "x-gzip":
            coding = "gzip"
        if coding == "*":
            star = q
        else:
            named[coding] = max(q, named[coding]) if coding in named else q
    best: str | None = None
    best_q = 0.0
    for coding in offered:
        q = named.get(coding, star if star is not None else 0.0)
        if q > best_q:
            best, best_q = coding, q
    return best


class _Stream(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _GzipStream:
    __slots__ = ("_compressor",)

    def __init__(self, level: int) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, 31)

    def compress(self, data: bytes) -> bytes:
        compressor = self._compressor
        return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._compressor.flush(zlib.Z_FINISH)


class _ZstdStream:
    __slots__ = ("_compressor",)

    def __init__(self, level: int) -> None:
        assert zstandard is not None
        self._compressor = zstandard.ZstdCompressor(level=level).compressobj()

    def compress(self, data: bytes) -> bytes:
        assert zstandard is not None
        compressor = self._compressor
        return compressor.compress(data) + compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        return self._compressor.flush()


async def _compressed(chunks: AsyncIterable[bytes | str], stream: _Stream) -> AsyncIterator[bytes]:
    """`chunks` compressed one by one, each flushed so the client can decode it at once."""
    iterator = aiter(chunks)
    try:
        async for chunk in iterator:
            data = stream.compress(chunk.encode() if isinstance(chunk, str) else chunk)
            if data:
                yield data
        yield stream.finish()
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


class Compression:
    """A middleware compressing responses with zstd or gzip (see the module docs).

    `minimum_size`: complete bodies smaller than this (bytes) go as they
    are. `gzip_level` (1-9, default 6) and `zstd_level` (1-19, default 3) trade
    CPU for size. `encodings`: the codings offered, in preference order
    (default: zstd when available, then gzip).
    """

    def __init__(
        self,
        *,
        minimum_size: int = 1024,
        gzip_level: int = 6,
        zstd_level: int = 3,
        encodings: tuple[str, ...] | None = None,
    ) -> None:
        if minimum_size < 0:
            raise ConfigurationError("Compression minimum_size must be >= 0")
        if not 1 <= gzip_level <= 9:
            raise ConfigurationError("Compression gzip_level is 1 to 9")
        if not 1 <= zstd_level <= 19:
            raise ConfigurationError("Compression zstd_level is 1 to 19")
        if encodings is None:
            encodings = ("zstd", "gzip") if zstandard is not None else ("gzip",)
        for coding in encodings:
            if coding not in ("zstd", "gzip"):
                raise ConfigurationError(f"Compression: unknown encoding {coding!r}")
            if coding == "zstd" and zstandard is None:
                raise ConfigurationError(
                    "Compression: zstd needs the zstandard package "
                    "(pip install 'shoal[compression]')"
                )
        if not encodings:
            raise ConfigurationError("Compression: no encoding to offer")
        self.minimum_size = minimum_size
        self.gzip_level = gzip_level
        self.zstd_level = zstd_level
        self.encodings = tuple(encodings)
        self._local = threading.local()  # zstd compressors are not shared between threads

    def compress_body(self, coding: str, body: bytes) -> bytes:
        """`body` compressed whole with `coding`."""
        if coding == "gzip":
            compressor = zlib.compressobj(self.gzip_level, zlib.DEFLATED, 31)
            return compressor.compress(body) + compressor.flush()
        zstd = getattr(self._local, "zstd", None)
        if zstd is None:
            assert zstandard is not None
            zstd = self._local.zstd = zstandard.ZstdCompressor(level=self.zstd_level)
        data: bytes = zstd.compress(body)
        return data

    def stream(self, coding: str) -> _Stream:
        """A fresh streaming compressor for `coding`."""
        if coding == "gzip":
            return _GzipStream(self.gzip_level)
        return _ZstdStream(self.zstd_level)

    def __call__(self, call_next: Handler) -> Handler:
        """Wrap `call_next` so its eligible responses are compressed."""
        minimum = self.minimum_size
        offered = self.encodings
        compress_body = self.compress_body
        new_stream: Callable[[str], _Stream] = self.stream

        async def compress(request: Request) -> Response:
            response = await call_next(request)
            streaming = isinstance(response, StreamingResponse)
            if (not streaming and len(response.body) < minimum) or response.status in _NEVER_STATUS:
                return response
            content_type: str | None = None
            cache_control: str | None = None
            for name, value in response.headers:
                if name == "content-type":
                    content_type = value
                elif name == "cache-control":
                    cache_control = value
                elif name in ("content-encoding", "content-range"):
                    return response
            if (
                content_type is None
                or response.status < 200
                or not _is_compressible(content_type)
                or (cache_control is not None and "no-transform" in cache_control.lower())
            ):
                return response
            response.add_vary("Accept-Encoding")
            accept = request.header("accept-encoding")
            if not accept:
                return response
            coding = (
                choose_encoding(accept, offered)
                if len(accept) <= 256  # cached: clients send a handful of distinct values
                else choose_encoding.__wrapped__(accept, offered)
            )
            if coding is None:
                return response
            headers: list[tuple[str, Any]] = []
            for name, value in response.headers:
                if name == "content-length":
                    continue
                if name == "etag" and not value.startswith("W/"):
                    value = "W/" + value
                headers.append((name, value))
            headers.append(("content-encoding", coding))
            response.headers = headers
            if isinstance(response, StreamingResponse):
                response.chunks = _compressed(response.chunks, new_stream(coding))
            else:
                response.body = compress_body(coding, response.body)
            return response

        return compress
