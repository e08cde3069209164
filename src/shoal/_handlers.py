"""Handler call plans: each handler's signature is inspected once, at registration.

A `HandlerPlan` knows, for every parameter, where its value comes from (a
`Resolver`), and whether the handler is a coroutine function (awaited on the
loop) or a plain function (run in the app's thread pool). Per request, the plan
only runs its resolvers and calls the handler.

Where a value can come from is decided by `Planner.sources`, a list of
functions tried in order for each parameter; the first that returns a
`Resolver` wins: path parameters, the `WebSocket` (a WebSocket route's),
the `Request`, headers marked `Header()`, cookies marked `Cookie()`,
providers and resources (`_dependencies`), the JSON body, then the query
string (`_params`); the vocabulary they share lives in `_introspect`. A
parameter that no source claims is a `ConfigurationError` at registration.

The return annotation is read once too (`ResultEncoder`): a handler that
declares it returns a `User` Struct (or `list[User]`, or a dataclass...) has
its result converted to that type before encoding, so fields the type does
not declare are never sent, whatever object the handler returned.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ._dependencies import Container, RequestScope, dependency_source
from ._introspect import (
    Invalid,
    ParamInfo,
    Resolver,
    Value,
    callable_name,
    has_fields,
    is_async_callable,
    is_plain_result,
    type_name,
)
from ._params import (
    body_source,
    converter,
    cookie_source,
    form_source,
    header_source,
    query_source,
)
from ._threadpool import ThreadPool
from .background import background_source, with_background
from .errors import ConfigurationError, ValidationError
from .requests import Request
from .responses import Response, to_response
from .routing import Converter
from .websockets import WebSocket

__all__ = ["HandlerPlan", "Planner", "ResultEncoder"]

Source = Callable[[ParamInfo], Resolver | None]


def _path_source(param: ParamInfo) -> Resolver | None:
    converter_ = param.route_params.get(param.name)
    if converter_ is None:
        return None
    name = param.name
    annotation = param.annotation
    if annotation in (inspect.Parameter.empty, Any, converter_.type) or (
        annotation is str and converter_.type is str
    ):
        return Value(name, "path", lambda request: request.path_params[name])
    # `{id}` annotated `id: int`: the converter matched text; coerce it.
    convert = converter(annotation, name)
    return Value(name, "path", lambda request: convert(request.path_params[name]))


def _request_source(param: ParamInfo) -> Resolver | None:
    if param.annotation is Request or (
        param.annotation is inspect.Parameter.empty and param.name == "request"
    ):
        return Value(param.name, "request", lambda request: request)
    return None


def _websocket_source(param: ParamInfo) -> Resolver | None:
    annotation = param.annotation
    if isinstance(annotation, type) and issubclass(annotation, WebSocket):
        return Value(param.name, "websocket", lambda socket: socket)
    return None


class Planner:
    """Builds `HandlerPlan`s for one app; `sources` lists where values come from, in order."""

    def __init__(self, container: Container, thread_pool: ThreadPool) -> None:
        self.container = container
        self.thread_pool = thread_pool
        self.sources: list[Source] = [
            _path_source,
            _websocket_source,
            _request_source,
            header_source,
            cookie_source,
            form_source,
            functools.partial(background_source, thread_pool),
            functools.partial(dependency_source, container),
            body_source,
            query_source,
        ]

    def plan(
        self,
        handler: Callable[..., Any],
        route_params: dict[str, Converter],
        status: int = 200,
    ) -> HandlerPlan:
        """Inspect `handler` once and return its call plan.

        `status` is the status of a successful typed result (the route's option).
        """
        name = callable_name(handler)
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
        if bodies and any(r.location == "form" for r in resolvers):
            raise ConfigurationError(
                f"handler {name} takes a JSON body ({bodies[0]}) and form fields: a request "
                "has one body, JSON or a form"
            )
        if len(bodies) > 1:
            raise ConfigurationError(
                f"handler {name} takes {len(bodies)} bodies ({', '.join(bodies)}); a request "
                "has one JSON body: make one Struct that holds them"
            )
        encoder = ResultEncoder.for_annotation(hints.get("return", Any), name, status)
        return HandlerPlan(handler, name, resolvers, self.container, self.thread_pool, encoder)

    def _resolve(self, info: ParamInfo) -> Resolver:
        for source in self.sources:
            resolver = source(info)
            if resolver is not None:
                return resolver
        raise ConfigurationError(
            f"handler {info.handler_name}: cannot tell where parameter {info.name!r} "
            f"({type_name(info.annotation)}) comes from. It is not a path parameter, a Request, "
            "a Header(), a Cookie(), a query scalar, a JSON body (Struct, dataclass, TypedDict) "
            "nor a type that a provider or resource gives (register those before the route)."
        )


class ResultEncoder:
    """Turns a handler's result into a `Response`, guided by its return annotation.

    Only annotations that hold a Struct, dataclass or TypedDict, or a status
    other than 200, get one (see `for_annotation`). The result is converted
    to the annotated type unless it already is exactly that type
    (`msgspec.convert(..., from_attributes=True)`: a dict or any object with
    the declared fields will do, and undeclared fields are dropped), then
    made a response by `to_response`, as every result is. A result that does
    not fit is the handler's bug: a `TypeError` naming it, answered 500.
    """

    __slots__ = ("annotation", "exact", "name", "status")

    def __init__(self, annotation: Any, name: str, status: int) -> None:
        self.annotation = annotation
        self.exact = annotation if isinstance(annotation, type) else None
        self.name = name
        self.status = status

    @classmethod
    def for_annotation(cls, annotation: Any, name: str, status: int) -> ResultEncoder | None:
        """The encoder for this return annotation; None when the default one will do."""
        if is_plain_result(annotation):
            return None if status == 200 else cls(Any, name, status)
        try:  # refuse at registration what msgspec cannot handle
            msgspec.json.schema(annotation)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"handler {name}: return annotation {type_name(annotation)} is not a type "
                f"shoal can encode ({exc})"
            ) from exc
        if not has_fields(annotation):  # `dict[str, int]`: nothing to filter, encode as is
            return None if status == 200 else cls(Any, name, status)
        return cls(annotation, name, status)

    def __call__(self, result: Any) -> Response:
        if (
            self.annotation is not Any
            and type(result) is not self.exact
            and result is not None
            and not isinstance(result, Response)
        ):
            try:
                result = msgspec.convert(result, self.annotation, from_attributes=True)
            except msgspec.ValidationError as exc:
                raise TypeError(
                    f"handler {self.name} returned a {type(result).__name__} that does not "
                    f"match its return annotation {type_name(self.annotation)}: {exc}"
                ) from exc
        return to_response(result, self.status)


def _error(resolver: Resolver, exc: Invalid) -> dict[str, Any]:
    # one entry of a 422's `errors`: where (location and public name) and what
    loc = exc.loc or [resolver.location, getattr(resolver, "public", resolver.name)]
    return {"loc": loc, "msg": exc.message}


def _getter(resolver: Resolver) -> Callable[[Request], Any]:
    # what computes the resolver's value, called without the resolver's own
    # `__call__` where it only forwards (a path parameter, the request): an
    # instance's `__call__` costs a slot look-up on every call, a frame more
    return resolver.get if type(resolver) is Value else resolver.__call__


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
        "call",
        "_container",
        "_invoke",
        "_getters",
        "_scoped",
        "_sync_arguments",
    )

    def __init__(
        self,
        handler: Callable[..., Any],
        name: str,
        resolvers: list[Resolver],
        container: Container,
        thread_pool: ThreadPool,
        encoder: ResultEncoder | None = None,
    ) -> None:
        self.handler = handler
        self.name = name
        self.resolvers = resolvers
        self.is_async = is_async_callable(handler)
        self.needs_body = any(r.needs_body for r in resolvers)
        self.encoder = encoder
        self._container = container
        # the handler itself when async, else a function that runs it in the pool
        self._invoke = thread_pool.as_async(handler, self.is_async)
        self.call: Callable[[Request], Awaitable[Any]]
        self._getters: list[tuple[str, Callable[[Request], Any], Resolver]] = []
        self._scoped: list[tuple[str, Any]] = []
        self._sync_arguments = False
        self.rebind()

    def rebind(self) -> None:
        """Choose the call path again, once providers are bound (at startup).

        `call(request)` returns an awaitable of the handler's result. For a
        handler without parameters or typed result it returns the handler's
        own coroutine (or the pool's, for a `def`): no wrapper coroutine on
        the fastest path.
        """
        direct: list[Resolver] = []
        self._scoped = []
        for resolver in self.resolvers:
            provider = getattr(resolver, "provider", None)
            if provider is not None and provider.scope == "request":
                self._scoped.append((resolver.name, provider))
            else:
                direct.append(resolver)
        # no body to read and no async resolver: the arguments are found without awaiting
        self._sync_arguments = not self.needs_body and not any(r.is_async for r in direct)
        self._getters = [(r.name, _getter(r), r) for r in direct]
        if self._scoped:
            self.call = self._call_scoped
        elif self.resolvers or self.encoder is not None:
            self.call = self._call_with_args
        else:
            self.call = _ignore_request(self._invoke)
        if any(getattr(resolver, "background", False) for resolver in self.resolvers):
            self.call = with_background(self.call)  # decided here: no cost to other routes

    def __call__(self, request: Request) -> Awaitable[Any]:
        return self.call(request)

    async def arguments(self, request: Request) -> dict[str, Any]:
        """Resolve every parameter but request-scoped providers; all invalid ones → one 422."""
        if self._sync_arguments:
            return self._sync_resolved(request)
        if self.needs_body:
            await request.body()
        kwargs: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for name, get, resolver in self._getters:
            try:
                value = get(request)
                if resolver.is_async:
                    value = await value
            except Invalid as exc:
                errors.append(_error(resolver, exc))
                continue
            kwargs[name] = value
        if errors:
            raise ValidationError(errors)
        return kwargs

    def _sync_resolved(self, request: Request) -> dict[str, Any]:
        # `arguments` without a coroutine: most handlers' parameters (path,
        # query, headers, sync providers) need no await
        kwargs: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for name, get, resolver in self._getters:
            try:
                kwargs[name] = get(request)
            except Invalid as exc:
                errors.append(_error(resolver, exc))
        if errors:
            raise ValidationError(errors)
        return kwargs

    async def _call_with_args(self, request: Request) -> Any:
        if self._sync_arguments:
            result = await self._invoke(**self._sync_resolved(request))
        else:
            result = await self._invoke(**await self.arguments(request))
        return result if self.encoder is None else self.encoder(result)

    async def _call_scoped(self, request: Request) -> Any:
        if self._sync_arguments:
            kwargs = self._sync_resolved(request)
        else:
            kwargs = await self.arguments(request)
        scope = RequestScope(self._container, request)
        try:
            for name, provider in self._scoped:
                kwargs[name] = await scope.get(provider)
            result = await self._invoke(**kwargs)
            if self.encoder is not None:
                result = self.encoder(result)
        except BaseException as exc:
            await scope.aclose(exc)
            raise
        if scope.stack is not None:  # a generator provider to close
            await scope.aclose()
        return result
