"""The vocabulary shared by handlers, params, dependencies and openapi.

Everything here is decided at registration, from a signature or an
annotation, and nothing here knows an app: this module sits below
`_handlers`, `_params`, `_dependencies` and `openapi`, which all import it and
never each other's internals.

- **Markers** a parameter carries in `Annotated[...]`: `Query`, `Header`,
  `Cookie`, `Form`, `Body`, `Depends`, and `marker()` to find one.
- **A parameter as a source sees it** (`ParamInfo`), what a source returns
  (a `Resolver`), and `Invalid`, which a resolver raises for a bad value.
- **The annotation classifier**: `is_scalar` (a query or header string
  converts to it), `sequence_item` (a list of scalars), `is_body_type` (a
  Struct, dataclass or TypedDict: a JSON body), `has_fields` (a result type
  whose undeclared fields are filtered), `is_plain_result` (a return
  annotation that adds nothing to the default encoding).
- **Callables**: `is_async_callable`, `callable_name`, `type_name`.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import inspect
import types
import typing
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import msgspec

from .responses import Response
from .routing import Converter

if TYPE_CHECKING:
    from .requests import Request

__all__ = [
    "MISSING",
    "Body",
    "Cookie",
    "Depends",
    "Form",
    "Header",
    "Invalid",
    "ParamInfo",
    "Query",
    "Resolver",
    "Value",
    "callable_name",
    "has_fields",
    "is_async_callable",
    "is_body_type",
    "is_plain_result",
    "is_scalar",
    "keep_meta",
    "marker",
    "sequence_item",
    "split_annotated",
    "type_name",
    "without_none",
]

MISSING: Any = object()
"""What `sequence_item` returns for an annotation that is no sequence of scalars."""


# -- markers -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """Marks a parameter as read from the query string, optionally under another `alias`."""

    alias: str | None = None
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Header:
    """Marks a parameter as read from a request header (`Header("X-Token")`).

    Without an alias the header's name is the parameter's, `_` written `-`.
    """

    alias: str | None = None
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Cookie:
    """Marks a parameter as read from a request cookie (`Cookie("session_id")`).

    Without an alias the cookie's name is the parameter's; names are case-sensitive.
    """

    alias: str | None = None
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Form:
    """Marks a parameter as read from a form body (`Form("email")`), or, on a Struct,
    dataclass or TypedDict, as the whole form validated into it.

    Without an alias the field's name is the parameter's.
    """

    alias: str | None = None
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Body:
    """Marks a parameter as the JSON request body, whatever its type."""

    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Depends:
    """Marks a parameter as provided by `provider`: `Annotated[User, Depends(current_user)]`."""

    provider: Callable[..., Any]


# -- parameters and resolvers ----------------------------------------------------


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
    after the body has been read, so it may use `request.received_body`.
    """

    name: str
    location: str
    needs_body: bool
    is_async: bool

    def __call__(self, request: Request) -> Any: ...


@dataclasses.dataclass(frozen=True, slots=True)
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


@dataclasses.dataclass(slots=True)
class Value:
    """A resolver that returns one function of the request."""

    name: str
    location: str
    get: Callable[[Request], Any]
    needs_body: bool = False
    is_async: bool = False

    def __call__(self, request: Request) -> Any:
        return self.get(request)


# -- annotations ---------------------------------------------------------------

_SCALARS: tuple[type, ...] = (
    str,
    int,
    float,
    bool,
    bytes,
    uuid.UUID,
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
)
_SEQUENCES: tuple[Any, ...] = (list, tuple, set, frozenset)
_PASS_THROUGH = frozenset({Any, dict, list, str, int, float, bool, type(None), object})


def split_annotated(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """`Annotated[T, a, b]` → `(T, (a, b))`; anything else → `(annotation, ())`."""
    if typing.get_origin(annotation) is Annotated:
        return annotation.__origin__, annotation.__metadata__
    return annotation, ()


def marker(annotation: Any, kind: type | tuple[type, ...]) -> Any:
    """The first `kind` instance (or any of the kinds) in `Annotated` metadata, or None."""
    for item in split_annotated(annotation)[1]:
        if isinstance(item, kind):
            return item
    return None


def keep_meta(annotation: Any, base: Any) -> Any:
    """`base` with the `msgspec.Meta` constraints of `annotation` kept."""
    metas = tuple(m for m in split_annotated(annotation)[1] if isinstance(m, msgspec.Meta))
    return Annotated[(base, *metas)] if metas else base


def without_none(annotation: Any) -> tuple[Any, bool]:
    """`T | None` → `(T, True)`; anything else → `(annotation, False)`."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) < len(typing.get_args(annotation)):
            inner = args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
            return inner, True
    return annotation, False


def is_scalar(annotation: Any) -> bool:
    """True for the types a single query or header string converts to."""
    annotation = without_none(split_annotated(annotation)[0])[0]
    if typing.get_origin(annotation) is Literal:
        return True
    return isinstance(annotation, type) and issubclass(annotation, (*_SCALARS, enum.Enum))


def sequence_item(annotation: Any) -> Any:
    """The item type of `list[T]`, `tuple[T, ...]`, `set[T]` of scalars, else `MISSING`."""
    annotation = without_none(split_annotated(annotation)[0])[0]
    origin = typing.get_origin(annotation)
    if origin not in _SEQUENCES:
        return MISSING
    args = typing.get_args(annotation)
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return MISSING
    return args[0] if args and is_scalar(args[0]) else MISSING


def is_body_type(annotation: Any) -> bool:
    """True for a msgspec `Struct`, a dataclass or a `TypedDict` (optionally `| None`)."""
    annotation = without_none(split_annotated(annotation)[0])[0]
    if not isinstance(annotation, type):
        return False
    return (
        issubclass(annotation, msgspec.Struct)
        or dataclasses.is_dataclass(annotation)
        or typing.is_typeddict(annotation)
    )


def has_fields(annotation: Any) -> bool:
    """True when the annotation holds a Struct, dataclass or TypedDict (fields to filter)."""
    annotation = split_annotated(annotation)[0]
    if is_body_type(annotation):
        return True
    return any(has_fields(arg) for arg in typing.get_args(annotation) if arg is not Ellipsis)


def is_plain_result(annotation: Any) -> bool:
    """True for return annotations that add nothing to the default encoding (dict, Any...)."""
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
        return all(is_plain_result(a) or a is type(None) for a in typing.get_args(annotation))
    return False


# -- callables -------------------------------------------------------------------


def is_async_callable(func: Any) -> bool:
    """True for a coroutine function, or an object whose `__call__` is one."""
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(type(func), "__call__", None)  # noqa: B004
    )


def callable_name(func: Any) -> str:
    """A function's qualified name (the repr of anything else), for messages."""
    return getattr(func, "__qualname__", None) or repr(func)


def type_name(annotation: Any) -> str:
    """An annotation's name for messages: `User`, `no annotation`, or its repr."""
    if annotation is inspect.Parameter.empty:
        return "no annotation"
    return getattr(annotation, "__qualname__", None) or repr(annotation)
