"""Providers: scopes, lifecycles, dependencies between them, overrides, cycles, app.call."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest

from shoal import App, ConfigurationError, Depends, HTTPError, Request, StartupError
from shoal.testing import AsyncTestClient, TestClient


class Settings:
    def __init__(self, name: str = "real") -> None:
        self.name = name


class Pool:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.closed = False


class Session:
    def __init__(self, pool: Pool, number: int) -> None:
        self.pool = pool
        self.number = number


class Database:
    """A resource given to app.use(): opened at startup, closed at shutdown."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def __aenter__(self) -> Database:
        self.log.append("db open")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.log.append("db close")


class A:
    pass


class B:
    pass


def make_app(log: list[str]) -> App:
    """App scope: Settings -> Pool; request scope: Session (a generator) from Pool + Request."""
    app = App(openapi_url=None)
    counter = iter(range(1, 1000))

    @app.provide(scope="app")
    def settings() -> Settings:
        log.append("settings")
        return Settings()

    @app.provide(scope="app")
    async def pool(settings: Settings) -> AsyncIterator[Pool]:
        log.append("pool open")
        pool = Pool(settings)
        yield pool
        pool.closed = True
        log.append("pool close")

    @app.provide
    async def session(pool: Pool, request: Request) -> AsyncIterator[Session]:
        number = next(counter)
        log.append(f"session {number} open for {request.path}")
        try:
            yield Session(pool, number)
        except Exception as exc:
            log.append(f"session {number} rollback: {exc}")
            raise
        else:
            log.append(f"session {number} commit")

    @app.get("/twice")
    async def twice(a: Session, b: Session, settings: Settings) -> dict[str, Any]:
        log.append("handler")
        return {"same": a is b, "number": a.number, "settings": settings.name}

    @app.get("/fail")
    async def fail(session: Session) -> None:
        raise HTTPError(409, "conflict")

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def test_app_scope_opens_at_startup_and_closes_at_shutdown_in_order() -> None:
    log: list[str] = []
    app = make_app(log)
    with TestClient(app) as client:
        assert log == ["settings", "pool open"]
        assert client.get("/plain").json() == {"ok": "yes"}
        assert log == ["settings", "pool open"]  # no request-scoped work for /plain
    assert log[-1] == "pool close"


def test_request_scope_is_shared_within_a_request_and_closed_after_it() -> None:
    log: list[str] = []
    app = make_app(log)
    with TestClient(app) as client:
        first = client.get("/twice").json()
        second = client.get("/twice").json()
    assert first == {"same": True, "number": 1, "settings": "real"}
    assert second["number"] == 2
    assert log[2:8] == [
        "session 1 open for /twice",
        "handler",
        "session 1 commit",
        "session 2 open for /twice",
        "handler",
        "session 2 commit",
    ]


def test_the_handlers_error_is_thrown_into_generator_providers() -> None:
    log: list[str] = []
    with TestClient(make_app(log)) as client:
        response = client.get("/fail")
    assert response.status_code == 409
    assert "session 1 rollback: conflict" in log
    assert "session 1 commit" not in log


def test_invalid_requests_do_not_create_request_scoped_values() -> None:
    log: list[str] = []
    app = make_app(log)

    @app.get("/items")
    async def items(limit: int, session: Session) -> int:
        return limit

    with TestClient(app) as client:
        assert client.get("/items?limit=x").status_code == 422
        assert client.get("/items?limit=3").json() == 3
    assert [line for line in log if "open for" in line] == ["session 1 open for /items"]


def test_sync_providers_run_in_the_thread_pool_and_sync_generators_clean_up() -> None:
    app = App(openapi_url=None)
    seen: dict[str, Any] = {}

    @app.provide
    def settings() -> Iterator[Settings]:
        seen["enter"] = threading.current_thread().name
        yield Settings("sync")
        seen["exit"] = threading.current_thread().name

    @app.get("/")
    async def handler(settings: Settings) -> str:
        return settings.name

    with TestClient(app) as client:
        assert client.get("/").json() == "sync"
    assert seen["enter"].startswith("shoal-sync")
    assert seen["exit"].startswith("shoal-sync")


def test_resources_are_app_scoped_providers_that_others_depend_on() -> None:
    log: list[str] = []
    app = App(openapi_url=None)
    db = app.use(Database(log))

    @app.provide(scope="app")
    async def settings(database: Database) -> Settings:
        log.append("settings from db")
        return Settings("from-db")

    @app.get("/")
    async def handler(database: Database, settings: Settings) -> dict[str, Any]:
        return {"same": database is db, "settings": settings.name}

    with TestClient(app) as client:
        assert client.get("/").json() == {"same": True, "settings": "from-db"}
    assert log == ["db open", "settings from db", "db close"]


async def current_user(request: Request) -> str:  # not registered: implicitly request-scoped
    token = request.headers.get("authorization")
    if token != "Bearer good":
        raise HTTPError(401, "Who are you?", headers={"www-authenticate": "Bearer"})
    return "ada"


def test_depends_names_a_provider_explicitly() -> None:
    app = App(openapi_url=None)

    @app.get("/me")
    async def me(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
        return {"user": user}

    with TestClient(app) as client:
        assert client.get("/me", headers={"Authorization": "Bearer good"}).json() == {"user": "ada"}
        denied = client.get("/me")
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("how", ["function", "type"])
def test_overrides_replace_providers_without_touching_handlers(how: str) -> None:
    log: list[str] = []
    app = make_app(log)
    original = next(p for p in app.container.providers if p.func.__name__ == "settings")
    target = original.func if how == "function" else Settings
    with app.override(target, lambda: Settings("fake")), TestClient(app) as client:
        assert client.get("/twice").json()["settings"] == "fake"
    assert "settings" not in log  # the real provider never ran
    log.clear()
    with TestClient(app) as client:  # the override was undone
        assert client.get("/twice").json()["settings"] == "real"


def test_an_overridden_resource_is_not_opened() -> None:
    log: list[str] = []
    app = App(openapi_url=None)
    app.use(Database(log))
    fake = Database(["fake"])

    @app.get("/")
    async def handler(database: Database) -> bool:
        return database is fake

    app.override(Database, fake)  # a plain value
    with TestClient(app) as client:
        assert client.get("/").json() is True
    assert log == []


def test_overriding_a_request_scoped_provider_with_a_generator() -> None:
    log: list[str] = []
    app = make_app(log)

    async def fake_session(pool: Pool) -> AsyncIterator[Session]:
        log.append("fake open")
        yield Session(pool, 99)
        log.append("fake close")

    app.override(Session, fake_session)
    with TestClient(app) as client:
        assert client.get("/twice").json()["number"] == 99
    assert "fake close" in log


def test_overrides_are_refused_while_running() -> None:
    app = make_app([])
    with TestClient(app), pytest.raises(ConfigurationError, match="while the app is running"):
        app.override(Settings, lambda: Settings("late"))


async def test_cycles_are_refused_at_startup() -> None:
    app = App(openapi_url=None)

    async def make_a(b: B) -> A:
        return A()

    async def make_b(a: A) -> B:
        return B()

    app.provide(make_a, provides=A)
    app.provide(make_b, provides=B)
    with pytest.raises(StartupError) as info:
        await app.startup()
    cause = info.value.__cause__
    assert isinstance(cause, ConfigurationError)
    assert "cycle" in str(cause)
    assert "make_a -> " in str(cause) and "make_b" in str(cause)


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("app_needs_request_scope", "cannot depend on request-scoped provider"),
        ("app_needs_request", "cannot take the Request"),
        ("missing", "no provider gives parameter 'pool'"),
        ("duplicate", "which"),
    ],
)
async def test_bad_graphs_are_refused(setup: str, words: str) -> None:
    app = App(openapi_url=None)

    async def session() -> Session:
        raise AssertionError("never called")

    async def settings_from_session(session: Session) -> Settings:
        return Settings()

    async def settings_from_request(request: Request) -> Settings:
        return Settings()

    async def needs_pool(pool: Pool) -> Settings:
        return Settings()

    if setup == "duplicate":
        app.provide(needs_pool)
        with pytest.raises(ConfigurationError, match=words):
            app.provide(settings_from_request)
        return
    if setup == "app_needs_request_scope":
        app.provide(session)
        app.provide(settings_from_session, scope="app")
    elif setup == "app_needs_request":
        app.provide(settings_from_request, scope="app")
    else:
        app.provide(needs_pool, scope="app")
    with pytest.raises(StartupError) as info:  # (TestClient leaks its loop when startup fails)
        await app.startup()
    assert words in str(info.value.__cause__)


async def test_app_call_and_inject_resolve_providers_outside_requests() -> None:
    log: list[str] = []
    app = make_app(log)

    @app.provide
    async def audit() -> AsyncIterator[list[str]]:
        entries: list[str] = []
        yield entries
        log.append(f"audit flushed {entries}")

    async def job(name: str, settings: Settings, entries: list[str]) -> str:
        entries.append(name)
        return f"{name} with {settings.name}"

    def sync_job(pool: Pool) -> str:
        return threading.current_thread().name

    async with AsyncTestClient(app):
        assert await app.call(job, "nightly") == "nightly with real"
        assert (await app.inject(sync_job)()).startswith("shoal-sync")
        replaced = await app.call(job, "x", settings=Settings("given"))
        assert replaced == "x with given"
    assert "audit flushed ['nightly']" in log


async def test_app_call_refuses_providers_that_need_a_request() -> None:
    app = make_app([])

    async def job(session: Session) -> None:
        raise AssertionError("never called")

    async with AsyncTestClient(app):
        with pytest.raises(ConfigurationError, match="needs the Request"):
            await app.call(job)


async def test_app_call_needs_a_started_app() -> None:
    app = make_app([])

    async def job(settings: Settings) -> None: ...

    with pytest.raises(ConfigurationError, match="started"):
        await app.call(job)


async def test_a_request_before_startup_is_a_500_that_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app([])
    response = await AsyncTestClient(app).get("/twice")  # no `async with`: never started
    assert response.status_code == 500
    assert "providers exist only once the app has started" in caplog.text


def test_lifespan_sees_app_scoped_values() -> None:
    seen: list[str] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        seen.append((app.container.app_values and "ready") or "empty")
        yield

    app = App(openapi_url=None, lifespan=lifespan)

    @app.provide(scope="app")
    def settings() -> Settings:
        return Settings()

    with TestClient(app):
        pass
    assert seen == ["ready"]
