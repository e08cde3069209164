"""What the fuzzers drive: an app with every kind of parameter, and both adapters in-process.

`drive_asgi` and `drive_rsgi` hand one request (method, path, query, headers,
body) to the ASGI and RSGI adapters with in-memory stand-ins for the server
(the RSGI scope and protocol are duck-typed after granian's), and return the
status. They raise `Violation` when the adapter breaks its promise: an
exception out of it, no response, two responses, a 5xx other than 501, or a
status outside 100-599. The hypothesis tests (test_fuzz.py) and the atheris
harness (`make fuzz`) share them.
"""

from __future__ import annotations

import asyncio
import datetime
import enum
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import msgspec

from shoal import App, Body, Header, Query, Request


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(msgspec.Struct):
    street: str
    zip: Annotated[str, msgspec.Meta(pattern="^[0-9]{5}$")]


class User(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(max_length=50)]
    age: Annotated[int, msgspec.Meta(ge=0)]
    email: str | None = None
    addresses: list[Address] = []
    tags: set[str] = set()


@dataclass
class Point:
    x: float
    y: float


app = App(openapi_url=None, docs_url=None, max_body_size=64 * 1024, stall_threshold=None)


@app.get("/")
async def index() -> dict[str, str]:
    return {"ok": "yes"}


@app.get("/items/{item_id:int}")
async def item(
    item_id: int,
    limit: int = 10,
    ratio: float = 1.0,
    flag: bool = False,
    tags: list[str] | None = None,
    color: Color | None = None,
    when: datetime.date | None = None,
    mode: Literal["a", "b"] = "a",
    size: Annotated[int, msgspec.Meta(ge=1, le=100), Query("page-size")] = 10,
) -> dict[str, Any]:
    return {"id": item_id, "limit": limit, "ratio": ratio, "flag": flag, "tags": tags}


@app.get("/ratio/{value:float}")
async def ratio(value: float) -> dict[str, float]:
    return {"value": value}


@app.get("/objects/{key:uuid}")
async def obj(key: uuid.UUID) -> dict[str, str]:
    return {"key": str(key)}


@app.get("/files/{rest:path}")
async def files(rest: str) -> dict[str, str]:
    return {"rest": rest}


@app.get("/users/{name}/posts/{post:int}")
async def post(name: str, post: int) -> dict[str, Any]:
    return {"name": name, "post": post}


@app.get("/headers")
async def headers(
    request: Request,
    client: Annotated[str, Header("X-Client")] = "?",
    retries: Annotated[int, Header("X-Retries")] = 0,
    token: Annotated[uuid.UUID | None, Header("X-Token")] = None,
) -> dict[str, Any]:
    cookie = request.headers.get("cookie", "")
    return {"client": client, "retries": retries, "cookies": len(cookie.split(";"))}


@app.get("/query")
async def query(request: Request) -> dict[str, Any]:
    return {"query": request.query.multi_items() if hasattr(request.query, "multi_items") else {}}


@app.post("/users", status=201)
async def create(user: User) -> User:
    return user


@app.post("/points")
async def points(points: Annotated[list[Point], Body()]) -> dict[str, int]:
    return {"count": len(points)}


@app.post("/json")
async def echo(request: Request) -> dict[str, Any]:
    return {"json": await request.json()}


@app.post("/raw")
async def raw(request: Request) -> dict[str, int]:
    return {"size": len(await request.body())}


def legacy(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A WSGI app that reads its cookies the way WSGI apps do."""
    cookie = environ.get("HTTP_COOKIE", "")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(len(cookie)).encode()]


app.mount("/legacy", legacy)


class Runner:
    """An event loop with the app started on it: `run(coroutine)` for sync callers."""

    def __enter__(self) -> Runner:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(app.startup())
        return self

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(app.shutdown())
        self.loop.close()


class Violation(AssertionError):
    """The adapter broke its promise for this input."""


def check_status(status: int) -> int:
    if not 100 <= status <= 599:
        raise Violation(f"status {status} is not an HTTP status")
    if status >= 500 and status != 501:
        raise Violation(f"answered {status}")
    return status


# -- ASGI --------------------------------------------------------------------


async def drive_asgi(
    method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> int:
    """One request through the ASGI adapter; its status (or `Violation`)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path, errors="replace"),
        "raw_path": path.encode("utf-8", "replace"),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # the client stays, silent
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    except Exception as exc:
        raise Violation(f"an exception left the ASGI adapter: {exc!r}") from exc
    starts = [m for m in sent if m["type"] == "http.response.start"]
    if len(starts) != 1:
        raise Violation(f"{len(starts)} response starts")
    return check_status(starts[0]["status"])


# -- RSGI (granian's objects, duck-typed) --------------------------------------


class FakeHeaders:
    """granian's RSGIHeaders: case-insensitive get, get_all, items, `in`."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = [(k.lower(), v) for k, v in items]

    def get(self, name: str, default: Any = None) -> Any:
        for key, value in self._items:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self._items if key == name]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def keys(self) -> list[str]:
        return [k for k, _ in self._items]

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self._items)


@dataclass
class FakeScope:
    method: str
    path: str
    query_string: str
    headers: FakeHeaders
    proto: str = "http"
    http_version: str = "1.1"
    scheme: str = "http"
    client: str = "127.0.0.1:5000"
    server: str = "127.0.0.1:8000"


class FakeProtocol:
    """granian's RSGI HTTP protocol: the body in, one response out."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.responses: list[int] = []
        self.chunks: list[bytes] = []

    async def __call__(self) -> bytes:
        return self.body

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        if self.body:
            yield self.body
        yield b""

    def client_disconnect(self) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()  # the client never leaves

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        for name, value in headers:
            if not isinstance(name, str) or not isinstance(value, str):
                raise Violation(f"a header that is not two str: {name!r}: {value!r}")
        self.responses.append(status)

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> Any:
        self.responses.append(status)
        protocol = self

        class Transport:
            async def send_bytes(self, data: bytes) -> None:
                protocol.chunks.append(data)

        return Transport()


async def drive_rsgi(
    method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> int:
    """One request through the RSGI adapter; its status (or `Violation`)."""
    decoded = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in decoded):
        decoded.append(("content-length", str(len(body))))
    scope = FakeScope(
        method,
        unquote(path, errors="replace"),
        query.decode("latin-1"),
        FakeHeaders(decoded),
    )
    proto = FakeProtocol(body)
    try:
        await app.__rsgi__(scope, proto)
    except Exception as exc:
        raise Violation(f"an exception left the RSGI adapter: {exc!r}") from exc
    if len(proto.responses) != 1:
        raise Violation(f"{len(proto.responses)} responses")
    return check_status(proto.responses[0])
