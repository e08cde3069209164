"""HTML forms and file uploads: `application/x-www-form-urlencoded` and `multipart/form-data`.

```python
form = await request.form()
name = form["name"]                      # a str
avatar = form["avatar"]                  # an UploadFile
data = await avatar.read()
```

- **Parsing** streams the body through python-multipart's parser (multipart)
  or `urllib.parse` (urlencoded): nothing holds the whole body at once but
  text fields. The request's `max_body_size` bounds the total (413).
- **Limits** (413 past each): `max_parts` (1000) fields and files, and
  `max_field_size` (1 MiB) bytes per text field. Files are bounded by the
  body size only; each is spooled to an anonymous temporary file past
  `spool_size` (1 MiB), in memory below.
- **Filenames are never paths**: `UploadFile.filename` is the last segment
  of what the client sent (no `/`, `\\` or NUL), for display; the file's
  bytes live in a temporary file with no name shoal chose from it. Save an
  upload under a name of your own.
- A malformed body is a 400, another content type a 415.
- The files are closed (and their temporary files deleted) when the form is
  dropped, in CPython as soon as the request is done: read an upload in the
  handler, or copy it, before handing it to a background task.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from .datastructures import Headers
from .errors import BadRequest, HTTPError, PayloadTooLarge

__all__ = [
    "DEFAULT_MAX_FIELD_SIZE",
    "DEFAULT_MAX_PARTS",
    "DEFAULT_SPOOL_SIZE",
    "FormData",
    "UploadFile",
    "parse_form",
]

DEFAULT_MAX_PARTS = 1000
DEFAULT_MAX_FIELD_SIZE = 1024 * 1024
DEFAULT_SPOOL_SIZE = 1024 * 1024
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _safe_filename(raw: str) -> str:
    name = raw.replace("\0", "").replace("\\", "/").rsplit("/", 1)[-1]
    return "" if name in (".", "..") else name


class UploadFile:
    """One uploaded file: `filename`, `content_type`, `size`, `headers`, and async reads.

    The bytes are in `file`, a `SpooledTemporaryFile` (memory below the
    spool size, an anonymous temporary file above). `read`, `seek` and
    `close` run in a worker thread once the file is on disk.
    """

    __slots__ = ("filename", "content_type", "headers", "size", "file")

    def __init__(self, filename: str, content_type: str, headers: Headers, spool_size: int) -> None:
        self.filename = filename
        self.content_type = content_type
        self.headers = headers
        self.size = 0
        self.file: Any = tempfile.SpooledTemporaryFile(max_size=spool_size)  # noqa: SIM115

    @property
    def in_memory(self) -> bool:
        """Whether the file is still held in memory (under the spool size)."""
        return not getattr(self.file, "_rolled", True)

    def _write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    async def read(self, size: int = -1) -> bytes:
        """Read up to `size` bytes (all that is left by default)."""
        if self.in_memory:
            data: bytes = self.file.read(size)
            return data
        return await asyncio.to_thread(self.file.read, size)

    async def seek(self, offset: int) -> None:
        """Move to byte `offset` (0: the start again)."""
        if self.in_memory:
            self.file.seek(offset)
        else:
            await asyncio.to_thread(self.file.seek, offset)

    async def close(self) -> None:
        """Release the file (its temporary file is deleted)."""
        if self.in_memory:
            self.file.close()
        else:
            await asyncio.to_thread(self.file.close)

    def __repr__(self) -> str:
        return f"<UploadFile {self.filename!r} {self.content_type} {self.size} bytes>"


class FormData:
    """A parsed form: `form[name]` (the first value), `getall(name)`, `items()`.

    Values are `str` for fields and `UploadFile` for files.
    """

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str | UploadFile]]) -> None:
        self._items = items

    def __getitem__(self, name: str) -> str | UploadFile:
        for key, value in self._items:
            if key == name:
                return value
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        """The first value of `name`, or `default`."""
        try:
            return self[name]
        except KeyError:
            return default

    def getall(self, name: str) -> list[str | UploadFile]:
        """Every value of `name`, in order."""
        return [value for key, value in self._items if key == name]

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(key for key, _ in self._items))

    def __len__(self) -> int:
        return len(dict.fromkeys(key for key, _ in self._items))

    def items(self) -> list[tuple[str, str | UploadFile]]:
        """Every (name, value) pair, in order, repeats included."""
        return list(self._items)

    def files(self) -> list[UploadFile]:
        """The uploaded files."""
        return [value for _, value in self._items if isinstance(value, UploadFile)]

    async def close(self) -> None:
        """Close every uploaded file (their temporary files are deleted)."""
        for upload in self.files():
            await upload.close()

    def __del__(self) -> None:
        # when the request is done with its form: its files go too
        for upload in self.files():
            upload.file.close()

    def __repr__(self) -> str:
        return f"FormData({self._items!r})"


def media_type_of(content_type: str) -> str:
    """`multipart/form-data` from `multipart/form-data; boundary=...`."""
    return content_type.partition(";")[0].strip().lower()


async def parse_form(
    content_type: str,
    chunks: AsyncIterator[bytes],
    *,
    max_parts: int = DEFAULT_MAX_PARTS,
    max_field_size: int = DEFAULT_MAX_FIELD_SIZE,
    spool_size: int = DEFAULT_SPOOL_SIZE,
) -> FormData:
    """Parse a form body arriving as `chunks` (see the module docs for the rules)."""
    media = media_type_of(content_type)
    if media == "application/x-www-form-urlencoded":
        return await _urlencoded(chunks, max_parts, max_field_size)
    if media == "multipart/form-data":
        return await _multipart(content_type, chunks, max_parts, max_field_size, spool_size)
    raise HTTPError(
        415,
        f"The body must be a form ({' or '.join(FORM_TYPES)}), not {media or 'unset'}.",
    )


async def _urlencoded(chunks: AsyncIterator[bytes], max_parts: int, max_field: int) -> FormData:
    body = b"".join([chunk async for chunk in chunks])
    if body.count(b"&") + 1 > max_parts:
        raise PayloadTooLarge(detail=f"The form has more than {max_parts} fields.")
    try:
        pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8")
    except ValueError as exc:
        raise BadRequest(detail=f"Malformed form body: {exc}") from exc
    for name, value in pairs:
        if len(value) > max_field:
            raise PayloadTooLarge(
                detail=f"Form field {name!r} is over the limit of {max_field} bytes."
            )
    items: list[tuple[str, str | UploadFile]] = list(pairs)
    return FormData(items)


class _Multipart:
    """The parser's callbacks: build fields and files part by part."""

    def __init__(self, max_parts: int, max_field: int, spool_size: int) -> None:
        self.max_parts = max_parts
        self.max_field = max_field
        self.spool_size = spool_size
        self.items: list[tuple[str, str | UploadFile]] = []
        self.parts = 0
        self.header_field = b""
        self.header_value = b""
        self.headers: list[tuple[str, str]] = []
        self.name = ""
        self.upload: UploadFile | None = None
        self.field: bytearray = bytearray()
        self.ended = False

    def on_end(self) -> None:
        self.ended = True

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.max_parts:
            raise PayloadTooLarge(detail=f"The form has more than {self.max_parts} parts.")
        self.headers = []
        self.upload = None
        self.field = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers.append(
            (self.header_field.decode("latin-1").lower(), self.header_value.decode("latin-1"))
        )
        self.header_field = b""
        self.header_value = b""

    def on_headers_finished(self) -> None:
        headers = Headers(self.headers)
        disposition, options = parse_options_header(headers.get("content-disposition", ""))
        if disposition != b"form-data" or b"name" not in options:
            raise BadRequest(detail="A form part lacks Content-Disposition: form-data; name=...")
        self.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            filename = _safe_filename(options[b"filename"].decode("utf-8", "replace"))
            content_type = headers.get("content-type", "application/octet-stream")
            self.upload = UploadFile(filename, content_type, headers, self.spool_size)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.upload is not None:
            self.upload._write(data[start:end])
            return
        self.field += data[start:end]
        if len(self.field) > self.max_field:
            raise PayloadTooLarge(
                detail=f"Form field {self.name!r} is over the limit of {self.max_field} bytes."
            )

    def on_part_end(self) -> None:
        if self.upload is not None:
            self.upload.file.seek(0)
            self.items.append((self.name, self.upload))
        else:
            self.items.append((self.name, self.field.decode("utf-8", "replace")))


async def _multipart(
    content_type: str,
    chunks: AsyncIterator[bytes],
    max_parts: int,
    max_field: int,
    spool_size: int,
) -> FormData:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest(detail="A multipart/form-data body needs a boundary parameter.")
    state = _Multipart(max_parts, max_field, spool_size)
    callbacks: Any = {
        name: getattr(state, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_end",
        )
    }
    parser = MultipartParser(boundary, callbacks)
    try:
        async for chunk in chunks:
            if state.upload is not None and not state.upload.in_memory:
                await asyncio.to_thread(parser.write, chunk)  # writes to a file on disk
            else:
                parser.write(chunk)
        parser.finalize()
        if not state.ended:
            raise MultipartParseError("the body ends before the closing boundary")
    except MultipartParseError as exc:
        await FormData(state.items).close()
        raise BadRequest(detail=f"Malformed multipart body: {exc}") from exc
    except BaseException:
        await FormData(state.items).close()
        raise
    return FormData(state.items)
