"""App core: middleware, lifespan, planning errors, the never-raising `handle`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from shoal import App, ConfigurationError, Handler, Lifecycle, Request, Response, StartupError
from shoal.testing import TestClient


def test_middleware_wraps_in_order_and_is_composed_once() -> None:
    calls: list[str] = []
    built: list[str] = []

    def tag(name: str) -> Any:
        def middleware(next_handler: Handler) -> Handler:
            built.append(name)

            async def handle(request: Request) -> Response:
                calls.append(f"{name}>")
                response = await next_handler(request)
                response.headers.append(("x-mw", name))
                calls.append(f"<{name}")
                return response

            return handle

        return middleware

    app = App(middleware=[tag("inner")])
    app.add_middleware(tag("outer"))

    @app.get("/")
    async def index() -> dict[str, int]:
        calls.append("handler")
        return {"ok": 1}

    with TestClient(app) as client:
        first = client.get("/")
        client.get("/")
    assert built == ["inner", "outer"]  # composed once, at startup
    assert calls[:5] == ["outer>", "inner>", "handler", "<inner", "<outer"]
    assert first.headers.getall("x-mw") == ["inner", "outer"]


def test_middleware_sees_error_responses_and_its_own_errors_are_500() -> None:
    statuses: list[int] = []

    def record(next_handler: Handler) -> Handler:
        async def handle(request: Request) -> Response:
            if request.path == "/mw-boom":
                raise RuntimeError("middleware bug")
            response = await next_handler(request)
            statuses.append(response.status)
            return response

        return handle

    app = App(middleware=[record])

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("x")

    with TestClient(app) as client:
        assert client.get("/missing").status_code == 404
        assert client.get("/boom").status_code == 500
        assert client.get("/mw-boom").status_code == 500
    assert statuses == [404, 500]


class Resource:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def __aenter__(self) -> Resource:
        self.log.append(f"open {self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.log.append(f"close {self.name}")


def test_lifespan_order() -> None:
    log: list[str] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        log.append("lifespan enter")
        yield
        log.append("lifespan exit")

    app = App(lifespan=lifespan)
    app.use(Resource("a", log))
    app.use(Resource("b", log))
    app.on_startup(lambda: log.append("sync startup"))

    @app.on_startup
    async def started() -> None:
        log.append("async startup")

    @app.on_shutdown
    def stopped() -> None:
        log.append("shutdown")

    with TestClient(app):
        log.append("serving")
    assert log == [
        "open a",
        "open b",
        "lifespan enter",
        "sync startup",
        "async startup",
        "serving",
        "shutdown",
        "lifespan exit",
        "close b",
        "close a",
    ]


def test_failing_startup_closes_what_was_opened() -> None:
    log: list[str] = []
    app = App()
    app.use(Resource("pool", log))

    @app.on_startup
    async def fail() -> None:
        raise OSError("cannot reach the cache")

    with pytest.raises(StartupError, match="cannot reach the cache") as caught:
        TestClient(app).__enter__()
    assert isinstance(caught.value.__cause__, OSError)
    assert log == ["open pool", "close pool"]


def test_resources_are_injected_by_type() -> None:
    log: list[str] = []
    app = App()
    resource = app.use(Resource("db", log))

    @app.get("/")
    async def index(db: Resource) -> dict[str, str]:
        return {"name": db.name, "same": str(db is resource)}

    with TestClient(app) as client:
        assert client.get("/").json() == {"name": "db", "same": "True"}


@pytest.mark.parametrize(
    ("path", "handler_src", "message"),
    [
        ("/x", "def h(what: object): ...", "cannot tell where parameter 'what' \\(object\\) comes"),
        ("/x/{id}", "def h(): ...", "does not take the path parameter"),
        ("/x", "def h(*args): ...", "may not take"),
    ],
)
def test_planning_errors_at_registration(path: str, handler_src: str, message: str) -> None:
    namespace: dict[str, Any] = {}
    exec(handler_src, namespace)
    with pytest.raises(ConfigurationError, match=message):
        App().get(path)(namespace["h"])


def test_path_params_are_coerced_to_the_annotation() -> None:
    app = App()

    @app.get("/n/{n}")
    async def double(n: int) -> dict[str, int]:
        return {"double": n * 2}

    with TestClient(app) as client:
        assert client.get("/n/21").json() == {"double": 42}
        invalid = client.get("/n/abc")
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["loc"] == ["path", "n"]


class Client:
    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("204 No Content", [])
    return []


async def noop() -> None:
    return None


def provided() -> Client:
    return Client()


# every registration method, each called once the app has started
REGISTRATIONS: dict[str, Any] = {
    "route": lambda app: app.get("/late")(noop),
    "add_route": lambda app: app.add_route("/late", noop),
    "mount": lambda app: app.mount("/legacy", wsgi_app),
    "middleware": lambda app: app.add_middleware(lambda handler: handler),
    "startup hook": lambda app: app.on_startup(noop),
    "shutdown hook": lambda app: app.on_shutdown(noop),
    "provider": lambda app: app.provide(provided),
    "resource": lambda app: app.use(Client()),
}
WHAT = {
    "route": "add the route '/late'",
    "add_route": "add the route '/late'",
    "mount": "mount an app at '/legacy'",
    "middleware": "add middleware",
    "startup hook": "add a startup hook",
    "shutdown hook": "add a shutdown hook",
    "provider": "add a provider",
    "resource": "add a resource",
}


@pytest.mark.parametrize("kind", REGISTRATIONS)
def test_registering_after_start_is_refused_naming_what_and_why(kind: str) -> None:
    app = App()
    states = [app.lifecycle]
    REGISTRATIONS[kind](App())  # allowed before start
    with TestClient(app):
        states.append(app.lifecycle)
        with pytest.raises(ConfigurationError) as running:
            REGISTRATIONS[kind](app)
    states.append(app.lifecycle)
    assert states == [Lifecycle.REGISTERING, Lifecycle.RUNNING, Lifecycle.STOPPED]
    with pytest.raises(ConfigurationError) as stopped:
        REGISTRATIONS[kind](app)  # too late for good: the request path was built once
    for error in (running, stopped):
        message = str(error.value)
        assert message.startswith(f"cannot {WHAT[kind]} after the app has started"), message
        assert "request path is built once" in message


@pytest.mark.parametrize("kind", REGISTRATIONS)
def test_the_first_request_ends_registration_too(kind: str) -> None:
    app = App(openapi_url=None)
    asyncio.run(app.handle(Request("GET", "/")))  # served without startup: composed now
    assert app.lifecycle is Lifecycle.COMPOSED
    with pytest.raises(ConfigurationError, match="it is composed"):
        REGISTRATIONS[kind](app)


def test_overrides_change_only_while_the_app_is_not_running() -> None:
    app = App()
    app.provide(provided)
    with TestClient(app), pytest.raises(ConfigurationError, match="while the app is running"):
        app.override(provided, Client)
    with app.override(provided, Client):  # stopped: takes effect at the next startup
        pass


def test_a_mistyped_route_option_is_a_type_error_at_registration() -> None:
    app = App()
    with pytest.raises(TypeError, match=r"unknown option\(s\) 'stauts'.*status"):
        app.get("/x", stauts=201)(noop)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="invalid option"):
        app.get("/x", status="201")(noop)  # type: ignore[arg-type]
    assert app.endpoints == [e for e in app.endpoints if e.template != "/x"]  # nothing added


def test_sync_handlers_run_off_the_loop_thread() -> None:
    import threading

    app = App()

    @app.get("/where")
    def where() -> dict[str, bool]:
        return {"main": threading.current_thread() is threading.main_thread()}

    with TestClient(app) as client:
        assert client.get("/where").json() == {"main": False}
