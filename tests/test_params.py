"""Query, header and body parameters: conversion, defaults, and 422 errors with locations."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from typing import Annotated, Any, Literal, TypedDict

import msgspec
import pytest

from shoal import App, Body, ConfigurationError, Header, Query
from shoal.testing import TestClient


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


UUID_VALUE = uuid.UUID("7d3b2b5c-8f38-4d28-a4b2-1b6a0a2f9b40")
Small = Annotated[int, msgspec.Meta(ge=1, le=10)]


def echo_app(annotation: Any, default: Any = ...) -> App:
    """An app whose GET /echo returns its one query parameter `v` as received."""
    app = App(openapi_url=None)

    async def handler(v: Any) -> Any:
        return {"v": v, "type": type(v).__name__}

    async def with_default(v: Any = default) -> Any:
        return {"v": v, "type": type(v).__name__}

    chosen = handler if default is ... else with_default
    chosen.__annotations__ = {"v": annotation, "return": Any}
    app.add_route("/echo", chosen)
    return app


# (annotation, query string, expected value, expected python type name)
VALID = [
    (str, "v=hello", "hello", "str"),
    (str, "v=", "", "str"),
    (str, "v=a+b%21", "a b!", "str"),
    (int, "v=42", 42, "int"),
    (int, "v=-7", -7, "int"),
    (float, "v=2.5", 2.5, "float"),
    (float, "v=3", 3.0, "float"),
    (bool, "v=true", True, "bool"),
    (bool, "v=False", False, "bool"),
    (bool, "v=1", True, "bool"),
    (bool, "v=0", False, "bool"),
    (uuid.UUID, "v=" + str(UUID_VALUE), str(UUID_VALUE), "UUID"),
    (datetime.date, "v=2024-02-29", "2024-02-29", "date"),
    (Color, "v=red", "red", "Color"),
    (Literal["a", "b"], "v=b", "b", "str"),
    (Small, "v=10", 10, "int"),
    (int | None, "v=5", 5, "int"),
    (list[str], "v=a&v=b&v=a", ["a", "b", "a"], "list"),
    (list[int], "v=1&v=2", [1, 2], "list"),
    (tuple[int, ...], "v=3", [3], "tuple"),
    (set[str], "v=x&v=x", ["x"], "set"),
]


@pytest.mark.parametrize(("annotation", "query", "value", "type_name"), VALID)
def test_query_values_are_converted_to_the_annotation(
    annotation: Any, query: str, value: Any, type_name: str
) -> None:
    with TestClient(echo_app(annotation)) as client:
        response = client.get("/echo?" + query)
    assert response.status_code == 200, response.text
    assert response.json() == {"v": value, "type": type_name}


# (annotation, query string, words the message must contain)
INVALID = [
    (int, "v=abc", "Expected `int`, got 'abc'"),
    (int, "v=", "Expected `int`, got ''"),
    (int, "v=1.5", "Expected `int`"),
    (int, "v=%D9%A1", "Expected `int`"),  # an Arabic-Indic digit is not ASCII
    (float, "v=1_0", "Expected `float`"),
    (bool, "v=yes", "Expected `bool`, got 'yes'"),
    (uuid.UUID, "v=nope", "Invalid UUID"),
    (Color, "v=green", "Invalid enum value 'green'"),
    (Literal["a", "b"], "v=c", "Invalid enum value 'c'"),
    (Small, "v=0", "Expected `int` >= 1"),
    (Small, "v=11", "Expected `int` <= 10"),
    (list[int], "v=1&v=x", "at `v[1]`"),
]


@pytest.mark.parametrize(("annotation", "query", "words"), INVALID)
def test_invalid_query_values_are_422_with_location(
    annotation: Any, query: str, words: str
) -> None:
    with TestClient(echo_app(annotation)) as client:
        response = client.get("/echo?" + query)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["loc"] == ["query", "v"]
    assert words in error["msg"]


@pytest.mark.parametrize(
    ("annotation", "default", "expected"),
    [
        (int, 20, 20),
        (int | None, None, None),
        (list[str], ["x"], ["x"]),
        (list[str] | None, None, None),
    ],
)
def test_missing_query_values_take_the_default(
    annotation: Any, default: Any, expected: Any
) -> None:
    with TestClient(echo_app(annotation, default)) as client:
        assert client.get("/echo").json()["v"] == expected


def test_a_mutable_default_is_copied_for_each_request() -> None:
    app = App(openapi_url=None)

    @app.get("/")
    async def handler(tags: list[str] = ["base"]) -> list[str]:  # noqa: B006 - on purpose
        tags.append("added")
        return tags

    with TestClient(app) as client:
        assert client.get("/").json() == ["base", "added"]
        assert client.get("/").json() == ["base", "added"]


@pytest.mark.parametrize("annotation", [int, list[str], str | None])
def test_a_parameter_without_default_is_required(annotation: Any) -> None:
    with TestClient(echo_app(annotation)) as client:
        response = client.get("/echo")
    assert response.status_code == 422
    assert response.json()["errors"] == [{"loc": ["query", "v"], "msg": "Field required"}]


class Payload(msgspec.Struct):
    name: str


class Thing:
    pass


def test_every_invalid_field_is_listed_in_one_response() -> None:
    app = App(openapi_url=None)

    @app.post("/items/{item_id}")
    async def handler(
        item_id: int,
        payload: Payload,
        limit: int,
        token: Annotated[str, Header("X-Token")],
        page: int = 1,
    ) -> dict[str, Any]:
        return {}

    with TestClient(app) as client:
        response = client.post("/items/abc?page=x", json={"name": 5})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": ["path", "item_id"], "msg": "Expected `int`, got 'abc'"},
        {"loc": ["body", "name"], "msg": "Expected `str`, got `int`"},
        {"loc": ["query", "limit"], "msg": "Field required"},
        {"loc": ["header", "X-Token"], "msg": "Field required"},
        {"loc": ["query", "page"], "msg": "Expected `int`, got 'x'"},
    ]


def test_query_alias_and_header_names() -> None:
    app = App(openapi_url=None)

    @app.get("/")
    async def handler(
        token: Annotated[str, Header("X-Token")],
        user_agent: Annotated[str, Header()] = "none",
        trace: Annotated[list[str] | None, Header("X-Trace")] = None,
        page_size: Annotated[int, Query("page-size")] = 10,
    ) -> dict[str, Any]:
        return {"token": token, "ua": user_agent, "trace": trace, "size": page_size}

    @app.get("/bad")
    async def bad(page_size: Annotated[int, Query("page-size")]) -> int:
        return page_size

    with TestClient(app) as client:
        response = client.get(
            "/?page-size=3",
            headers={"x-TOKEN": "secret", "User-Agent": "pytest"},
        )
        assert response.json() == {"token": "secret", "ua": "pytest", "trace": None, "size": 3}
        response = client.get("/?page_size=3", headers={"X-Token": "t"})
        assert response.json()["size"] == 10  # the Python name is not the query name
        response = client.get("/bad?page-size=x")
    assert response.json()["errors"] == [
        {"loc": ["query", "page-size"], "msg": "Expected `int`, got 'x'"}
    ]


def test_header_values_are_converted_and_validated() -> None:
    app = App(openapi_url=None)

    @app.get("/")
    async def handler(retries: Annotated[Small, Header("X-Retries")] = 1) -> int:
        return retries

    with TestClient(app) as client:
        assert client.get("/", headers={"X-Retries": "4"}).json() == 4
        response = client.get("/", headers={"X-Retries": "40"})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": ["header", "X-Retries"], "msg": "Expected `int` <= 10"}
    ]


class Address(msgspec.Struct):
    city: str
    zip: Annotated[str, msgspec.Meta(pattern="^[0-9]{5}$")]


class NewUser(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    email: str
    addresses: list[Address] = []
    age: int | None = None


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Movie(TypedDict):
    title: str
    year: int


def body_app() -> App:
    app = App(openapi_url=None)

    @app.post("/users")
    async def create(payload: NewUser) -> NewUser:
        return payload

    @app.post("/points")
    def point(p: Point) -> dict[str, float]:  # a sync handler: runs in the pool
        return {"sum": p.x + p.y}

    @app.post("/movies")
    async def movie(m: Movie) -> dict[str, Any]:
        return {"title": m["title"], "year": m["year"]}

    @app.post("/tags")
    async def tags(names: Annotated[list[str], Body()]) -> int:
        return len(names)

    @app.post("/optional")
    async def optional(payload: NewUser | None = None) -> str:
        return "none" if payload is None else payload.name

    return app


@pytest.mark.parametrize(
    ("path", "body", "status", "expected"),
    [
        (
            "/users",
            {"name": "Ada", "email": "a@x"},
            200,
            {"name": "Ada", "email": "a@x", "addresses": [], "age": None},
        ),
        (
            "/users",
            {"name": "Ada", "email": "a@x", "age": 36.0},
            200,
            {"name": "Ada", "email": "a@x", "addresses": [], "age": 36},
        ),
        ("/points", {"x": 1, "y": 2.5}, 200, {"sum": 3.5}),
        ("/movies", {"title": "Up", "year": 2009}, 200, {"title": "Up", "year": 2009}),
        ("/tags", ["a", "b", "c"], 200, 3),
        ("/optional", None, 200, "none"),
    ],
)
def test_json_bodies_are_decoded_into_the_annotation(
    path: str, body: Any, status: int, expected: Any
) -> None:
    with TestClient(body_app()) as client:
        response = client.post(path) if body is None else client.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.json() == expected


# (body sent, loc, words in the message)
BODY_ERRORS = [
    ({"name": "Ada"}, ["body"], "Object missing required field `email`"),
    ({"name": 1, "email": "e"}, ["body", "name"], "Expected `str`, got `int`"),
    ({"name": "A", "email": "e", "age": 1.5}, ["body", "age"], "Expected `int | null`"),
    (
        {"name": "A", "email": "e", "addresses": [{"city": "X", "zip": "12345"}, {"city": "Y"}]},
        ["body", "addresses", 1],
        "Object missing required field `zip`",
    ),
    (
        {"name": "A", "email": "e", "addresses": [{"city": "X", "zip": "1"}]},
        ["body", "addresses", 0, "zip"],
        "matching regex",
    ),
    ({"name": "A", "email": "e", "admin": True}, ["body"], "unknown field `admin`"),
    (["not", "an", "object"], ["body"], "Expected `object`, got `array`"),
]


@pytest.mark.parametrize(("body", "loc", "words"), BODY_ERRORS)
def test_invalid_bodies_are_422_naming_the_field(body: Any, loc: list[Any], words: str) -> None:
    with TestClient(body_app()) as client:
        response = client.post("/users", json=body)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["loc"] == loc
    assert words in error["msg"]


@pytest.mark.parametrize(
    ("content", "headers", "status", "words"),
    [
        (b"", {}, 422, "A JSON body is required"),
        (b'{"name": ', {"content-type": "application/json"}, 400, "Malformed JSON"),
        (b"name=Ada", {"content-type": "application/x-www-form-urlencoded"}, 415, "must be JSON"),
        (b'{"name":"A","email":"e"}', {"content-type": "application/merge-patch+json"}, 200, ""),
        (b'{"name":"A","email":"e"}', {"content-type": "application/json; charset=utf-8"}, 200, ""),
    ],
)
def test_body_framing_errors(
    content: bytes, headers: dict[str, str], status: int, words: str
) -> None:
    with TestClient(body_app()) as client:
        response = client.post("/users", content=content, headers=headers)
    assert response.status_code == status, response.text
    if words:
        assert words in response.text


@pytest.mark.parametrize(
    ("make", "words"),
    [
        ("two_bodies", "takes 2 bodies"),
        ("unknown_type", "cannot tell where parameter 'thing'"),
        ("no_annotation", "cannot tell where parameter 'thing' (no annotation)"),
        ("dict_header", "header parameter 'h' must be a scalar"),
        ("struct_query", "query parameter 'q' must be a scalar"),
    ],
)
def test_parameters_that_cannot_be_sourced_fail_at_registration(make: str, words: str) -> None:
    app = App(openapi_url=None)
    handlers: dict[str, Any] = {}

    async def two_bodies(a: NewUser, b: Point) -> None: ...
    async def unknown_type(thing: Thing) -> None: ...
    async def no_annotation(thing) -> None: ...  # type: ignore[no-untyped-def]
    async def dict_header(h: Annotated[dict[str, str], Header()]) -> None: ...
    async def struct_query(q: Annotated[NewUser, Query()]) -> None: ...

    handlers.update(
        two_bodies=two_bodies,
        unknown_type=unknown_type,
        no_annotation=no_annotation,
        dict_header=dict_header,
        struct_query=struct_query,
    )
    with pytest.raises(ConfigurationError, match=words.replace("(", r"\(").replace(")", r"\)")):
        app.add_route("/", handlers[make], ["POST"])
