"""Handler call plans: each handler's signature is inspected once, at registration.

A `HandlerPlan` knows, for every parameter, where its value comes from (a
`Resolver`), and whether the handler is a coroutine function (awaited on the
loop) or a plain function (run in the app's thread pool). Per request, the plan
only runs its resolvers and calls the handler.

Where a value can come from is decided by `Planner.sources`, a list of
functions tried in order for each parameter; the first that returns a
`Resolver` wins: path parameters, the `Request`, headers marked `Header()`,
providers and resources (`shoal.dependencies`), the JSON body, then the query
string (`shoal.params`). A parameter that no source claims is a
`ConfigurationError` at registration.

The return annotation is read once too (`ResultEncoder`): a handler that
declares it returns a `User` Struct (or `list[User]`, or a dataclass...) has
its result converted to that type before encoding, so fields the type does
not declare are never sent, whatever object the handler returned.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from .errors import ConfigurationError, ValidationError
from .requests import Request
from .responses import Response
from .routing import Converter

if TYPE_CHECKING:
    from .app import App

__all__ = ["HandlerPlan", "Invalid", "ParamInfo", "Planner", "Resolver", "ResultEncoder"]


class Invalid(Exception):
    """Raised by a resolver when the request's value for its parameter is invalid.

    The error's `loc` is `[resolver.location, name]` unless `loc` is given;
    `name` is the resolver's `public` name when it has one (`X-Token`), else
    the parameter's (the body names the field inside the document: `["body", "email"]`).
    """

    def __init__(self, message: str, loc: list[str | int] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc


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
    from .params import converter as make_converter

    convert = make_converter(annotation, name)
    return _Value(name, "path", lambda request: convert(request._path_params[name]))


def _request_source(param: ParamInfo, app: App) -> Resolver | None:
    if param.annotation is Request or (
        param.annotation is inspect.Parameter.empty and param.name == "request"
    ):
        return _Value(param.name, "request", lambda request: request)
    return None


class Planner:
    """Builds `HandlerPlan`s for one app; `sources` lists where values come from, in order."""

    def __init__(self, app: App) -> None:
        from .dependencies import dependency_source
        from .params import body_source, header_source, query_source

        self.app = app
        self.sources: list[Source] = [
            _path_source,
            _request_source,
            header_source,
            dependency_source,
            body_source,
            query_source,
        ]

    def plan(
        self,
        handler: Callable[..., Any],
        route_params: dict[str, Converter],
        options: dict[str, Any] | None = None,
    ) -> HandlerPlan:
        """Inspect `handler` once and return its call plan.

        `options` are the route's; `status` sets the status of a successful
        typed result (default 200).
        """
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
        bodies = [r.name for r in resolvers if r.location == "body"]
        if len(bodies) > 1:
            raise ConfigurationError(
                f"handler {name} takes {len(bodies)} bodies ({', '.join(bodies)}); a request "
                "has one JSON body: make one Struct that holds them"
            )
        status = (options or {}).get("status", 200)
        encoder = ResultEncoder.for_annotation(hints.get("return", Any), name, status)
        return HandlerPlan(handler, name, resolvers, self.app, encoder)

    def _resolve(self, info: ParamInfo) -> Resolver:
        for source in self.sources:
            resolver = source(info, self.app)
            if resolver is not None:
                return resolver
        raise ConfigurationError(
            f"handler {info.handler_name}: cannot tell where parameter {info.name!r} "
            f"({_type_name(info.annotation)}) comes from. It is not a path parameter, a Request, "
            "a Header(), a query scalar, a JSON body (Struct, dataclass, TypedDict) nor a type "
            "that a provider or resource gives (register those before the route)."
        )


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "no annotation"
    return getattr(annotation, "__qualname__", None) or repr(annotation)


_PASS_THROUGH = frozenset({Any, dict, list, str, int, float, bool, type(None), object})


class ResultEncoder:
    """Turns a handler's result into a `Response`, guided by its return annotation.

    Only annotations that hold a Struct, dataclass or TypedDict get one (see
    `for_annotation`). A `Response` passes through and `None` is 204, as
    everywhere. Any other value is converted to the annotated type unless it
    already is exactly that type (`msgspec.convert(..., from_attributes=True)`:
    a dict or any object with the declared fields will do, and undeclared
    fields are dropped), then encoded. A result that does not fit is the
    handler's bug: a `TypeError` naming it, answered 500.
    """

    __slots__ = ("annotation", "exact", "name", "status", "_encode")

    def __init__(self, annotation: Any, name: str, status: int) -> None:
        self.annotation = annotation
        self.exact = annotation if isinstance(annotation, type) else None
        self.name = name
        self.status = status
        self._encode = msgspec.json.Encoder().encode

    @classmethod
    def for_annotation(cls, annotation: Any, name: str, status: int) -> ResultEncoder | None:
        """The encoder for this return annotation; None when the default one will do."""
        if _is_plain(annotation):
            return None if status == 200 else cls(Any, name, status)
        try:  # refuse at registration what msgspec cannot handle
            msgspec.json.schema(annotation)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"handler {name}: return annotation {_type_name(annotation)} is not a type "
                f"shoal can encode ({exc})"
            ) from exc
        if not _has_fields(annotation):  # `dict[str, int]`: nothing to filter, encode as is
            return None if status == 200 else cls(Any, name, status)
        return cls(annotation, name, status)

    def __call__(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status=204)
        if self.annotation is not Any and type(result) is not self.exact:
            try:
                result = msgspec.convert(result, self.annotation, from_attributes=True)
            except msgspec.ValidationError as exc:
                raise TypeError(
                    f"handler {self.name} returned a {type(result).__name__} that does not "
                    f"match its return annotation {_type_name(self.annotation)}: {exc}"
                ) from exc
        response = Response.__new__(Response)
        response.status = self.status
        response.headers = [("content-type", "application/json")]
        response.body = self._encode(result)
        return response


def _has_fields(annotation: Any) -> bool:
    """True when the annotation holds a Struct, dataclass or TypedDict (fields to filter)."""
    from .params import is_body_type, split_annotated

    annotation = split_annotated(annotation)[0]
    if is_body_type(annotation):
        return True
    return any(_has_fields(arg) for arg in typing.get_args(annotation) if arg is not Ellipsis)


def _is_plain(annotation: Any) -> bool:
    """True for annotations that add nothing to the default encoding (dict, Any, Response)."""
    if annotation in _PASS_THROUGH or annotation is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(annotation)
    if origin in (dict, list) and all(a is Any for a in typing.get_args(annotation)):
        return True
    if origin is dict and typing.get_args(annotation)[1:] in ((Any,), (object,)):
        return True
    if isinstance(annotation, type) and issubclass(annotation, Response):
        return True
    if origin in (typing.Union, types.UnionType):
        return all(_is_plain(a) or a is type(None) for a in typing.get_args(annotation))
    return False


def _ignore_request(handler: Callable[[], Awaitable[Any]]) -> Callable[[Request], Awaitable[Any]]:
    return lambda request: handler()


class HandlerPlan:
    """One handler and how to call it: `await plan(request)` returns its result.

    With a `ResultEncoder` the result is already a `Response`. Parameters
    from request-scoped providers are resolved after every other parameter
    validated, in a `RequestScope` closed once the response is built.
    """

    __slots__ = (
        "handler",
        "name",
        "resolvers",
        "is_async",
        "needs_body",
        "encoder",
        "_app",
        "call",
        "_direct",
        "_scoped",
    )

    def __init__(
        self,
        handler: Callable[..., Any],
        name: str,
        resolvers: list[Resolver],
        app: App,
        encoder: ResultEncoder | None = None,
    ) -> None:
        self.handler = handler
        self.name = name
        self.resolvers = resolvers
        self.is_async = inspect.iscoroutinefunction(handler) or (
            callable(handler) and inspect.iscoroutinefunction(type(handler).__call__)
        )
        self.needs_body = any(r.needs_body for r in resolvers)
        self.encoder = encoder
        self._app = app
        self.call: Callable[[Request], Awaitable[Any]]
        self._direct: list[Resolver] = list(resolvers)
        self._scoped: list[tuple[str, Any]] = []
        self.rebind()

    def rebind(self) -> None:
        """Choose the call path again, once providers are bound (at startup).

        `call(request)` returns an awaitable of the handler's result. For an
        async handler without parameters or typed result it returns the
        handler's own coroutine: no wrapper coroutine on the fastest path.
        """
        self._direct = []
        self._scoped = []
        for resolver in self.resolvers:
            provider = getattr(resolver, "provider", None)
            if provider is not None and provider.scope == "request":
                self._scoped.append((resolver.name, provider))
            else:
                self._direct.append(resolver)
        if self._scoped:
            self.call = self._call_scoped
        elif self.resolvers or self.encoder is not None:
            self.call = self._call_with_args
        elif self.is_async:
            self.call = _ignore_request(self.handler)
        else:
            self.call = self._call_bare

    def __call__(self, request: Request) -> Awaitable[Any]:
        return self.call(request)

    async def _call_bare(self, request: Request) -> Any:
        return await self._app.thread_pool.run(self.handler)

    async def arguments(self, request: Request) -> dict[str, Any]:
        """Resolve every parameter but request-scoped providers; all invalid ones → one 422."""
        if self.needs_body:
            await request.body()
        kwargs: dict[str, Any] = {}
        errors: list[dict[str, Any]] | None = None
        for resolver in self._direct:
            try:
                value = resolver(request)
                if resolver.is_async:
                    value = await value
            except Invalid as exc:
                errors = errors or []
                loc = exc.loc or [resolver.location, getattr(resolver, "public", resolver.name)]
                errors.append({"loc": loc, "msg": exc.message})
                continue
            kwargs[resolver.name] = value
        if errors:
            raise ValidationError(errors)
        return kwargs

    async def _call_with_args(self, request: Request) -> Any:
        kwargs = await self.arguments(request)
        if self.is_async:
            result = await self.handler(**kwargs)
        else:
            result = await self._app.thread_pool.run(self.handler, **kwargs)
        return result if self.encoder is None else self.encoder(result)

    async def _call_scoped(self, request: Request) -> Any:
        from .dependencies import RequestScope

        kwargs = await self.arguments(request)
        scope = RequestScope(self._app.container, request)
        try:
            for name, provider in self._scoped:
                kwargs[name] = await scope.get(provider)
            if self.is_async:
                result = await self.handler(**kwargs)
            else:
                result = await self._app.thread_pool.run(self.handler, **kwargs)
            if self.encoder is not None:
                result = self.encoder(result)
        except BaseException as exc:
            await scope.aclose(exc)
            raise
        await scope.aclose()
        return result
