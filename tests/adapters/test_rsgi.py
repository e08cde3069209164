"""RSGI adapter pieces that the end-to-end suite cannot reach directly."""

from __future__ import annotations

import asyncio
import json

import pytest

from shoal import App, Request


def test_init_runs_startup_and_exits_the_worker_on_failure() -> None:
    app = App()

    @app.on_startup
    def fail() -> None:
        raise RuntimeError("no config")

    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(SystemExit) as caught:
            app.__rsgi_init__(loop)
        assert caught.value.code == 3
    finally:
        loop.close()


def test_init_and_del_run_the_lifespan() -> None:
    events: list[str] = []
    app = App()
    app.on_startup(lambda: events.append("up"))
    app.on_shutdown(lambda: events.append("down"))
    loop = asyncio.new_event_loop()
    try:
        app.__rsgi_init__(loop)
        app.__rsgi_del__(loop)
    finally:
        loop.close()
    assert events == ["up", "down"]


class _Headers(dict[str, str]):
    """granian's header map, as far as the adapter uses it."""

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return list(super().items())

    def get_all(self, name: str) -> list[str]:
        return [self[name]] if name in self else []


class _Scope:
    proto = "http"
    http_version = "1.1"
    scheme = "http"
    method = "GET"
    client = "10.0.0.7:50000"
    server = "127.0.0.1:8000"
    authority = None
    path = "/probe"
    query_string = "a=1&a=2&b="
    headers = _Headers({"host": "svc.test", "cookie": "sid=abc", "x-request-id": "rid-1"})


class _Proto:
    answer: tuple[int, list[tuple[str, str]], bytes] | None = None

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answer = (status, headers, body)


def test_every_lazily_read_part_of_a_granian_request_is_readable() -> None:
    # the RSGI request fills its lazily computed slots itself (inlined for
    # speed): each property must read without an unset slot
    app = App(request_ids=True)

    @app.get("/probe")
    async def probe(request: Request) -> dict[str, object]:
        request.state.seen = True
        return {
            "query": request.query.getall("a"),
            "b": request.query.get("b"),
            "headers": request.headers.get("host"),
            "cookies": request.cookies,
            "client": list(request.client or ()),
            "scheme": request.scheme,
            "host": request.host,
            "raw_path": request.raw_path.decode(),
            "max_body_size": request.max_body_size,
            "id": request.id,
            "state": request.state.seen,
            "url": request.url,
        }

    proto = _Proto()

    async def serve() -> None:
        await app.__rsgi__(_Scope(), proto)

    asyncio.run(serve())
    assert proto.answer is not None
    status, headers, body = proto.answer
    assert status == 200, body
    assert json.loads(body) == {
        "query": ["1", "2"],
        "b": "",
        "headers": "svc.test",
        "cookies": {"sid": "abc"},
        "client": ["10.0.0.7", 50000],
        "scheme": "http",
        "host": "svc.test",
        "raw_path": "/probe",
        "max_body_size": app.max_body_size,
        "id": "rid-1",
        "state": True,
        "url": "/probe?a=1&a=2&b=",
    }
    assert ("x-request-id", "rid-1") in headers
