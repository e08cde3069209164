"""Static files: validators, 304, ranges, types, and no way out of the directory."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from shoal import App, ConfigurationError
from shoal.testing import TestClient
from tests.servers import Server, running_server

SECRET = b"the secret outside the static directory"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "public"
    (root / "docs").mkdir(parents=True)
    (root / "hello.txt").write_text("hello, world\n")
    (root / "data.json").write_text('{"a": 1}')
    (root / "app.js").write_text("console.log(1)")
    (root / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (root / "archive.tar.gz").write_bytes(b"\x1f\x8b")
    (root / "docs" / "index.html").write_text("<p>docs</p>")
    (root / ".env").write_text("TOKEN=x")
    (root / "empty.txt").write_bytes(b"")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (root / "link-out").symlink_to(tmp_path)  # a directory outside
    (root / "secret-link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "inside-link.txt").symlink_to(root / "hello.txt")  # stays inside: fine
    return root


def make_app(root: Path, index: bool = False) -> App:
    app = App()
    app.static("/static", root, index=index)
    return app


def test_files_with_types_and_validators(site: Path) -> None:
    with TestClient(make_app(site)) as client:
        text = client.get("/static/hello.txt")
        js = client.get("/static/app.js")
        data = client.get("/static/data.json")
        binary = client.get("/static/blob.bin")
        gz = client.get("/static/archive.tar.gz")
        empty = client.get("/static/empty.txt")
        linked = client.get("/static/inside-link.txt")
    assert text.status_code == 200 and text.text == "hello, world\n"
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.headers["content-length"] == "13"
    assert text.headers["accept-ranges"] == "bytes"
    assert text.headers["cache-control"] == "no-cache"
    assert text.headers["etag"].startswith('"') and text.headers["last-modified"].endswith("GMT")
    assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert data.headers["content-type"] == "application/json"
    assert binary.headers["content-type"] == "application/octet-stream"
    assert binary.content == bytes(range(256)) * 4
    assert gz.headers["content-type"] == "application/octet-stream"
    assert empty.status_code == 200 and empty.content == b""
    assert linked.text == "hello, world\n"


def test_conditional_requests(site: Path) -> None:
    with TestClient(make_app(site)) as client:
        first = client.get("/static/hello.txt")
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        by_tag = client.get("/static/hello.txt", headers={"if-none-match": etag})
        by_weak_tag = client.get("/static/hello.txt", headers={"if-none-match": f'"x", W/{etag}'})
        by_star = client.get("/static/hello.txt", headers={"if-none-match": "*"})
        other_tag = client.get("/static/hello.txt", headers={"if-none-match": '"other"'})
        by_date = client.get("/static/hello.txt", headers={"if-modified-since": modified})
        old_date = client.get(
            "/static/hello.txt", headers={"if-modified-since": "Mon, 01 Jan 2001 00:00:00 GMT"}
        )
        bad_date = client.get("/static/hello.txt", headers={"if-modified-since": "yesterday"})
        # If-None-Match wins over If-Modified-Since
        both = client.get(
            "/static/hello.txt", headers={"if-none-match": '"other"', "if-modified-since": modified}
        )
        os.utime(site / "hello.txt", (1_000_000_000, 1_000_000_000))
        changed = client.get("/static/hello.txt", headers={"if-none-match": etag})
    for response in (by_tag, by_weak_tag, by_star, by_date):
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == etag
    for response in (other_tag, old_date, bad_date, both):
        assert response.status_code == 200 and response.text == "hello, world\n"
    assert changed.status_code == 200 and changed.headers["etag"] != etag


@pytest.mark.parametrize(
    ("header", "status", "body", "content_range"),
    [
        ("bytes=0-4", 206, b"hello", "bytes 0-4/13"),
        ("bytes=7-", 206, b"world\n", "bytes 7-12/13"),
        ("bytes=-6", 206, b"world\n", "bytes 7-12/13"),
        ("bytes=-100", 206, b"hello, world\n", "bytes 0-12/13"),
        ("bytes=7-1000", 206, b"world\n", "bytes 7-12/13"),
        ("bytes=13-", 416, b"", "bytes */13"),
        ("bytes=100-200", 416, b"", "bytes */13"),
        ("bytes=-0", 416, b"", "bytes */13"),
        ("bytes=0-1,3-4", 200, b"hello, world\n", None),  # several: the whole file
        ("bytes=5-2", 200, b"hello, world\n", None),  # malformed: ignored
        ("bytes=x-y", 200, b"hello, world\n", None),
        ("lines=0-1", 200, b"hello, world\n", None),
    ],
)
def test_ranges(
    site: Path, header: str, status: int, body: bytes, content_range: str | None
) -> None:
    with TestClient(make_app(site)) as client:
        response = client.get("/static/hello.txt", headers={"range": header})
    assert response.status_code == status
    if status != 416:
        assert response.content == body
        assert response.headers["content-length"] == str(len(body))
    assert response.headers.get("content-range") == content_range


def test_if_range(site: Path) -> None:
    with TestClient(make_app(site)) as client:
        etag = client.get("/static/hello.txt").headers["etag"]
        fresh = client.get("/static/hello.txt", headers={"range": "bytes=0-4", "if-range": etag})
        stale = client.get("/static/hello.txt", headers={"range": "bytes=0-4", "if-range": '"old"'})
    assert fresh.status_code == 206 and fresh.content == b"hello"
    assert stale.status_code == 200 and stale.content == b"hello, world\n"


def test_head_index_and_misses(site: Path) -> None:
    with TestClient(make_app(site, index=True)) as client:
        head = client.head("/static/hello.txt")
        index = client.get("/static/docs/")
        index_no_slash = client.get("/static/docs")
        missing = client.get("/static/nope.txt")
        posted = client.post("/static/hello.txt")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "13"
    assert index.text == "<p>docs</p>" and index.headers["content-type"].startswith("text/html")
    assert index_no_slash.text == "<p>docs</p>"
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert posted.status_code == 405
    with TestClient(make_app(site)) as client:
        assert client.get("/static/docs/").status_code == 404  # no index unless asked


ESCAPES = [
    "/static/../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt",
    "/static/..%2fsecret.txt",
    "/static/%2e%2e%2fsecret.txt",
    "/static/docs/../../secret.txt",
    "/static/docs/%2e%2e/%2e%2e/secret.txt",
    "/static/..%5csecret.txt",
    "/static/link-out/secret.txt",
    "/static/secret-link.txt",
    "/static/hello.txt%00.png",
    "/static/%00",
    "/static/.env",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
]


def test_no_way_out_in_process(site: Path) -> None:
    with TestClient(make_app(site)) as client:
        for path in ESCAPES:
            response = client.get(unquote(path))  # as a server hands it over: decoded
            assert response.status_code == 404, path
            assert SECRET not in response.content
            assert b"TOKEN" not in response.content


def test_configuration(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        App().static("/static", tmp_path / "missing")
    assert App().static("/s", tmp_path, hidden=True).hidden


def raw_get(server: Server, target: str) -> tuple[int, bytes]:
    """GET `target` sent byte for byte (no client normalises it); (status, whole answer)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


@pytest.fixture(params=["granian-rsgi", "uvicorn"])
def served_site(request: pytest.FixtureRequest, site: Path, tmp_path: Path) -> Iterator[Server]:
    module = tmp_path / "static_app.py"
    module.write_text(
        f"from shoal import App\napp = App()\napp.static('/static', {str(site)!r}, index=True)\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{Path(__file__).resolve().parent.parent}"}
    with running_server(request.param, "static_app:app", env=env) as server:
        yield server


def test_over_http(served_site: Server, site: Path) -> None:
    big = site / "big.bin"
    big.write_bytes(os.urandom(1024 * 1024 + 7))  # streamed in chunks, length declared
    with httpx.Client(base_url=served_site.url, timeout=10) as client:
        hello = client.get("/static/hello.txt")
        assert hello.text == "hello, world\n"
        again = client.get("/static/hello.txt", headers={"if-none-match": hello.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        part = client.get("/static/hello.txt", headers={"range": "bytes=7-"})
        assert part.status_code == 206 and part.content == b"world\n"
        assert client.get("/static/hello.txt", headers={"range": "bytes=50-"}).status_code == 416
        whole = client.get("/static/big.bin")
        assert whole.content == big.read_bytes()
        assert whole.headers["content-length"] == str(1024 * 1024 + 7)
        tail = client.get("/static/big.bin", headers={"range": "bytes=-7"})
        assert tail.content == big.read_bytes()[-7:]
        assert client.get("/static/").status_code == 404  # index=True, but no index.html there
        assert client.get("/static/docs/").text == "<p>docs</p>"
    for target in ESCAPES:
        status, answer = raw_get(served_site, target)
        assert status in (400, 404), (target, answer[:200])
        assert SECRET not in answer and b"TOKEN" not in answer


def test_the_example_site() -> None:
    from examples import static_site

    with TestClient(static_site.app) as client:
        page = client.get("/site/")
        css = client.get("/site/style.css")
        api = client.get("/api/status")
        document = static_site.app.openapi()
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "app.static" in page.text
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert api.json() == {"status": "ok"}
    assert list(document["paths"]) == ["/api/status"]  # files are no API operations
