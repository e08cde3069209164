"""An app behind `TrustedProxies(SHOAL_TEST_TRUSTED.split(","))` that echoes what it sees."""

import os

from shoal import App, Request
from shoal.security import TrustedProxies

trusted = os.environ["SHOAL_TEST_TRUSTED"].split(",")
app = App(openapi_url=None, middleware=[TrustedProxies(trusted)])


@app.get("/whoami")
async def whoami(request: Request) -> dict[str, object]:
    return {"client": request.client, "scheme": request.scheme, "host": request.host}
