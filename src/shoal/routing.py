"""Path routing, compiled once: a dict for static paths, patterns for dynamic ones.

Rules (each decided here and nowhere else):

- A template is `/literal/{name}` or `/literal/{name:converter}`; converters
  are listed in `CONVERTERS`. `{name:path}` may only end a template and
  matches the rest of the path, slashes included.
- Static paths are matched by one dict look-up; they win over dynamic ones
  (`/users/me` beats `/users/{name}`). Among dynamic templates the first
  registered that matches wins.
- Dynamic templates are indexed by their literal prefix (`literal_prefix`:
  `/users/` for `/users/{id}/posts`): a match looks up the longest prefix of
  the path that some template has, and tries only the templates of that
  prefix and of its shorter prefixes, in registration order. A template that
  starts with a parameter (`/{tenant}/orders/{id}`) is indexed the same way
  by what follows the parameter (`after_first_parameter`). The cost of a
  match grows with the depth of the path, not with the number of routes
  (except among templates that share a prefix, or start with a mixed
  segment such as `/v{n:int}/...`, which share the prefix `/`).
- Matching is exact about trailing slashes: `/items` and `/items/` are two
  paths. When only the other form exists, the app answers with a 308 redirect
  to it (`Router.alternate`).
- `HEAD` is answered by the `GET` handler where no `HEAD` handler exists, and
  `OPTIONS` by the router's own `Allow` list where no `OPTIONS` handler exists.
- Two routes that would answer the same method on the same paths (same
  literals and the same converters, whatever the names) are refused at
  registration with `RouteConflict`.
- A WebSocket route is registered under the pseudo-method `WEBSOCKET`
  (`<WEBSOCKET>`, which no request line can carry): it
  shares the templates and conflict rules, answers handshakes only, and is
  not listed in `Allow`.
- Mounts (`Mounts`) route by prefix, after the routes: the longest prefix
  wins, and a prefix matches itself and what lies below it (`/legacy` serves
  `/legacy` and `/legacy/x`, not `/legacyx`).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import ConfigurationError, MethodNotAllowed, NotFound, RouteConflict

__all__ = [
    "CONVERTERS",
    "WEBSOCKET",
    "Converter",
    "Mounts",
    "Route",
    "Router",
    "after_first_parameter",
    "literal_prefix",
    "normalise_prefix",
]

T = TypeVar("T")

WEBSOCKET = "<WEBSOCKET>"
"""The pseudo-method a WebSocket route is registered under: it answers handshakes only.

Not an HTTP token (`<` cannot start a method), so no request line can name it."""

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", WEBSOCKET})


@dataclass(frozen=True, slots=True)
class Converter:
    """How one path parameter type is matched (`regex`) and converted (`convert`)."""

    regex: str
    convert: Callable[[str], Any]
    type: type


def _finite_float(text: str) -> float:
    # 400 digits parse as inf, which JSON cannot carry: not a number this route takes
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]}... is out of the float range")
    return value


CONVERTERS: dict[str, Converter] = {
    "str": Converter(r"[^/]+", str, str),
    "int": Converter(r"-?[0-9]+", int, int),
    "float": Converter(r"-?[0-9]+(?:\.[0-9]+)?", _finite_float, float),
    "uuid": Converter(
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        uuid.UUID,
        uuid.UUID,
    ),
    "path": Converter(r".*", str, str),
}

_PARAM = re.compile(r"{([^{}]*)}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(slots=True)
class Route(Generic[T]):
    """All handlers registered for one path template, by method."""

    template: str
    params: dict[str, Converter]
    regex: re.Pattern[str] | None
    shape: str
    handlers: dict[str, T] = field(default_factory=dict)
    # registration order among the dynamic routes (the tie-break), and the
    # parameters that need converting (a `str` one is used as matched)
    order: int = 0
    typed: tuple[tuple[str, Callable[[str], Any]], ...] = ()

    def allowed(self) -> list[str]:
        """The methods this path answers, as sent in `Allow`."""
        methods = (set(self.handlers) - {WEBSOCKET}) | {"OPTIONS"}
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods)


def compile_template(template: str) -> tuple[dict[str, Converter], re.Pattern[str] | None, str]:
    """Parse a path template into (parameters, regex or None if static, shape)."""
    if not template.startswith("/"):
        raise ConfigurationError(f"route path {template!r} must start with '/'")
    params: dict[str, Converter] = {}
    pattern, shape, pos = ["^"], [], 0
    for found in _PARAM.finditer(template):
        name, _, conv_name = found.group(1).partition(":")
        conv_name = conv_name or "str"
        if not _NAME.fullmatch(name):
            raise ConfigurationError(f"bad parameter name {name!r} in route {template!r}")
        if name in params:
            raise ConfigurationError(f"parameter {name!r} appears twice in route {template!r}")
        if conv_name not in CONVERTERS:
            raise ConfigurationError(
                f"unknown converter {conv_name!r} in route {template!r}; "
                f"known: {', '.join(sorted(CONVERTERS))}"
            )
        if conv_name == "path" and found.end() != len(template):
            raise ConfigurationError(f"{{{name}:path}} must end the route {template!r}")
        literal = template[pos : found.start()]
        params[name] = CONVERTERS[conv_name]
        pattern += [re.escape(literal), f"(?P<{name}>{CONVERTERS[conv_name].regex})"]
        shape += [literal, "{" + conv_name + "}"]
        pos = found.end()
    rest = template[pos:]
    if "{" in rest or "}" in rest:
        raise ConfigurationError(f"unbalanced braces in route {template!r}")
    if not params:
        return params, None, template
    pattern += [re.escape(rest), "$"]
    shape.append(rest)
    return params, re.compile("".join(pattern)), "".join(shape)


def literal_prefix(template: str) -> str:
    """The text of `template` up to the `/` that ends its last whole literal
    segment before the first parameter: `/users/` for `/users/{id}/posts`,
    `/` for `/{tenant}/x` or `/v{n:int}`. Every path the template matches
    starts with it, and a parameter never holds a `/` (except `{name:path}`,
    which comes after it)."""
    brace = template.find("{")
    return template[: template.rfind("/", 0, brace if brace >= 0 else len(template)) + 1]


_WHOLE_PARAM = re.compile(r"{[A-Za-z_][A-Za-z0-9_]*(?::(?!path})[a-z]+)?}")


def after_first_parameter(template: str) -> str | None:
    """For a template whose first segment is one parameter and more follows
    (`/{tenant}/orders/{id}`), the rest from the second `/` (`/orders/{id}`);
    else None. Such templates are indexed by the literal prefix of that rest."""
    cut = template.find("/", 1)
    if cut < 0 or _WHOLE_PARAM.fullmatch(template, 1, cut) is None:
        return None
    return template[cut:]


def _prefix_index(entries: list[tuple[str, Route[T]]]) -> tuple[dict[str, list[Route[T]]], int]:
    """prefix -> the routes of that prefix and of its shorter prefixes, in
    registration order (`entries` are (prefix, route) in that order); and the
    longest prefix's length."""
    own: dict[str, list[Route[T]]] = {"/": []}
    for prefix, route in entries:
        own.setdefault(prefix, []).append(route)
    index: dict[str, list[Route[T]]] = {}
    for prefix in own:
        routes: list[Route[T]] = []
        end = 0
        while end >= 0:
            routes += own.get(prefix[: end + 1], ())
            end = prefix.find("/", end + 1)
        routes.sort(key=_order)
        index[prefix] = routes
    return index, max(map(len, index))


def _candidates(index: dict[str, list[Route[T]]], longest: int, path: str) -> list[Route[T]]:
    """The routes of the longest prefix of `path` in `index`."""
    end = path.rfind("/", 0, longest)
    while end > 0:
        found = index.get(path[: end + 1])
        if found is not None:
            return found
        end = path.rfind("/", 0, end)
    return index["/"]


class Router(Generic[T]):
    """Maps (method, path) to a handler of type T and its typed path parameters."""

    def __init__(self) -> None:
        self._static: dict[str, Route[T]] = {}
        self._dynamic: list[Route[T]] = []
        self._by_shape: dict[str, Route[T]] = {}
        # literal prefix -> the dynamic routes whose prefix is it or a shorter
        # prefix of it, in registration order (built on the first match)
        self._by_prefix: dict[str, list[Route[T]]] | None = None
        self._longest = 1
        # the same for templates that start with a parameter (`/{tenant}/...`),
        # keyed by the literal prefix of what follows it (None: there are none)
        self._by_rest: dict[str, list[Route[T]]] | None = None
        self._rest_longest = 1

    def add(
        self,
        template: str,
        methods: Iterable[str],
        handler: T,
        compiled: tuple[dict[str, Converter], re.Pattern[str] | None, str] | None = None,
    ) -> Route[T]:
        """Register `handler` for `methods` on `template`; refuse conflicts.

        `compiled` is `compile_template(template)` when the caller already has it.
        """
        params, regex, shape = compiled or compile_template(template)
        route = self._by_shape.get(shape)
        if route is None:
            typed = tuple((name, c.convert) for name, c in params.items() if c.convert is not str)
            route = Route(template, params, regex, shape, order=len(self._dynamic), typed=typed)
            self._by_shape[shape] = route
            if regex is None:
                self._static[template] = route
            else:
                self._dynamic.append(route)
                self._by_prefix = None
        elif route.template != template:
            # same shape, other names: one of the two could never be reached
            if set(methods) & set(route.handlers):
                raise RouteConflict(
                    f"route {template!r} conflicts with {route.template!r}: "
                    "both match the same paths"
                )
            raise RouteConflict(
                f"route {template!r} matches the same paths as {route.template!r}; "
                f"register it with the same parameter names"
            )
        for method in methods:
            method = method.upper()
            if method not in HTTP_METHODS:
                raise ConfigurationError(f"unknown HTTP method {method!r} for route {template!r}")
            if method in route.handlers:
                raise RouteConflict(f"{method} {template} is already registered")
            route.handlers[method] = handler
        return route

    def __iter__(self) -> Iterator[Route[T]]:
        return iter(self._by_shape.values())

    def _index(self) -> dict[str, list[Route[T]]]:
        by_prefix: list[tuple[str, Route[T]]] = []
        by_rest: list[tuple[str, Route[T]]] = []
        for route in self._dynamic:
            rest = after_first_parameter(route.template)
            if rest is None:
                by_prefix.append((literal_prefix(route.template), route))
            else:
                by_rest.append((literal_prefix(rest), route))
        self._by_rest, self._rest_longest = _prefix_index(by_rest) if by_rest else (None, 1)
        index, self._longest = _prefix_index(by_prefix)
        self._by_prefix = index
        return index

    def _find_dynamic(self, path: str) -> tuple[Route[T], dict[str, Any]] | None:
        # the candidates: the routes of the longest literal prefix of `path`
        # that some route has (see `literal_prefix`), in registration order
        # (`_candidates`, written out here: this is every dynamic match's path)
        index = self._by_prefix or self._index()
        end = path.rfind("/", 0, self._longest)
        while end > 0:
            candidates = index.get(path[: end + 1])
            if candidates is not None:
                break
            end = path.rfind("/", 0, end)
        else:
            candidates = index["/"]
        if self._by_rest is not None:  # and those of `/{param}/...`, by the rest of the path
            cut = path.find("/", 1)
            if cut > 0:
                more = _candidates(self._by_rest, self._rest_longest, path[cut:])
                if more:
                    candidates = sorted([*candidates, *more], key=_order) if candidates else more
        for route in candidates:
            found = route.regex.match(path)  # type: ignore[union-attr]  # dynamic: has one
            if found is not None:
                params = found.groupdict()
                try:
                    for name, convert in route.typed:
                        params[name] = convert(params[name])
                except ValueError:  # out-of-range float and the like: not this route
                    continue
                return route, params
        return None

    def find(self, path: str) -> tuple[Route[T], dict[str, Any]] | None:
        """The route that matches `path` (whatever the method) and its parameters."""
        route = self._static.get(path)
        if route is not None:
            return route, {}
        return self._find_dynamic(path)

    def match(self, method: str, path: str) -> tuple[T | None, dict[str, Any]]:
        """The handler for `method` on `path`, and the converted path parameters.

        The handler is None for an `OPTIONS` request that the router answers
        itself (see `allowed`). Raises `NotFound` or `MethodNotAllowed`.
        """
        static = self._static.get(path)
        if static is not None:  # the hot path: one dict look-up, one more
            handler = static.handlers.get(method)
            if handler is not None:
                return handler, {}
            found: tuple[Route[T], dict[str, Any]] | None = (static, {})
        else:
            found = self._find_dynamic(path)
        if found is None:
            raise NotFound(detail=f"No route matches {path}")
        route, params = found
        handler = route.handlers.get(method)
        if handler is None and method == "HEAD":  # a GET route answers HEAD too
            handler = route.handlers.get("GET")
        if handler is None:
            if method == "OPTIONS":
                return None, params
            raise MethodNotAllowed(route.allowed(), detail=f"{method} is not allowed on {path}")
        return handler, params

    def allowed(self, path: str) -> list[str]:
        """The methods answered on `path` (empty when no route matches)."""
        found = self.find(path)
        return found[0].allowed() if found else []

    def alternate(self, path: str) -> str | None:
        """The same path with the trailing slash toggled, if a route matches it."""
        if path == "/":
            return None
        other = path[:-1] if path.endswith("/") else path + "/"
        return other if self.find(other) is not None else None


def _order(route: Route[Any]) -> int:
    return route.order


def normalise_prefix(prefix: str) -> str:
    """A mount prefix without its trailing slash (`/` becomes `""`); refuses bad ones."""
    if not prefix.startswith("/"):
        raise ConfigurationError(f"mount prefix {prefix!r} must start with '/'")
    if "{" in prefix or "}" in prefix:
        raise ConfigurationError(f"mount prefix {prefix!r} cannot hold path parameters")
    return prefix.rstrip("/")


class Mounts(Generic[T]):
    """Targets mounted under path prefixes, found longest prefix first."""

    def __init__(self) -> None:
        self._mounts: list[tuple[str, T]] = []

    def add(self, prefix: str, target: T) -> None:
        """Mount `target` at `prefix` (from `normalise_prefix`); one mount a prefix."""
        if any(existing == prefix for existing, _ in self._mounts):
            raise ConfigurationError(f"an app is already mounted at {prefix or '/'!r}")
        self._mounts.append((prefix, target))
        self._mounts.sort(key=lambda mount: len(mount[0]), reverse=True)

    def find(self, path: str) -> T | None:
        """The target mounted where `path` is: at its prefix or below it."""
        for prefix, target in self._mounts:
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                return target
        return None

    def __bool__(self) -> bool:
        return bool(self._mounts)

    def __iter__(self) -> Iterator[T]:
        return (target for _, target in self._mounts)
