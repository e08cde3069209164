"""The routing table: converters, misses, methods, trailing slashes, conflicts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shoal.errors import ConfigurationError, MethodNotAllowed, NotFound, RouteConflict
from shoal.routing import Router, compile_template

KEY = "6f1c2a9e-8d3b-4c5e-9f7a-0b1c2d3e4f5a"


def make_router() -> Router[str]:
    router: Router[str] = Router()
    router.add("/", ["GET"], "root")
    router.add("/items/{item_id:int}", ["GET", "DELETE"], "item")
    router.add("/ratio/{value:float}", ["GET"], "ratio")
    router.add("/objects/{key:uuid}", ["GET"], "object")
    router.add("/files/{rest:path}", ["GET"], "files")
    router.add("/users/me", ["GET"], "me")
    router.add("/users/{name}", ["GET", "PUT"], "user")
    router.add("/a/{x}/b/{y:int}", ["POST"], "two")
    router.add("/slash/", ["GET"], "slash")
    return router


@pytest.mark.parametrize(
    ("method", "path", "handler", "params"),
    [
        ("GET", "/", "root", {}),
        ("GET", "/items/42", "item", {"item_id": 42}),
        ("GET", "/items/-3", "item", {"item_id": -3}),
        ("DELETE", "/items/7", "item", {"item_id": 7}),
        ("GET", "/ratio/2.5", "ratio", {"value": 2.5}),
        ("GET", "/ratio/3", "ratio", {"value": 3.0}),
        ("GET", f"/objects/{KEY}", "object", {"key": uuid.UUID(KEY)}),
        ("GET", "/files/a/b/c.txt", "files", {"rest": "a/b/c.txt"}),
        ("GET", "/files/", "files", {"rest": ""}),
        ("GET", "/users/me", "me", {}),
        ("GET", "/users/bob", "user", {"name": "bob"}),
        ("PUT", "/users/bob", "user", {"name": "bob"}),
        ("POST", "/a/one/b/2", "two", {"x": "one", "y": 2}),
        ("HEAD", "/users/bob", "user", {"name": "bob"}),  # HEAD falls back to GET
        ("HEAD", "/", "root", {}),
        ("GET", "/slash/", "slash", {}),
    ],
)
def test_matches(method: str, path: str, handler: str, params: dict[str, Any]) -> None:
    found, got = make_router().match(method, path)
    assert found == handler
    assert got == params
    assert all(type(got[k]) is type(v) for k, v in params.items())


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/items/abc",  # int converter refuses text
        "/items/4.5",
        "/items/42/extra",
        "/ratio/abc",
        "/objects/not-a-uuid",
        "/users/bob/extra",
        "/users/",  # {name} needs at least one character
        "",
    ],
)
def test_not_found(path: str) -> None:
    with pytest.raises(NotFound):
        make_router().match("GET", path)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/", ["GET", "HEAD", "OPTIONS"]),
        ("POST", "/items/1", ["DELETE", "GET", "HEAD", "OPTIONS"]),
        ("DELETE", "/users/bob", ["GET", "HEAD", "OPTIONS", "PUT"]),
        ("GET", "/a/x/b/1", ["OPTIONS", "POST"]),
    ],
)
def test_method_not_allowed_lists_allow(method: str, path: str, allowed: list[str]) -> None:
    with pytest.raises(MethodNotAllowed) as caught:
        make_router().match(method, path)
    assert caught.value.allowed == allowed
    assert caught.value.headers["allow"] == ", ".join(allowed)


def test_options_is_answered_by_the_router_unless_registered() -> None:
    router = make_router()
    assert router.match("OPTIONS", "/users/bob") == (None, {"name": "bob"})
    assert router.allowed("/users/bob") == ["GET", "HEAD", "OPTIONS", "PUT"]
    router.add("/custom", ["OPTIONS"], "custom-options")
    assert router.match("OPTIONS", "/custom") == ("custom-options", {})


def test_explicit_head_wins_over_get() -> None:
    router: Router[str] = Router()
    router.add("/x", ["GET"], "get")
    router.add("/x", ["HEAD"], "head")
    assert router.match("HEAD", "/x")[0] == "head"


@pytest.mark.parametrize(
    ("path", "alternate"),
    [("/slash", "/slash/"), ("/users/me/", "/users/me"), ("/nope/", None), ("/nope", None)],
)
def test_trailing_slash_alternate(path: str, alternate: str | None) -> None:
    router = make_router()
    with pytest.raises(NotFound):
        router.match("GET", path)
    assert router.alternate(path) == alternate


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/users/me", "/users/me"),
        ("/items/{id:int}", "/items/{id:int}"),
        ("/items/{id:int}", "/items/{other:int}"),  # same paths, other name
        ("/a/{x}/b", "/a/{y:str}/b"),  # str is the default converter
    ],
)
def test_conflicts_are_refused(first: str, second: str) -> None:
    router: Router[str] = Router()
    router.add(first, ["GET"], "first")
    with pytest.raises(RouteConflict):
        router.add(second, ["GET"], "second")


def test_same_template_other_method_is_no_conflict() -> None:
    router: Router[str] = Router()
    router.add("/items/{id:int}", ["GET"], "get")
    router.add("/items/{id:int}", ["DELETE"], "delete")
    assert router.match("DELETE", "/items/1") == ("delete", {"id": 1})


def test_different_converters_do_not_conflict() -> None:
    router: Router[str] = Router()
    router.add("/v/{n:int}", ["GET"], "int")
    router.add("/v/{s}", ["GET"], "str")
    assert router.match("GET", "/v/5")[0] == "int"  # registration order
    assert router.match("GET", "/v/x")[0] == "str"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("no-slash", "must start with '/'"),
        ("/x/{id:number}", "unknown converter 'number'"),
        ("/x/{id}/{id}", "appears twice"),
        ("/x/{1abc}", "bad parameter name"),
        ("/x/{rest:path}/more", "must end the route"),
        ("/x/{open", "unbalanced braces"),
    ],
)
def test_bad_templates(template: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        compile_template(template)


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown HTTP method"):
        Router[str]().add("/x", ["FETCH"], "x")


def test_static_templates_compile_to_no_regex() -> None:
    params, regex, shape = compile_template("/health/live")
    assert (params, regex, shape) == ({}, None, "/health/live")
