"""`app.static(..., native=True)`: granian's own handler under `shoal run`, shoal elsewhere."""

from __future__ import annotations

import hashlib
import os
import socket
import textwrap
from pathlib import Path

import httpx
import pytest

from shoal import App, ConfigurationError
from shoal.cli import main
from tests.servers import ROOT, running_server

SECRET = b"the secret beside the static directory"
TARGET = "tests.apps.static_native:app"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "public"
    (root / "docs").mkdir(parents=True)
    (root / "hello.txt").write_text("hello, world\n")
    (root / "app.js").write_text("console.log(1)")
    (root / "docs" / "index.html").write_text("<p>docs</p>")
    (root / "big.bin").write_bytes(os.urandom(1 << 20))
    (tmp_path / "secret.txt").write_bytes(SECRET)
    # a sibling whose name starts like the directory's: a prefix check on strings would let it out
    (tmp_path / "public-private").mkdir()
    (tmp_path / "public-private" / "key.txt").write_bytes(SECRET)
    (root / "secret-link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "sibling-link.txt").symlink_to(tmp_path / "public-private" / "key.txt")
    (root / "link-out").symlink_to(tmp_path)
    return root


def _raw_get(url: str, path: str) -> bytes:
    """A GET with the path sent byte for byte (no client normalises it)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_the_example_under_shoal_run() -> None:
    page = (ROOT / "examples" / "static" / "index.html").read_text()
    with running_server("granian-rsgi", "examples.static_native:app") as server:
        index = httpx.get(f"{server.url}/assets/")
        status = httpx.get(f"{server.url}/api/status")
    assert (index.status_code, index.text) == (200, page)
    assert index.headers["cache-control"] == "max-age=3600"
    assert "x-request-id" not in index.headers  # granian's answer
    assert status.json() == {"status": "ok"} and "x-request-id" in status.headers


def test_shoal_run_serves_native_directories_through_granian(site: Path) -> None:
    env = {"SHOAL_TEST_STATIC_DIR": str(site)}
    with running_server("granian-rsgi", TARGET, env=env) as server, httpx.Client() as client:
        native = client.get(f"{server.url}/native/hello.txt")
        python = client.get(f"{server.url}/python/hello.txt")
        assert native.status_code == python.status_code == 200
        assert native.text == python.text == "hello, world\n"
        # granian answered: none of the app's headers (every app answer has a request id)
        assert "x-request-id" not in native.headers and "etag" not in native.headers
        assert "x-request-id" in python.headers and "etag" in python.headers
        assert native.headers["cache-control"] == python.headers["cache-control"] == "max-age=60"
        assert native.headers["content-type"].startswith("text/plain")
        script = client.get(f"{server.url}/native/app.js")
        assert script.headers["content-type"].startswith("text/javascript")
        docs = client.get(f"{server.url}/native/docs/")
        assert (docs.status_code, docs.text) == (200, "<p>docs</p>")
        big = client.get(f"{server.url}/native/big.bin")
        expected = hashlib.sha256((site / "big.bin").read_bytes()).hexdigest()
        assert hashlib.sha256(big.content).hexdigest() == expected
        assert client.get(f"{server.url}/native/missing.txt").status_code == 404
        # a route beside the prefix is still the app's
        assert client.get(f"{server.url}/native-other").json() == {"served_by": "app"}
        escapes = [
            "/native/../secret.txt",
            "/native/%2e%2e/secret.txt",
            "/native/..%2fsecret.txt",
            "/native/secret-link.txt",
            "/native/sibling-link.txt",
            "/native/link-out/secret.txt",
            "/native-private/key.txt",
            "/native/hello.txt%00",
        ]
        for path in escapes:
            answer = _raw_get(server.url, path)
            status = int(answer.split(b" ", 2)[1])
            assert status in (400, 404), (path, answer[:200])
            assert SECRET not in answer, path


def test_other_servers_serve_native_directories_in_python(site: Path) -> None:
    env = {"SHOAL_TEST_STATIC_DIR": str(site)}
    with running_server("uvicorn", "tests.apps.static_native:app", env=env) as server:
        answer = httpx.get(f"{server.url}/native/hello.txt", headers={"Range": "bytes=0-4"})
    assert (answer.status_code, answer.text) == (206, "hello")
    assert "etag" in answer.headers and "x-request-id" in answer.headers


def _write_target(folder: Path, name: str, body: str) -> str:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return f"{name}:app"


def test_shoal_run_refuses_what_granian_would_get_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    public = tmp_path / "public"
    (public / "assets").mkdir(parents=True)
    (public / "assets" / ".env").write_text("TOKEN=x")
    clean = tmp_path / "clean"
    clean.mkdir()
    monkeypatch.chdir(tmp_path)
    header = "from shoal import App\napp = App()\n"
    cases = {
        "hidden_entry": (
            header + "app.static('/s', 'public', native=True, cache_control=None)\n",
            "would serve hidden entries (assets/.env)",
        ),
        "shadowed_route": (
            header
            + "app.static('/s', 'clean', native=True, cache_control=None)\n"
            + "app.get('/s/health')(lambda: None)\n",
            "would shadow the route '/s/health'",
        ),
        "mixed_options": (
            header
            + "app.static('/a', 'clean', native=True, cache_control=None)\n"
            + "app.static('/b', 'clean', native=True, cache_control='max-age=5')\n",
            "same index and cache_control",
        ),
    }
    for name, (body, message) in cases.items():
        assert main(["run", _write_target(tmp_path, name, body), "--port", "1"]) == 2, name
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, (name, error)
    # hidden=True says the dotfiles are meant to be served: allowed
    app = App()
    files = app.static("/s", public, hidden=True, native=True, cache_control=None)
    assert files.hidden_entries() == ["assets/.env"]


def test_native_options_granian_cannot_honour_are_refused(tmp_path: Path) -> None:
    app = App()
    with pytest.raises(ConfigurationError, match="max-age=N"):
        app.static("/s", tmp_path, native=True)  # the default, no-cache, needs an ETag
    with pytest.raises(ConfigurationError, match="max-age=N"):
        app.static("/s", tmp_path, native=True, cache_control="public, max-age=60, immutable")
    with pytest.raises(ConfigurationError, match="need a prefix"):
        app.static("/", tmp_path, native=True, cache_control=None)
    files = app.static("/s", tmp_path, native=True, cache_control="max-age=3600")
    assert (files.native, files.max_age, files.hidden_entries()) == (True, 3600, [])
