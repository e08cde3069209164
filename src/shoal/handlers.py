"""Handler call plans: each handler's signature is inspected once, at registration.

A `HandlerPlan` knows, for every parameter, where its value comes from (a
`Resolver`), and whether the handler is a coroutine function (awaited on the
loop) or a plain function (run in the app's thread pool). Per request, the plan
only runs its resolvers and calls the handler.

Where a value can come from is decided by `Planner.sources`, a list of
functions tried in order for each parameter; the first that returns a
`Resolver` wins. The foundation knows path parameters, the `Request` itself
and resources registered with `app.use()`; other capabilities add sources.
A parameter that no source claims is a `ConfigurationError` at registration.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from .errors import ConfigurationError, ValidationError
from .requests import Request
from .routing import Converter

if TYPE_CHECKING:
    from .app import App

__all__ = ["HandlerPlan", "Invalid", "ParamInfo", "Planner", "Resolver"]


class Invalid(Exception):
    """Raised by a resolver when the request's value for its parameter is invalid."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Resolver(Protocol):
    """Produces one parameter's value from a request.

    `location` names where the value comes from in 422 errors (`path`,
    `query`, `header`, `body`, ...). A resolver with `needs_body` set runs
    after the body has been read, so it may use `request._body`.
    """

    name: str
    location: str
    needs_body: bool
    is_async: bool

    def __call__(self, request: Request) -> Any: ...


@dataclass(frozen=True, slots=True)
class ParamInfo:
    """What a source sees of one handler parameter."""

    name: str
    annotation: Any
    default: Any
    kind: inspect._ParameterKind
    route_params: dict[str, Converter]
    handler_name: str

    @property
    def has_default(self) -> bool:
        return self.default is not inspect.Parameter.empty


Source = Callable[[ParamInfo, "App"], "Resolver | None"]


@dataclass(slots=True)
class _Value:
    """A resolver that returns one function of the request."""

    name: str
    location: str
    get: Callable[[Request], Any]
    needs_body: bool = False
    is_async: bool = False

    def __call__(self, request: Request) -> Any:
        return self.get(request)


def _path_source(param: ParamInfo, app: App) -> Resolver | None:
    converter = param.route_params.get(param.name)
    if converter is None:
        return None
    name = param.name
    annotation = param.annotation
    if annotation in (inspect.Parameter.empty, Any, converter.type) or (
        annotation is str and converter.type is str
    ):
        return _Value(name, "path", lambda request: request._path_params[name])
    # `{id}` annotated `id: int`: the converter matched text; coerce it.

    def coerce(request: Request) -> Any:
        try:
            return msgspec.convert(request._path_params[name], annotation, strict=False)
        except msgspec.ValidationError as exc:
            raise Invalid(str(exc)) from exc

    return _Value(name, "path", coerce)


def _request_source(param: ParamInfo, app: App) -> Resolver | None:
    if param.annotation is Request or (
        param.annotation is inspect.Parameter.empty and param.name == "request"
    ):
        return _Value(param.name, "request", lambda request: request)
    return None


def _resource_source(param: ParamInfo, app: App) -> Resolver | None:
    annotation = param.annotation
    if not isinstance(annotation, type):
        return None
    for resource in app.resources:
        if isinstance(resource, annotation):
            return _Value(param.name, "resource", _constant(resource))
    return None


def _constant(value: Any) -> Callable[[Request], Any]:
    return lambda request: value


class Planner:
    """Builds `HandlerPlan`s for one app; `sources` lists where values come from, in order."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.sources: list[Source] = [_path_source, _request_source, _resource_source]

    def plan(self, handler: Callable[..., Any], route_params: dict[str, Converter]) -> HandlerPlan:
        """Inspect `handler` once and return its call plan."""
        name = getattr(handler, "__qualname__", repr(handler))
        try:
            signature = inspect.signature(handler)
            hints = typing.get_type_hints(handler, include_extras=True)
        except (TypeError, NameError, ValueError) as exc:
            raise ConfigurationError(f"cannot inspect handler {name}: {exc}") from exc
        resolvers: list[Resolver] = []
        for parameter in signature.parameters.values():
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise ConfigurationError(f"handler {name} may not take *{parameter.name}")
            info = ParamInfo(
                name=parameter.name,
                annotation=hints.get(parameter.name, inspect.Parameter.empty),
                default=parameter.default,
                kind=parameter.kind,
                route_params=route_params,
                handler_name=name,
            )
            resolvers.append(self._resolve(info))
        missing = set(route_params) - {r.name for r in resolvers if r.location == "path"}
        if missing:
            raise ConfigurationError(
                f"handler {name} does not take the path parameter(s) {', '.join(sorted(missing))}"
            )
        return HandlerPlan(handler, name, resolvers, self.app)

    def _resolve(self, info: ParamInfo) -> Resolver:
        for source in self.sources:
            resolver = source(info, self.app)
            if resolver is not None:
                return resolver
        raise ConfigurationError(
            f"handler {info.handler_name}: cannot tell where parameter {info.name!r} comes from. "
            "It is not a path parameter, not a Request, and no registered resource or provider "
            "has its type."
        )


def _ignore_request(handler: Callable[[], Awaitable[Any]]) -> Callable[[Request], Awaitable[Any]]:
    return lambda request: handler()


class HandlerPlan:
    """One handler and how to call it: `await plan(request)` returns its result."""

    __slots__ = ("handler", "name", "resolvers", "is_async", "needs_body", "_app", "call")

    def __init__(
        self, handler: Callable[..., Any], name: str, resolvers: list[Resolver], app: App
    ) -> None:
        self.handler = handler
        self.name = name
        self.resolvers = resolvers
        self.is_async = inspect.iscoroutinefunction(handler) or (
            callable(handler) and inspect.iscoroutinefunction(type(handler).__call__)
        )
        self.needs_body = any(r.needs_body for r in resolvers)
        self._app = app
        # `call(request)` returns an awaitable of the handler's result. For an
        # async handler without parameters it returns the handler's own
        # coroutine: no wrapper coroutine on the fastest path.
        self.call: Callable[[Request], Awaitable[Any]]
        if resolvers:
            self.call = self._call_with_args
        elif self.is_async:
            self.call = _ignore_request(handler)
        else:
            self.call = self._call_bare

    def __call__(self, request: Request) -> Awaitable[Any]:
        return self.call(request)

    async def _call_bare(self, request: Request) -> Any:
        return await self._app.thread_pool.run(self.handler)

    async def arguments(self, request: Request) -> dict[str, Any]:
        """Resolve every parameter; all invalid ones are reported together as a 422."""
        if self.needs_body:
            await request.body()
        kwargs: dict[str, Any] = {}
        errors: list[dict[str, Any]] | None = None
        for resolver in self.resolvers:
            try:
                value = resolver(request)
                if resolver.is_async:
                    value = await value
            except Invalid as exc:
                errors = errors or []
                errors.append({"loc": [resolver.location, resolver.name], "msg": exc.message})
                continue
            kwargs[resolver.name] = value
        if errors:
            raise ValidationError(errors)
        return kwargs

    async def _call_with_args(self, request: Request) -> Any:
        kwargs = await self.arguments(request)
        if self.is_async:
            return await self.handler(**kwargs)
        return await self._app.thread_pool.run(self.handler, **kwargs)
