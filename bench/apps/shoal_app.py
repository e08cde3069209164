"""shoal, served by `shoal run` (granian, RSGI): the framework under test.

`build()` makes the app every shoal row of the bench serves; the variants
(`shoal_no_watchdog`, `shoal_untyped`) call it with one setting changed, so a
variant differs from `app` in that setting alone.
"""

import time
from typing import Any

from shoal import App, Request, Response

from . import PLAINTEXT, SLEEP, SYNC_THREADS


def build(*, typed: bool = True, **options: Any) -> App:
    """The bench app; `typed=False` serves `/items` by reading the request by hand."""
    app = App(threads=SYNC_THREADS, **options)

    @app.get("/json")
    async def json() -> dict[str, str]:
        return {"message": "Hello, World!"}

    @app.get("/plaintext")
    async def plaintext() -> Response:
        return Response(PLAINTEXT, media_type="text/plain")

    @app.get("/")
    async def now() -> dict[str, float]:
        return {"time": time.time()}

    @app.get("/users/{id:int}")
    async def user(id: int, request: Request) -> dict[str, object]:
        return {"id": id, "q": request.query.get("q")}

    @app.get("/sync")
    def sync_io() -> dict[str, float]:
        time.sleep(SLEEP)  # a blocking library call: shoal runs plain `def` handlers in its pool
        return {"slept": SLEEP}

    if typed:

        @app.get("/items/{item_id:int}")
        async def typed_item(
            item_id: int, limit: int = 20, offset: int = 0, q: str = ""
        ) -> dict[str, object]:
            return {"id": item_id, "limit": limit, "offset": offset, "q": q}

    else:

        @app.get("/items/{item_id:int}")
        async def untyped_item(item_id: int, request: Request) -> dict[str, object]:
            # the path parameter comes the same way (shoal requires a handler to
            # take it); the query is read and converted by hand
            query = request.query
            return {
                "id": item_id,
                "limit": int(query.get("limit", "20")),
                "offset": int(query.get("offset", "0")),
                "q": query.get("q", ""),
            }

    return app


app = build()
