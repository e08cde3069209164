"""Static files: a directory served under a path prefix, safely and cache-friendly.

```python
app.static("/static", Path(__file__).parent / "static")
```

- **Only files under the directory**: the request path is split into
  segments; `..`, a segment with a NUL or a backslash, and (unless
  `hidden=True`) a segment starting with `.` answer 404, as does a path
  whose real location (symlinks resolved) is outside the directory. The
  server has percent-decoded the path already, so `%2e%2e` is `..` here and
  refused the same way.
- **Conditional requests**: every file has a strong `ETag` (its size and
  modification time) and `Last-Modified`; `If-None-Match` (or, without it,
  `If-Modified-Since`) answers 304 with no body.
- **Ranges**: `Range: bytes=a-b`, `a-` and `-n` answer 206 with
  `Content-Range`; a range that starts past the end answers 416 with
  `Content-Range: bytes */size`; several ranges, or a malformed header, get
  the whole file (200), which RFC 9110 allows. `If-Range` with a stale
  validator also gets the whole file. `Accept-Ranges: bytes` on every file.
- **Types** from the file name (`mimetypes`), `; charset=utf-8` on text;
  `application/octet-stream` when unknown.
- **`index=True`** serves `index.html` for a directory (`/static/docs/`).
- `cache_control` ("no-cache": browsers revalidate with the ETag, a 304 is
  cheap) goes on every file answer; give `"public, max-age=31536000,
  immutable"` for fingerprinted assets.
- Files are read in the app's thread pool (a file system may block): whole
  when small (up to 256 KiB), else streamed in 64 KiB chunks with the
  `Content-Length` declared.
- **`native=True`**: under `shoal run`, granian's own static-file handler
  serves the prefix before the app sees the request (no Python at all), with
  less: no ETag, Last-Modified, 304 or Range, no `Content-Length` (chunked),
  `Cache-Control: max-age=N` only, granian's plain-text 404, any method, and
  no middleware (CORS, compression, security headers, access log, metrics).
  `shoal run` refuses it for a directory with hidden entries (granian would
  serve them) or an app route under the prefix (granian would shadow it).
  Under other servers (uvicorn, the test client) this class serves it.
"""

from __future__ import annotations

import mimetypes
import os
import re
import stat
from collections.abc import AsyncIterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigurationError, NotFound
from .requests import Request
from .responses import Response, StreamingResponse

if TYPE_CHECKING:
    from ._threadpool import ThreadPool

__all__ = ["StaticFiles"]

WHOLE_FILE_LIMIT = 256 * 1024
CHUNK_SIZE = 64 * 1024


class _File:
    """What `stat` said about one file, and its validators."""

    __slots__ = ("path", "size", "mtime", "etag", "last_modified")

    def __init__(self, path: str, result: os.stat_result) -> None:
        self.path = path
        self.size = result.st_size
        self.mtime = int(result.st_mtime)
        self.etag = f'"{result.st_size:x}-{result.st_mtime_ns:x}"'
        self.last_modified = formatdate(result.st_mtime, usegmt=True)


def _etag_matches(header: str, etag: str) -> bool:
    """`If-None-Match`: weak comparison against any listed tag, or `*`."""
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in header.split(","))


def _not_modified_since(header: str, mtime: int) -> bool:
    try:
        since = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError):
        return False
    return mtime <= since


def _byte_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(first, last) of a single satisfiable range; None to ignore it; False if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # another unit or several ranges: the whole file
    first_text, dash, last_text = spec.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if (
        not dash
        or not (first_text.isdigit() or first_text == "")
        or not (last_text.isdigit() or last_text == "")
    ):
        return None
    if first_text == "":
        if last_text == "":
            return None
        suffix = int(last_text)
        if suffix == 0:
            return False
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # invalid: ignored
    if first >= size:
        return False
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


def _read(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        return file.read(length)


class StaticFiles:
    """Serves the files under `directory` (see the module docs); `App.static` registers one."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        index: bool = False,
        hidden: bool = False,
        cache_control: str | None = "no-cache",
        native: bool = False,
    ) -> None:
        root = Path(directory)
        if not root.is_dir():
            raise ConfigurationError(f"static directory {str(root)!r} does not exist")
        self.root = os.path.realpath(root)
        self.index = index
        self.hidden = hidden
        self.cache_control = cache_control
        self.native = native
        self.max_age = 0
        if native and cache_control is not None:
            matched = re.fullmatch(r"\s*max-age=(\d+)\s*", cache_control)
            if matched is None:
                raise ConfigurationError(
                    "native static files: granian sends `Cache-Control: max-age=N` and no "
                    f"other directive (and no ETag to revalidate with), not {cache_control!r}; "
                    "give cache_control='max-age=N' or None"
                )
            self.max_age = int(matched.group(1))

    def hidden_entries(self) -> list[str]:
        """Paths under the directory (relative) that `hidden=False` refuses: names with a dot first.

        granian's native handler refuses none of them, so `shoal run` serves a
        directory natively only when this is empty (or `hidden=True`).
        """
        found: list[str] = []
        for folder, folders, files in os.walk(self.root):
            for name in [*folders, *files]:
                if name.startswith("."):
                    found.append(os.path.relpath(os.path.join(folder, name), self.root))
            folders[:] = [name for name in folders if not name.startswith(".")]
        return sorted(found)

    def locate(self, path: str) -> str | None:
        """The real path of the file that `path` (relative, from the URL) names, or None."""
        parts: list[str] = []
        for segment in path.split("/"):
            if segment in ("", "."):
                continue
            if (
                segment == ".."
                or "\0" in segment
                or "\\" in segment
                or (segment.startswith(".") and not self.hidden)
            ):
                return None
            parts.append(segment)
        target = os.path.realpath(os.path.join(self.root, *parts))
        if target != self.root and not target.startswith(self.root + os.sep):
            return None  # a symlink that leads out of the directory
        return target

    def _find(self, path: str) -> _File | None:
        """Locate and stat `path` (in the thread pool): a regular file, or None."""
        target = self.locate(path)
        if target is None:
            return None
        try:
            result = os.stat(target)
            if stat.S_ISDIR(result.st_mode) and self.index:
                target = os.path.join(target, "index.html")
                result = os.stat(target)
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(result.st_mode):
            return None
        return _File(target, result)

    def _headers(self, found: _File) -> list[tuple[str, str]]:
        media_type, encoding = mimetypes.guess_type(found.path)
        if media_type is None or encoding is not None:
            media_type = "application/octet-stream"  # .gz and the like: bytes, not text
        elif media_type.startswith("text/") or media_type in ("application/javascript",):
            media_type += "; charset=utf-8"
        headers = [
            ("content-type", media_type),
            ("etag", found.etag),
            ("last-modified", found.last_modified),
            ("accept-ranges", "bytes"),
        ]
        if self.cache_control:
            headers.append(("cache-control", self.cache_control))
        return headers

    async def serve(self, request: Request, path: str, pool: ThreadPool) -> Response:
        """The answer to GET or HEAD of `path` (relative to the directory)."""
        found = await pool.run(self._find, path)
        if found is None:
            raise NotFound(detail=f"No file at {request.path}.")
        headers = self._headers(found)
        if_none_match = request.header("if-none-match")
        if if_none_match is not None:
            if _etag_matches(if_none_match, found.etag):
                return Response(status=304, headers=headers[1:])
        else:
            since = request.header("if-modified-since")
            if since is not None and _not_modified_since(since, found.mtime):
                return Response(status=304, headers=headers[1:])
        first, last, status = 0, found.size - 1, 200
        range_header = request.header("range")
        if range_header is not None and self._range_applies(request, found):
            chosen = _byte_range(range_header, found.size)
            if chosen is False:
                return Response(
                    status=416,
                    headers=[("content-range", f"bytes */{found.size}"), *headers[1:]],
                )
            if isinstance(chosen, tuple):
                first, last = chosen
                status = 206
                headers.append(("content-range", f"bytes {first}-{last}/{found.size}"))
        length = last - first + 1 if found.size else 0
        headers.append(("content-length", str(length)))
        if request.method == "HEAD" or length <= WHOLE_FILE_LIMIT:
            body = (
                b""
                if request.method == "HEAD"
                else await pool.run(_read, found.path, first, length)
            )
            return Response.from_parts(status, headers, body)
        return StreamingResponse(
            self._chunks(found.path, first, length, pool), status, headers, None
        )

    @staticmethod
    def _range_applies(request: Request, found: _File) -> bool:
        """`If-Range`: the range only if the validator still matches (strongly)."""
        if_range = request.header("if-range")
        if if_range is None:
            return True
        if if_range.startswith(('"', "W/")):
            return if_range == found.etag
        try:
            return int(parsedate_to_datetime(if_range).timestamp()) == found.mtime
        except (TypeError, ValueError, IndexError):
            return False

    @staticmethod
    async def _chunks(
        path: str, offset: int, length: int, pool: ThreadPool
    ) -> AsyncIterator[bytes]:
        sent = 0
        while sent < length:
            chunk = await pool.run(_read, path, offset + sent, min(CHUNK_SIZE, length - sent))
            if not chunk:
                return  # the file shrank meanwhile: the client sees a short body
            sent += len(chunk)
            yield chunk
