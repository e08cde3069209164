"""The router's index of dynamic routes: many routes, overlapping templates,
registration order, and a randomised comparison with a plain linear matcher."""

from __future__ import annotations

import random
from typing import Any

import pytest

from shoal.errors import MethodNotAllowed, NotFound, RouteConflict
from shoal.routing import Route, Router, after_first_parameter, compile_template, literal_prefix


@pytest.mark.parametrize(
    ("template", "prefix"),
    [
        ("/users/{id}", "/users/"),
        ("/users/{id}/posts", "/users/"),
        ("/svc7/items/{item_id:int}", "/svc7/items/"),
        ("/{tenant}/orders", "/"),
        ("/v{n:int}/x", "/"),
        ("/files/pre{rest:path}", "/files/"),
        ("/a/b{x}/c/{y}", "/a/"),
    ],
)
def test_literal_prefix(template: str, prefix: str) -> None:
    assert literal_prefix(template) == prefix


@pytest.mark.parametrize(
    ("template", "rest"),
    [
        ("/{tenant}/orders/{id}", "/orders/{id}"),
        ("/{n:int}/x", "/x"),
        ("/{tenant}/", "/"),
        ("/{tenant}", None),  # nothing follows it
        ("/{p:path}", None),
        ("/v{n:int}/x", None),  # a mixed segment
        ("/{a}-{b}/x", None),
        ("/users/{id}", None),
    ],
)
def test_after_first_parameter(template: str, rest: str | None) -> None:
    assert after_first_parameter(template) == rest


def test_a_thousand_routes_after_a_parameter_each_found() -> None:
    router: Router[int] = Router()
    for i in range(1000):
        router.add(f"/{{tenant}}/svc{i}/items/{{item_id:int}}", ["GET"], i)
    router.add("/{tenant}/orders", ["GET"], -1)
    for i in (0, 999):
        assert router.match("GET", f"/acme/svc{i}/items/{i}") == (
            i,
            {"tenant": "acme", "item_id": i},
        )
    assert router.match("GET", "/acme/orders") == (-1, {"tenant": "acme"})
    with pytest.raises(NotFound):
        router.match("GET", "/acme/svc1000/items/1")


def test_a_thousand_routes_each_found() -> None:
    router: Router[int] = Router()
    for i in range(1000):
        router.add(f"/svc{i}/items/{{item_id:int}}", ["GET"], i)
    for i in (0, 1, 499, 998, 999):
        assert router.match("GET", f"/svc{i}/items/{i * 7}") == (i, {"item_id": i * 7})
    with pytest.raises(NotFound):
        router.match("GET", "/svc1000/items/1")
    with pytest.raises(NotFound):
        router.match("GET", "/svc5/items/x")
    with pytest.raises(MethodNotAllowed):
        router.match("POST", "/svc999/items/1")


@pytest.mark.parametrize(
    ("templates", "path", "winner"),
    [
        # a shorter prefix registered first wins over a longer one registered later
        (["/{a}/edit", "/users/{id}"], "/users/edit", "/{a}/edit"),
        (["/users/{id}", "/{a}/edit"], "/users/edit", "/users/{id}"),
        (["/files/{rest:path}", "/files/img/{name}"], "/files/img/x", "/files/{rest:path}"),
        (["/files/img/{name}", "/files/{rest:path}"], "/files/img/x", "/files/img/{name}"),
        (["/files/img/{name}", "/files/{rest:path}"], "/files/img/x/y", "/files/{rest:path}"),
        (["/a/{x}", "/a/b/{y}", "/a/b/c/{z:path}"], "/a/b/c/d", "/a/b/c/{z:path}"),
        (["/a/b/{y}/{w}", "/a/{x}/c/{v}"], "/a/b/c/d", "/a/b/{y}/{w}"),
        (["/a/{x}/c/{v}", "/a/b/{y}/{w}"], "/a/b/c/d", "/a/{x}/c/{v}"),
        (["/v{n:int}/x", "/v1/{s}"], "/v1/x", "/v{n:int}/x"),
        (["/{t}/orders/{id}", "/acme/{x}/{y}"], "/acme/orders/1", "/{t}/orders/{id}"),
        (["/acme/{x}/{y}", "/{t}/orders/{id}"], "/acme/orders/1", "/acme/{x}/{y}"),
        (["/{t}/{x}", "/{t}/orders/{id}", "/a/{b}/{c}"], "/a/orders/1", "/{t}/orders/{id}"),
        (["/{t:int}/x/{y}", "/{t}/x/{y}"], "/abc/x/1", "/{t}/x/{y}"),
        # a converter that refuses the value hands the path to the next route
        (["/n/{x:float}", "/n/{s}"], "/n/" + "9" * 400, "/n/{s}"),
    ],
)
def test_registration_order_across_prefixes(templates: list[str], path: str, winner: str) -> None:
    router: Router[str] = Router()
    for template in templates:
        router.add(template, ["GET"], template)
    assert router.match("GET", path)[0] == winner


def test_static_beats_every_dynamic_route() -> None:
    router: Router[str] = Router()
    router.add("/{a}/{b}", ["GET"], "dynamic")
    router.add("/users/me", ["GET"], "static")
    assert router.match("GET", "/users/me")[0] == "static"
    assert router.match("GET", "/users/you")[0] == "dynamic"


def test_routes_added_after_a_match_are_indexed() -> None:
    router: Router[str] = Router()
    router.add("/a/{x}", ["GET"], "a")
    assert router.match("GET", "/a/1")[0] == "a"
    router.add("/b/{x}/c", ["GET"], "b")
    assert router.match("GET", "/b/1/c") == ("b", {"x": "1"})
    with pytest.raises(RouteConflict):
        router.add("/b/{y}/c", ["GET"], "again")
    assert router.match("GET", "/b/2/c") == ("b", {"x": "2"})


# -- randomised: the index against the rule it replaces ---------------------------

SEGMENTS = ["a", "b", "ab", "{p}", "{p:int}", "{p:float}", "x{p:int}", "{p}-{q}", ""]
LAST = [*SEGMENTS, "{p:path}", "pre{p:path}"]
PATH_SEGMENTS = ["a", "b", "ab", "1", "-2", "2.5", "x1", "x", "c-d", "", "9" * 400]


def random_template(rng: random.Random) -> str:
    parts = [rng.choice(SEGMENTS) for _ in range(rng.randint(0, 3))] + [rng.choice(LAST)]
    names = iter(f"n{i}" for i in range(20))
    return _rename("/" + "/".join(parts), names)


def _rename(text: str, names: Any) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "{":
            close = text.index("}", i)
            _, _, conv = text[i + 1 : close].partition(":")
            out.append("{" + next(names) + (":" + conv if conv else "") + "}")
            i = close + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def linear_find(routes: list[Route[str]], path: str) -> tuple[str, dict[str, Any]] | None:
    """The rule as it was: static first, then each dynamic template in order."""
    for route in routes:
        if route.regex is None and route.template == path:
            return route.template, {}
    for route in routes:
        if route.regex is None:
            continue
        found = route.regex.match(path)
        if found is None:
            continue
        try:
            params = {k: route.params[k].convert(v) for k, v in found.groupdict().items()}
        except ValueError:
            continue
        return route.template, params
    return None


def test_index_agrees_with_a_linear_matcher() -> None:
    rng = random.Random(16)
    for _ in range(400):
        router: Router[str] = Router()
        registered: list[Route[str]] = []
        for _ in range(rng.randint(1, 12)):
            template = random_template(rng)
            try:
                route = router.add(template, ["GET"], template)
            except RouteConflict:
                continue
            if route not in registered:
                registered.append(route)
        for _ in range(40):
            parts = [rng.choice(PATH_SEGMENTS) for _ in range(rng.randint(0, 5))]
            path = "/" + "/".join(parts)
            found = router.find(path)
            got = (found[0].template, found[1]) if found is not None else None
            assert got == linear_find(registered, path), (path, [r.template for r in registered])


def test_compiled_shapes_are_unchanged() -> None:
    # the index keys on templates; the shape (what a conflict is) is the same as before
    assert compile_template("/a/{x:int}/b")[2] == "/a/{int}/b"
