"""One behaviour, every transport: in-process, granian (RSGI via `shoal run`),
uvicorn, hypercorn and granian (ASGI), the last four on real sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from shoal.testing import TestClient
from tests.apps.e2e import app
from tests.servers import SERVERS, Server, running_server

TRANSPORTS = ("in-process", *SERVERS)
KEY = "6f1c2a9e-8d3b-4c5e-9f7a-0b1c2d3e4f5a"


class Served:
    """A transport under test: a client for it, and the server (None in-process)."""

    def __init__(self, name: str, client: Any, server: Server | None) -> None:
        self.name = name
        self.client = client
        self.server = server


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[Server, httpx.Client]]]:
    """Each real server, started on first use and kept for the module."""
    with ExitStack() as stack:
        started: dict[str, tuple[Server, httpx.Client]] = {}

        class Lazy(dict[str, tuple[Server, httpx.Client]]):
            def __missing__(self, kind: str) -> tuple[Server, httpx.Client]:
                server = stack.enter_context(running_server(kind, "tests.apps.e2e:app"))
                client = stack.enter_context(httpx.Client(base_url=server.url, timeout=10))
                started[kind] = self[kind] = (server, client)
                return started[kind]

        yield Lazy()


@pytest.fixture(params=TRANSPORTS)
def served(
    request: pytest.FixtureRequest, servers: dict[str, tuple[Server, httpx.Client]]
) -> Iterator[Served]:
    name: str = request.param
    if name == "in-process":
        with TestClient(app) as client:
            yield Served(name, client, None)
        return
    server, http = servers[name]
    yield Served(name, http, server)


@pytest.fixture(params=SERVERS)
def real(request: pytest.FixtureRequest, servers: dict[str, tuple[Server, httpx.Client]]) -> Served:
    """Only the transports on a real socket (wire framing, server logs)."""
    server, http = servers[request.param]
    return Served(request.param, http, server)


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert set(body) >= {"type", "title", "status", "detail"}
    return body


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/", 200, {"hello": "world"}),
        ("GET", "/items/42", 200, {"id": 42, "type": "int"}),
        ("GET", "/ratio/1.5", 200, {"value": 1.5, "type": "float"}),
        ("GET", f"/objects/{KEY}", 200, {"key": KEY, "version": 4}),
        ("GET", "/files/a/b/c.txt", 200, {"rest": "a/b/c.txt"}),
        ("GET", "/users/me", 200, {"user": "me"}),
        ("GET", "/users/bob", 200, {"user": "bob"}),
        ("GET", "/things", 200, {"method": "GET"}),
        ("POST", "/things", 200, {"method": "POST"}),
        ("GET", "/sync", 200, {"sync": True}),
    ],
)
def test_json_routes(served: Served, method: str, path: str, status: int, body: Any) -> None:
    response = served.client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == body


@pytest.mark.parametrize("path", ["/nope", "/items/abc", "/items/1/2"])
def test_unknown_path_is_404(served: Served, path: str) -> None:
    assert "No route matches" in problem(served.client.request("GET", path), 404)["detail"]


def test_wrong_method_is_405_with_allow(served: Served) -> None:
    response = served.client.request("DELETE", "/things")
    problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"


def test_head_is_answered_for_get_routes(served: Served) -> None:
    response = served.client.request("HEAD", "/sync")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(b'{"sync":true}'))


def test_options_lists_methods(served: Served) -> None:
    response = served.client.request("OPTIONS", "/users/bob")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize(
    ("path", "location"), [("/slash", "/slash/"), ("/users/me/?a=1", "/users/me?a=1")]
)
def test_trailing_slash_redirects_to_the_registered_form(
    served: Served, path: str, location: str
) -> None:
    response = served.client.request("GET", path)
    assert response.status_code == 308
    assert response.headers["location"] == location


def test_text_response_with_headers(served: Served) -> None:
    response = served.client.request("GET", "/text")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-extra"] == "1"
    assert response.content == "héllo".encode()


def test_none_is_204_and_status_is_kept(served: Served) -> None:
    assert served.client.request("GET", "/empty").status_code == 204
    created = served.client.request("GET", "/created")
    assert (created.status_code, created.json()) == (201, {"ok": True})


def test_streaming_response(served: Served) -> None:
    response = served.client.request("GET", "/stream")
    assert response.status_code == 200
    assert response.text == "0\n1\n2\n3\n4\n"


def test_http_error_is_a_problem_with_headers(served: Served) -> None:
    response = served.client.request("GET", "/teapot")
    assert problem(response, 418)["detail"] == "I refuse to brew coffee"
    assert response.headers["x-why"] == "teapot"


def test_request_inspection(served: Served) -> None:
    response = served.client.request(
        "GET",
        "/inspect?tag=a&tag=b",
        headers=[("X-Multi", "1"), ("X-Multi", "2"), ("x-case", "yes")]
        if served.server
        else {"X-Case": "yes"},
    )
    body = response.json()
    assert body["tags"] == ["a", "b"]
    assert body["x_case"] == "yes"
    if served.server:  # the in-process client sends a plain dict of headers
        assert body["x_multi"] == ["1", "2"]
        assert body["client_host"] == "127.0.0.1"


@pytest.mark.parametrize("path", ["/boom", "/sync-boom", "/unsupported"])
def test_unhandled_errors_are_500_without_internals(served: Served, path: str) -> None:
    response = served.client.request("GET", path)
    body = problem(response, 500)
    assert "hunter2" not in response.text and "secret" not in response.text
    assert "Traceback" not in response.text
    assert body["detail"] == "The server hit an internal error; it has been logged."
    # and the server still serves
    assert served.client.request("GET", "/").json() == {"hello": "world"}


def test_unhandled_errors_are_logged_with_traceback(real: Served) -> None:
    real.client.request("GET", "/boom")
    assert real.server is not None
    output = real.server.output()
    assert "unhandled error answering GET /boom" in output
    assert "RuntimeError: secret database password is hunter2" in output
    assert 'in boom\n    raise RuntimeError("secret' in output


def test_json_body_echo(served: Served) -> None:
    payload = {"name": "Ada", "tags": ["x"], "n": 1.5}
    response = served.client.request("POST", "/echo", json=payload)
    assert (response.status_code, response.json()) == (200, payload)


@pytest.mark.parametrize(
    ("content", "position"),
    [
        (b'{"a": 1,}', "byte 8"),
        (b"[1, 2, x]", "byte 7"),
        (b'{"a" 1}', "byte 5"),
        (b"", "truncated"),
    ],
)
def test_malformed_json_is_400_naming_the_position(
    served: Served, content: bytes, position: str
) -> None:
    response = served.client.request("POST", "/echo", content=content)
    detail = problem(response, 400)["detail"]
    assert detail.startswith("Malformed JSON body")
    assert position in detail
    assert served.client.request("GET", "/").status_code == 200


def test_body_over_limit_with_content_length_is_413(served: Served) -> None:
    response = served.client.request("POST", "/size", content=b"x" * 1025)
    assert "at most 1024" in problem(response, 413)["detail"]
    ok = served.client.request("POST", "/size", content=b"x" * 1024)
    assert ok.json() == {"size": 1024}


def test_streamed_body_over_limit_is_413(real: Served) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 300

    response = real.client.request("POST", "/size", content=chunks())
    assert "limit of 1024" in problem(response, 413)["detail"]
    small = real.client.request("POST", "/size", content=iter([b"ab", b"cd"]))
    assert small.json() == {"size": 4}


def raw_exchange(url: str, data: bytes, *, close_write: bool = False) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received


@pytest.mark.parametrize(
    ("data", "close_write"),
    [
        (
            b"POST /size HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nabc\r\n0\r\n\r\n",
            False,
        ),
        (b"POST /size HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc", True),
    ],
    ids=["broken-chunked-framing", "client-gone-mid-body"],
)
def test_unreadable_body_is_400_never_500(real: Served, data: bytes, close_write: bool) -> None:
    assert real.server is not None
    answer = raw_exchange(real.server.url, data, close_write=close_write)
    if answer:  # some servers drop a connection whose client has gone
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b" 500 " not in answer
    assert real.client.request("GET", "/").status_code == 200
