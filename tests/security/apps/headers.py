"""One app, two faces: `/plain` bare, `/named*` behind `SecurityHeaders(server="runs")`."""

from shoal import App, Handler, Request, Response
from shoal.security import SecurityHeaders

named = SecurityHeaders(server="runs")
app = App(openapi_url=None)


def _middleware(call_next: Handler) -> Handler:
    secured = named(call_next)

    async def route(request: Request) -> Response:
        if request.path.startswith("/named"):
            return await secured(request)
        return await call_next(request)

    return route


app.add_middleware(_middleware)


@app.get("/plain")
async def plain() -> dict[str, bool]:
    return {"ok": True}


@app.get("/named")
async def named_route() -> dict[str, bool]:
    return {"ok": True}
