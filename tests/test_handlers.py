"""Call plans: the fast path for bare handlers, path coercion, results encoded by annotation."""

from __future__ import annotations

import dataclasses
import threading
from typing import Annotated, Any

import msgspec
import pytest

from shoal import App, ConfigurationError, Request, Response
from shoal.testing import TestClient


class User(msgspec.Struct):
    id: int
    name: str


class StoredUser(msgspec.Struct):
    id: int
    name: str
    password_hash: str


@dataclasses.dataclass
class Row:
    id: int
    name: str
    password_hash: str


def test_handlers_without_parameters_take_the_bare_path() -> None:
    app = App(openapi_url=None)

    @app.get("/")
    async def bare() -> dict[str, int]:
        return {"n": 1}

    @app.get("/typed")
    async def typed() -> User:
        return User(1, "a")

    @app.get("/sync")
    def sync() -> dict[str, str]:
        return {"thread": threading.current_thread().name}

    plans = {e.name.rpartition(".")[2]: e.plan for e in app.endpoints}
    # a bare async handler's plan hands back the handler's own coroutine: no
    # wrapper; a typed result needs one, to encode it
    for name, handler, wrapped in (("bare", bare, False), ("typed", typed, True)):
        coroutine = plans[name].call(Request("GET", "/"))
        assert (coroutine.cr_code is not handler.__code__) is wrapped, name  # type: ignore[attr-defined]
        coroutine.close()  # type: ignore[attr-defined]
    with TestClient(app) as client:
        assert client.get("/").json() == {"n": 1}
        assert client.get("/typed").json() == {"id": 1, "name": "a"}
        assert client.get("/sync").json()["thread"].startswith("shoal-sync")


# what the handler returns → what the client gets, for `-> User`
FILTERED = [
    (User(1, "ada"), {"id": 1, "name": "ada"}),
    (StoredUser(2, "bob", "secret"), {"id": 2, "name": "bob"}),
    ({"id": 3, "name": "cy", "password_hash": "x"}, {"id": 3, "name": "cy"}),
    (Row(4, "di", "x"), {"id": 4, "name": "di"}),
]


@pytest.mark.parametrize(("returned", "sent"), FILTERED)
def test_results_are_filtered_to_the_return_annotation(returned: Any, sent: Any) -> None:
    app = App(openapi_url=None)

    @app.get("/")
    async def handler() -> User:
        return returned  # type: ignore[no-any-return]

    @app.get("/many")
    def many() -> list[User]:
        return [returned, returned]

    with TestClient(app) as client:
        assert client.get("/").json() == sent
        assert client.get("/many").json() == [sent, sent]


def test_a_result_that_does_not_fit_its_annotation_is_a_logged_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App(openapi_url=None)

    @app.get("/")
    async def handler() -> User:
        return {"id": "not a number", "name": "x"}  # type: ignore[return-value]

    with TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 500
    assert "not a number" not in response.text
    assert "does not match its return annotation User" in caplog.text


def test_status_option_none_and_response_pass_through() -> None:
    app = App(openapi_url=None)

    @app.post("/users", status=201)
    async def create() -> User:
        return User(1, "a")

    @app.post("/maybe", status=201)
    async def maybe(found: bool = False) -> User | None:
        return User(1, "a") if found else None

    @app.post("/raw", status=201)
    async def raw() -> User:
        return Response(b"custom", status=202)  # type: ignore[return-value]

    with TestClient(app) as client:
        assert client.post("/users").status_code == 201
        assert client.post("/maybe").status_code == 204
        assert client.post("/maybe?found=true").status_code == 201
        response = client.post("/raw")
        assert (response.status_code, response.content) == (202, b"custom")


@pytest.mark.parametrize(
    ("template", "annotation", "url", "status", "value"),
    [
        ("/items/{v:int}", int, "/items/5", 200, 5),
        ("/items/{v}", int, "/items/5", 200, 5),
        ("/items/{v}", int, "/items/five", 422, None),
        ("/items/{v:int}", Annotated[int, msgspec.Meta(ge=1)], "/items/0", 422, None),
        ("/items/{v:float}", float, "/items/2.5", 200, 2.5),
    ],
)
def test_path_parameters_are_coerced_to_their_annotation(
    template: str, annotation: Any, url: str, status: int, value: Any
) -> None:
    app = App(openapi_url=None)

    async def handler(v: Any) -> Any:
        return {"v": v}

    handler.__annotations__ = {"v": annotation, "return": Any}
    app.add_route(template, handler)
    with TestClient(app) as client:
        response = client.get(url)
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"v": value}
    else:
        assert response.json()["errors"][0]["loc"] == ["path", "v"]


def test_the_request_is_injected_by_type_or_by_name() -> None:
    app = App(openapi_url=None)

    @app.get("/a")
    async def by_type(req: Request) -> str:
        return req.path

    @app.get("/b")
    async def by_name(request) -> str:  # type: ignore[no-untyped-def]
        return str(request.path)

    with TestClient(app) as client:
        assert client.get("/a").json() == "/a"
        assert client.get("/b").json() == "/b"


class Opaque:
    pass


def test_return_annotations_that_cannot_be_encoded_fail_at_registration() -> None:
    app = App(openapi_url=None)

    async def handler() -> Opaque:
        return Opaque()

    with pytest.raises(ConfigurationError, match="is not a type shoal can encode"):
        app.add_route("/", handler)
