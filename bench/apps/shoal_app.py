"""shoal, served by `shoal run` (granian, RSGI): the framework under test.

`build()` makes the app every shoal row of the bench serves; the variants
(`shoal_no_watchdog`, `shoal_untyped`) call it with one setting changed, so a
variant differs from `app` in that setting alone.
"""

import time
from typing import Any

import msgspec

from shoal import App, Request, Response

from . import PLAINTEXT, SLEEP, SYNC_THREADS


class BenchClaims(msgspec.Struct):
    """The claims the `auth-*` workloads' protected route needs."""

    sub: str


def build(
    *,
    typed: bool = True,
    auth: bool = False,
    jwt_cache: int = 10_000,
    rate_limited: bool = False,
    extra_routes: int = 0,
    **options: Any,
) -> App:
    """The bench app; `typed=False` serves `/items` by reading the request by hand,
    `auth` adds the `auth-*` workloads' routes (`jwt_cache=0`: every token's
    signature verified on every request), `rate_limited` puts the whole app
    under an (unreachable) in-process rate limit, `extra_routes` registers that
    many more dynamic routes (`/svc{i}/items/{item_id:int}`) before the `params`
    route.

    `shoal.security` is imported only by the variants that use it: its JOSE
    and cryptography libraries are about 12 MiB of a worker's memory, which
    an app without tokens does not carry (the peak-RSS row compares the
    plain app with bare granian's).
    """
    app = App(threads=SYNC_THREADS, **options)
    if rate_limited:  # every request pays the limiter; none is refused
        from shoal.security import Rate, RateLimit

        RateLimit(Rate(1e9, burst=10**9)).install(app)
    if auth:
        _add_auth(app, jwt_cache)

    @app.get("/json")
    async def json() -> dict[str, str]:
        return {"message": "Hello, World!"}

    @app.get("/plaintext")
    async def plaintext() -> Response:
        return Response(PLAINTEXT, media_type="text/plain")

    @app.get("/")
    async def now() -> dict[str, float]:
        return {"time": time.time()}

    for i in range(extra_routes):

        @app.get(f"/svc{i}/items/{{item_id:int}}", operation_id=f"svc{i}")
        async def extra(item_id: int) -> dict[str, int]:
            return {"id": item_id}

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


def _add_auth(app: App, jwt_cache: int) -> None:
    from shoal.security import JWTBearer

    from .auth import AUDIENCE, ISSUER, SUBJECT, public_jwks

    JWTBearer(
        BenchClaims,
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["RS256", "EdDSA"],
        keys=public_jwks(),
        cache_size=jwt_cache,
    ).install(app)

    @app.get("/open")
    async def open_route() -> dict[str, str]:
        return {"sub": SUBJECT}

    @app.get("/protected")
    async def protected(claims: BenchClaims) -> dict[str, str]:
        return {"sub": claims.sub}
