"""CORS: the rules in process, then real cross-origin fetches from headless Chromium."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shoal import CORS, App, ConfigurationError, HTTPError
from shoal.testing import TestClient
from tests.openapi.test_docs import CHROMIUM, CHROMIUM_ARGS
from tests.servers import Server, free_port, running_server

ORIGIN = "https://app.example.org"


def make_app(**options: Any) -> App:
    app = App()

    @app.get("/items")
    async def items() -> list[int]:
        return [1, 2]

    @app.get("/secret")
    async def secret() -> None:
        raise HTTPError(401, "who are you?")

    options.setdefault("allow_origins", [ORIGIN])
    app.add_middleware(CORS(**options))
    return app


def preflight(client: TestClient, origin: str, method: str, headers: str = "") -> Any:
    asked = {"origin": origin, "access-control-request-method": method}
    if headers:
        asked["access-control-request-headers"] = headers
    return client.request("OPTIONS", "/items", headers=asked)


def cors_headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def test_a_preflight_from_an_allowed_origin_is_answered_per_fetch() -> None:
    app = make_app(allow_headers=["X-Token", "content-type"], allow_credentials=True, max_age=60)
    with TestClient(app) as client:
        response = preflight(client, ORIGIN, "PUT", "x-token, Content-Type")
    assert response.status_code == 204
    assert response.content == b""
    assert cors_headers(response) == {
        "access-control-allow-origin": ORIGIN,
        "access-control-allow-methods": "GET, HEAD, POST, PUT, PATCH, DELETE",
        "access-control-allow-headers": "x-token, content-type",
        "access-control-allow-credentials": "true",
        "access-control-max-age": "60",
    }
    assert response.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    ("origin", "method", "headers", "why"),
    [
        ("https://evil.example.org", "GET", "", "origin 'https://evil.example.org'"),
        ("https://app.example.org.evil.net", "GET", "", "is not allowed"),  # no prefix match
        ("http://app.example.org", "GET", "", "is not allowed"),  # scheme counts
        ("https://app.example.org:8443", "GET", "", "is not allowed"),  # port counts
        ("null", "GET", "", "origin 'null'"),
        (ORIGIN, "DELETE", "", "method 'DELETE'"),
        (ORIGIN, "GET", "x-token, x-admin", "x-admin"),
    ],
)
def test_a_refused_preflight_gets_403_and_no_cors_header(
    origin: str, method: str, headers: str, why: str
) -> None:
    app = make_app(allow_methods=["GET", "PUT"], allow_headers=["x-token"])
    with TestClient(app) as client:
        response = preflight(client, origin, method, headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert why in response.json()["detail"]
    assert cors_headers(response) == {}


def test_actual_requests_get_the_origin_back_only_when_allowed() -> None:
    app = make_app(allow_credentials=True, expose_headers=["X-Request-ID", "Content-Type"])
    with TestClient(app) as client:
        allowed = client.get("/items", headers={"origin": ORIGIN})
        refused = client.get("/items", headers={"origin": "https://evil.example.org"})
        no_origin = client.get("/items")
        error = client.get("/secret", headers={"origin": ORIGIN})
    assert allowed.status_code == 200 and allowed.json() == [1, 2]
    assert cors_headers(allowed) == {
        "access-control-allow-origin": ORIGIN,
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "x-request-id",  # content-type is safelisted
    }
    assert refused.status_code == 200 and cors_headers(refused) == {}
    assert cors_headers(no_origin) == {}
    for response in (allowed, refused, no_origin):
        assert response.headers["vary"] == "Origin"
    assert error.status_code == 401
    assert error.headers["access-control-allow-origin"] == ORIGIN


def test_any_origin_answers_star_and_does_not_vary() -> None:
    app = make_app(allow_origins=["*"], allow_headers=["*"], allow_methods=["*"])
    with TestClient(app) as client:
        response = client.get("/items", headers={"origin": "https://anywhere.example"})
        pre = preflight(client, "https://anywhere.example", "PATCH", "x-one, x-two")
    assert response.headers["access-control-allow-origin"] == "*"
    assert "vary" not in response.headers
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "*"
    assert pre.headers["access-control-allow-methods"] == "PATCH"
    assert pre.headers["access-control-allow-headers"] == "x-one, x-two"


def test_an_existing_vary_is_extended_not_repeated() -> None:
    app = App()

    @app.get("/v")
    async def varied() -> Any:
        from shoal import JSONResponse

        return JSONResponse([], headers={"vary": "Accept-Encoding, origin"})

    app.add_middleware(CORS(allow_origins=[ORIGIN]))
    with TestClient(app) as client:
        assert client.get("/v").headers["vary"] == "Accept-Encoding, origin"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"allow_origins": ["*"], "allow_credentials": True}, "with allow_credentials=True"),
        ({"allow_origins": ["https://app.example.org/"]}, "is not an origin"),
        ({"allow_origins": ["app.example.org"]}, "is not an origin"),
        ({"allow_origins": ["https://app.example.org/path"]}, "is not an origin"),
        ({"allow_origins": ["ftp://app.example.org"]}, "is not an origin"),
        ({"allow_origins": ["https://app.example.org:99999"]}, "invalid port"),
        ({"allow_origins": []}, "is empty"),
        ({"allow_origins": ORIGIN}, "not one string"),
        ({"allow_origins": ["*", ORIGIN]}, "already allows"),
        ({"allow_origins": [ORIGIN], "max_age": -1}, "max_age"),
    ],
)
def test_bad_configurations_are_refused_at_once(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CORS(**options)


def test_configured_origins_are_normalised_to_lower_case() -> None:
    assert CORS(allow_origins=["HTTPS://App.Example.org"]).allows_origin(ORIGIN)


# -- a real browser -------------------------------------------------------------

PAGE = b"<!doctype html><title>page</title><p>a page on another origin</p>"


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_port() -> Iterator[int]:
    """A page server on another port: the origin the scripts run in."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def api(page_port: int) -> Iterator[Server]:
    env = {"CORS_ORIGINS": f"http://127.0.0.1:{page_port}"}
    with running_server("granian-rsgi", "examples.cors_service:app", env=env) as server:
        yield server


FETCH = """
async ([url, init]) => {
    try {
        const response = await fetch(url, init);
        return {status: response.status, body: await response.json(),
                id: response.headers.get("x-request-id")};
    } catch (error) {
        return {error: String(error)};
    }
}
"""


def test_cross_origin_fetch_in_chromium(api: Server, page_port: int) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it")
    from playwright.sync_api import sync_playwright

    put = {
        "method": "PUT",
        "headers": {"content-type": "application/json", "x-token": "t1"},
        "body": '{"text": "from the browser"}',
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            # the allowed origin: a simple GET, then a PUT the browser preflights
            page.goto(f"http://127.0.0.1:{page_port}/", timeout=20_000)
            got = page.evaluate(FETCH, [f"{api.url}/notes/1", {}])
            assert got["status"] == 200 and got["body"] == {"id": 1, "text": "first"}
            assert got["id"]  # exposed to the script
            written = page.evaluate(FETCH, [f"{api.url}/notes/2", put])
            assert written == {
                "status": 200,
                "body": {"id": 2, "text": "from the browser", "by": "t1"},
                "id": written["id"],
            }
            # a method the preflight refuses
            deleted = page.evaluate(FETCH, [f"{api.url}/notes/2", {"method": "DELETE"}])
            assert "Failed to fetch" in deleted["error"]
            # localhost is another origin than 127.0.0.1: refused, GET and PUT alike
            page.goto(f"http://localhost:{page_port}/", timeout=20_000)
            refused = page.evaluate(FETCH, [f"{api.url}/notes/1", {}])
            assert "Failed to fetch" in refused["error"]
            refused = page.evaluate(FETCH, [f"{api.url}/notes/3", put])
            assert "Failed to fetch" in refused["error"]
        finally:
            browser.close()
    # the refused PUT never reached the handler: its preflight was answered 403
    assert httpx.get(f"{api.url}/notes/3").json() == {"id": 3, "text": ""}
    assert httpx.get(f"{api.url}/notes/2").json() == {"id": 2, "text": "from the browser"}
