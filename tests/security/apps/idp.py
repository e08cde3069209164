"""An identity provider's JWKS endpoint, served by `shoal run` for the JWKS tests.

It answers `/.well-known/jwks.json` with the file named by `SHOAL_TEST_JWKS`,
read on every request, so a test rotates keys by rewriting the file.
"""

import os
from pathlib import Path

from shoal import App, Response

app = App(openapi_url=None)


@app.get("/.well-known/jwks.json")
async def jwks() -> Response:
    body = Path(os.environ["SHOAL_TEST_JWKS"]).read_bytes()
    return Response(body, media_type="application/json")
