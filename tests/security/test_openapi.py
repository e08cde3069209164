"""Security in the OpenAPI document, and the /docs page's Authorize button in real Chromium."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from examples import secured_service
from tests.openapi.test_docs import CHROMIUM, CHROMIUM_ARGS
from tests.servers import Server, running_server

from .tokens import ISSUER, public_jwks, rsa_key, sign

KEY = rsa_key("docs-key")


def test_the_document_lists_schemes_and_each_operations_requirements() -> None:
    document = secured_service.app.openapi()
    validate(document)
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    paths = document["paths"]
    assert paths["/runs"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/runs"]["post"]["security"] == [{"bearerAuth": ["runs:write"]}]
    assert paths["/admin/stats"]["get"]["security"] == [{"apiKeyAuth": []}]
    assert "security" not in paths["/status"]["get"]
    assert "401" in paths["/runs"]["get"]["responses"]
    assert "403" not in paths["/runs"]["get"]["responses"]
    assert "403" in paths["/runs"]["post"]["responses"]
    assert "401" not in paths["/status"]["get"]["responses"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    jwks: Path = tmp_path_factory.mktemp("idp") / "jwks.json"
    jwks.write_text(json.dumps(public_jwks(KEY)))
    with running_server(
        "granian-rsgi", "tests.security.apps.idp:app", env={"SHOAL_TEST_JWKS": str(jwks)}
    ) as idp:
        env = {"RUNS_JWKS_URL": f"{idp.url}/.well-known/jwks.json", "RUNS_ISSUER": ISSUER}
        with running_server("granian-rsgi", "examples.secured_service:app", env=env) as server:
            yield server


def call(url: str, method: str = "GET", token: str | None = None, body: Any = None) -> int:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        with error:
            return error.code


def test_the_example_service_over_http(service: Server) -> None:
    reader = sign(KEY, aud="runs", sub="reader", scope="runs:read")
    writer = sign(KEY, aud="runs", sub="writer", scope="runs:write")
    assert call(f"{service.url}/runs") == 401
    assert call(f"{service.url}/runs", token=reader) == 200
    assert call(f"{service.url}/runs", "POST", reader, {"name": "a"}) == 403
    codes = [call(f"{service.url}/runs", "POST", writer, {"name": "a"}) for _ in range(8)]
    assert codes[:5] == [201] * 5 and 429 in codes[5:]  # bursts of 5, then 1 a second
    assert call(f"{service.url}/status") == 200


def test_authorize_in_swagger_ui(service: Server) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it")
    from playwright.sync_api import sync_playwright

    token = sign(KEY, aud="runs", sub="swagger", scope="runs:read")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{service.url}/docs", timeout=20_000)
            page.wait_for_selector(".opblock", timeout=20_000)
            operation = page.locator("#operations-runs-list_runs")
            operation.locator(".opblock-summary").click()
            operation.locator("button.try-out__btn").click()
            status = operation.locator(".live-responses-table tbody .response-col_status")

            operation.locator("button.execute").click()  # not authorized yet
            status.wait_for(timeout=10_000)
            assert status.inner_text().strip().startswith("401")

            page.locator(".auth-wrapper button.authorize").click()
            dialog = page.locator(".dialog-ux")
            bearer_form = dialog.locator(".auth-container").filter(has_text="bearerAuth")
            bearer_form.locator("input").fill(token)
            bearer_form.locator("button.authorize").click()
            dialog.locator("button.btn-done").first.click()

            operation.locator("button.btn-clear").click()
            operation.locator("button.execute").click()
            status.wait_for(timeout=10_000)
            assert status.inner_text().strip() == "200"
        finally:
            browser.close()
