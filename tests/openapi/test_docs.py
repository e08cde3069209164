"""The /docs page: shipped assets, and Swagger UI driven in a real headless Chromium.

Chromium is Debian's (`make test` installs it); Playwright drives it through
`executable_path`, so no browser is downloaded. The page runs against a real
server started with `shoal run`, with nothing reachable but loopback.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal import App
from shoal.openapi.docs import ASSETS, asset, docs_page
from shoal.testing import TestClient
from tests.servers import Server, running_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.parametrize(("name", "media_type"), sorted(ASSETS.items()))
def test_assets_ship_in_the_package_and_are_served(name: str, media_type: str) -> None:
    content = asset(name)
    assert len(content) > 10_000
    with TestClient(App()) as client:
        response = client.get(f"/docs/{name}")
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"].startswith(media_type)
    assert "max-age" in response.headers["cache-control"]


def test_the_page_points_at_local_assets_only() -> None:
    page = docs_page('a <b> "title"', "/api/openapi.json", "/api/docs/")
    assert "a &lt;b&gt; &quot;title&quot;" in page
    assert 'href="/api/docs/swagger-ui.css"' in page
    assert 'src="/api/docs/swagger-ui-bundle.js"' in page
    assert 'url: "/api/openapi.json"' in page
    assert "http" not in page  # no CDN, nothing off the machine


def test_docs_page_is_html() -> None:
    with TestClient(App(title="t")) as client:
        response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>t - API</title>" in response.text


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server("granian-rsgi", "examples.users_service:app") as server:
        yield server


def post_json(url: str, data: Any) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(data).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_swagger_ui_lists_the_routes_and_tries_one_out(server: Server) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it")
    from playwright.sync_api import sync_playwright

    name = f"ada-{uuid.uuid4().hex[:8]}"
    created = post_json(f"{server.url}/users", {"name": name, "email": "ada@example.org"})
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{server.url}/docs", timeout=20_000)
            page.wait_for_selector(".opblock", timeout=20_000)
            listed = list(
                zip(
                    page.locator(".opblock-summary-method").all_inner_texts(),
                    page.locator(".opblock-summary-path").all_inner_texts(),
                    strict=True,
                )
            )
            assert listed == [
                ("GET", "/users"),
                ("POST", "/users"),
                ("GET", "/users/{user_id}"),
                ("PUT", "/users/{user_id}"),
                ("DELETE", "/users/{user_id}"),
            ]
            operation = page.locator("#operations-users-get_user")
            operation.locator(".opblock-summary").click()
            operation.locator("button.try-out__btn").click()
            operation.locator("input[placeholder='user_id']").fill(str(created["id"]))
            operation.locator("button.execute").click()
            status = operation.locator(".live-responses-table tbody .response-col_status")
            status.wait_for(timeout=10_000)
            assert status.inner_text().strip() == "200"
            body = operation.locator(".live-responses-table tbody .microlight").first
            assert json.loads(body.inner_text()) == created
        finally:
            browser.close()
    assert all(url.startswith(server.url) for url in requested), requested
    assert f"{server.url}/users/{created['id']}" in requested
