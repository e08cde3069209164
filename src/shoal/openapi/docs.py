"""The interactive API page: Swagger UI, served from files shipped inside the package.

No CDN: `swagger-ui-bundle.js` and `swagger-ui.css` (swagger-ui-dist, Apache
2.0; see `static/LICENSE` and `static/NOTICE`) are package data, read once
on first use and served with a long cache lifetime, so the page works on a
machine with no internet access.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import msgspec

from ..responses import JSON, Response

if TYPE_CHECKING:
    from ..app import App

__all__ = ["ASSETS", "docs_page", "install"]

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API</title>
<link rel="stylesheet" href="{base}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: {openapi_url},
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
</script>
</body>
</html>
"""


@cache
def asset(name: str) -> bytes:
    """The bytes of a shipped Swagger UI file (read once)."""
    return resources.files(__package__).joinpath("static", name).read_bytes()


def docs_page(title: str, openapi_url: str, docs_url: str) -> str:
    """The HTML of the docs page for an app titled `title`."""
    return _PAGE.format(
        title=html.escape(title),
        base=html.escape(docs_url.rstrip("/")),
        openapi_url=json.dumps(openapi_url).replace("<", "\\u003c"),
    )


def install(app: App, openapi_url: str, docs_url: str | None) -> None:
    """Route `openapi_url` to the app's OpenAPI document and `docs_url` to Swagger UI."""
    document: list[bytes] = []

    async def openapi_document() -> Response:
        if not document:
            document.append(msgspec.json.encode(app.openapi()))
        return Response(document[0], media_type=JSON)

    openapi_document.__qualname__ = "shoal.openapi_document"
    app.add_route(openapi_url, openapi_document, include_in_schema=False)
    if docs_url is None:
        return
    page = docs_page(app.title, openapi_url, docs_url).encode()

    async def docs() -> Response:
        return Response(page, media_type="text/html")

    docs.__qualname__ = "shoal.docs_page"
    app.add_route(docs_url, docs, include_in_schema=False)
    base = docs_url.rstrip("/")
    for name, media_type in ASSETS.items():
        app.add_route(f"{base}/{name}", _asset_handler(name, media_type), include_in_schema=False)


def _asset_handler(name: str, media_type: str) -> Callable[[], Awaitable[Response]]:
    async def static_asset() -> Response:
        return Response(
            asset(name), media_type=media_type, headers={"cache-control": "public, max-age=86400"}
        )

    static_asset.__qualname__ = static_asset.__name__ = f"shoal.static:{name}"
    return static_asset
