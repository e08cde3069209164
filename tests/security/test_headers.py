"""SecurityHeaders: an API's defaults, on a real server too (granian's Server header)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from shoal import App, HTTPError, Response
from shoal.security import SecurityHeaders
from shoal.testing import TestClient
from tests.servers import Server, running_server


def build(**options: object) -> App:
    app = App(middleware=[SecurityHeaders(**options)])  # type: ignore[arg-type]

    @app.get("/public")
    async def public() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/cached")
    async def cached() -> Response:
        headers = {"cache-control": "max-age=60"}
        return Response(b"{}", headers=headers, media_type="application/json")

    @app.get("/fail")
    async def fail() -> None:
        raise HTTPError(409, "no")

    return app


def test_defaults() -> None:
    with TestClient(build()) as client:
        ok = client.get("/public")
        error = client.get("/fail")
        authed = client.get("/public", headers={"authorization": "Bearer x"})
        own = client.get("/cached", headers={"authorization": "Bearer x"})
        missing = client.get("/nowhere")
    for response in (ok, error, authed, missing):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in response.headers
    assert "cache-control" not in ok.headers
    assert error.headers["cache-control"] == "no-store"
    assert missing.headers["cache-control"] == "no-store"
    assert authed.headers["cache-control"] == "no-store"
    assert own.headers.getall("cache-control") == ["max-age=60"]


def test_hsts_when_asked_and_the_rest_configurable() -> None:
    app = build(
        hsts=31_536_000,
        hsts_subdomains=True,
        referrer_policy=None,
        nosniff=False,
        extra={"X-Frame-Options": "DENY"},
    )
    with TestClient(app) as client:
        response = client.get("/public")
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "referrer-policy" not in response.headers
    assert "x-content-type-options" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server("granian-rsgi", "tests.security.apps.headers:app") as server:
        yield server


def test_server_header_on_granian(server: Server) -> None:
    with urllib.request.urlopen(f"{server.url}/plain", timeout=10) as response:
        assert response.headers.get_all("server") == ["granian"]  # no version
    with urllib.request.urlopen(f"{server.url}/named", timeout=10) as response:
        assert response.headers.get_all("server") == ["runs"]
        assert response.headers["x-content-type-options"] == "nosniff"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{server.url}/named-missing", timeout=10)
    with caught.value as error:
        assert error.headers.get_all("server") == ["runs"]
        assert error.headers["cache-control"] == "no-store"
