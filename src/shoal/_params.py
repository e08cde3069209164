"""Where typed handler parameters come from: the query string, headers and the JSON body.

```python
@app.post("/users/{team}/members")
async def add_member(
    team: str,                                   # path
    payload: NewUser,                            # JSON body (a Struct or dataclass)
    notify: bool = False,                        # query: ?notify=true
    tags: list[str] | None = None,               # query, repeatable: ?tags=a&tags=b
    token: Annotated[str, Header("X-Token")],    # header
) -> User: ...
```

Rules (decided here, at registration, never per request):

- A scalar (`str`, `int`, `float`, `bool`, `UUID`, dates, `Decimal`, enums,
  `Literal`, any of them constrained with `msgspec.Meta`) or a list, tuple or
  set of scalars, optionally `| None`, that is not a path parameter is read
  from the query string. `Query("name")` renames it or forces the query.
- `Header("X-Name")` reads a header (the name defaults to the parameter's,
  with `_` as `-`); headers are matched without regard to case.
- `Form("name")` reads a form field (urlencoded or multipart), converted like
  a query parameter; `UploadFile` (or `list[UploadFile]`) a file;
  `Annotated[Struct, Form()]` the whole form validated into the Struct.
- `Cookie("name")` reads a cookie (the name defaults to the parameter's;
  case-sensitive), one scalar.
- A msgspec `Struct`, a dataclass or a `TypedDict` is the JSON body, decoded
  by a decoder built once per handler; `Body()` forces the body for any type.
  A handler has at most one body parameter.
- A parameter without a default is required. A missing or invalid value is
  an `Invalid` for its location; the plan collects every one into a single
  422 problem response.

Query and header strings are converted by specialised functions for `str`,
`int`, `float` and `bool`, and by msgspec (`strict=False`) for everything
else, through a one-field Struct built once so msgspec caches the type.
"""

from __future__ import annotations

import contextlib
import re
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from ._introspect import (
    MISSING,
    Body,
    Cookie,
    Form,
    Header,
    Invalid,
    ParamInfo,
    Query,
    Resolver,
    is_body_type,
    is_scalar,
    keep_meta,
    marker,
    sequence_item,
    split_annotated,
    without_none,
)
from .errors import JSON_DECODE_ERRORS, ConfigurationError, HTTPError, malformed_json
from .forms import UploadFile

if TYPE_CHECKING:
    from .requests import Request

__all__ = ["body_source", "converter", "header_source", "query_source"]


# -- converters ------------------------------------------------------------------

_BOOLS = {"true": True, "false": False, "1": True, "0": False}
_AT_WRAPPER = re.compile(r" - at `\$\.v(.*)`$")


def _as_int(text: str) -> int:
    if text.isascii() and text.isdigit():
        return int(text)
    raise ValueError


def _as_float(text: str) -> float:
    value = float(text)
    if "_" in text or not text.isascii():
        raise ValueError
    return value


def _as_bool(text: str) -> bool:
    return _BOOLS[text.lower()]


def _message(exc: Exception, raw: Any, name: str) -> str:
    """msgspec's message, made readable for strings that came from a URL or header."""
    text = str(exc)
    found = _AT_WRAPPER.search(text)
    if found is not None:
        where = found.group(1)
        text = text[: found.start()] + (f" - at `{name}{where}`" if where else "")
    if isinstance(raw, str) and "got `str`" in text:
        shown = raw if len(raw) <= 40 else raw[:37] + "..."
        text = text.replace("got `str`", f"got {shown!r}", 1)
    return text


def converter(annotation: Any, name: str) -> Callable[[Any], Any]:
    """A function from the raw string (or list of strings) to `annotation`; raises `Invalid`.

    `str`, `int`, `float` and `bool` get cheap specialised functions; other
    types go through msgspec with a one-field Struct built here, once.
    """
    if annotation is str:
        return _identity
    if annotation in (list[str], typing.List[str]):  # noqa: UP006
        return list
    fast = {int: _as_int, float: _as_float, bool: _as_bool}.get(annotation)
    wrapper = msgspec.defstruct("_Param", [("v", annotation)])

    def slow(raw: Any) -> Any:
        try:
            value: Any = msgspec.convert({"v": raw}, wrapper, strict=False)
            return value.v
        except msgspec.ValidationError as exc:
            raise Invalid(_message(exc, raw, name)) from None

    if fast is None:
        return slow

    def convert(raw: Any) -> Any:
        try:
            return fast(raw)
        except (ValueError, KeyError, AttributeError):
            return slow(raw)  # msgspec decides, and words the error

    return convert


def _identity(raw: Any) -> Any:
    return raw


# -- resolvers -------------------------------------------------------------------


def _copy_default(default: Any) -> Callable[[], Any]:
    if isinstance(default, list | dict | set):
        return lambda: default.copy()
    return lambda: default


class _Lookup:
    """Reads one query parameter or header and converts it (see the module docs)."""

    __slots__ = (
        "name",
        "location",
        "key",
        "public",
        "convert",
        "many",
        "required",
        "default",
        "needs_body",
        "is_async",
    )

    def __init__(self, param: ParamInfo, location: str, public: str) -> None:
        self.name = param.name
        self.location = location
        self.public = public
        self.key = public.lower() if location == "header" else public
        self.many = sequence_item(param.annotation) is not MISSING
        # `int | None`: a present value must be an int; absence gives the default
        inner = without_none(split_annotated(param.annotation)[0])[0]
        self.convert = converter(keep_meta(param.annotation, inner), public)
        self.required = not param.has_default
        self.default = _copy_default(param.default)
        self.needs_body = False
        self.is_async = False

    def missing(self) -> Any:
        if self.required:
            raise Invalid("Field required")
        return self.default()


class _QueryValue(_Lookup):
    __slots__ = ()

    def __call__(self, request: Request) -> Any:
        values = request.query.values_of(self.key)
        if values is None:
            return self.missing()
        return self.convert(values if self.many else values[0])


class _HeaderValue(_Lookup):
    __slots__ = ()

    def __call__(self, request: Request) -> Any:
        values = request.headers.values_of(self.key)
        if values is None:
            return self.missing()
        return self.convert(values if self.many else values[0])


def header_source(param: ParamInfo) -> Resolver | None:
    """Claims parameters marked `Header(...)`."""
    found = marker(param.annotation, Header)
    if found is None:
        return None
    _check_simple(param, "header")
    return _HeaderValue(param, "header", found.alias or param.name.replace("_", "-"))


class _CookieValue(_Lookup):
    __slots__ = ()

    def __call__(self, request: Request) -> Any:
        value = request.cookies.get(self.key)
        if value is None:
            return self.missing()
        return self.convert(value)


def cookie_source(param: ParamInfo) -> Resolver | None:
    """Claims parameters marked `Cookie(...)`: one scalar each."""
    found = marker(param.annotation, Cookie)
    if found is None:
        return None
    if not is_scalar(param.annotation):
        raise ConfigurationError(
            f"handler {param.handler_name}: cookie parameter {param.name!r} must be a scalar "
            f"(str, int, UUID, enum...), not {param.annotation!r}"
        )
    return _CookieValue(param, "cookie", found.alias or param.name)


class _FormValue(_Lookup):
    """One text field of a form (or all of its values, for a list)."""

    __slots__ = ()

    async def __call__(self, request: Request) -> Any:
        values = (await request.form()).getall(self.key)
        if not values:
            return self.missing()
        if any(isinstance(value, UploadFile) for value in values):
            raise Invalid("Expected a text field, got a file")
        return self.convert(values if self.many else values[0])


class _FormFile:
    """One uploaded file (or all files of a field, for `list[UploadFile]`)."""

    __slots__ = ("name", "public", "many", "required", "default")
    location = "form"
    needs_body = False
    is_async = True

    def __init__(self, param: ParamInfo, public: str, many: bool) -> None:
        self.name = param.name
        self.public = public
        self.many = many
        self.required = not param.has_default
        self.default = param.default

    async def __call__(self, request: Request) -> Any:
        values = (await request.form()).getall(self.public)
        if not values:
            if self.required:
                raise Invalid("File required")
            return self.default
        if not all(isinstance(value, UploadFile) for value in values):
            raise Invalid("Expected a file, got a text field")
        return values if self.many else values[0]


_SEQUENCE_TYPES = (
    msgspec.inspect.ListType,
    msgspec.inspect.SetType,
    msgspec.inspect.FrozenSetType,
    msgspec.inspect.VarTupleType,
)


class _FormModel:
    """The whole form converted into a Struct, dataclass or TypedDict (422 with locations)."""

    __slots__ = ("name", "annotation", "lists", "required", "default")
    location = "form"
    needs_body = False
    is_async = True

    def __init__(self, param: ParamInfo, annotation: Any) -> None:
        self.name = param.name
        self.annotation = annotation
        info = msgspec.inspect.type_info(annotation)
        fields = getattr(info, "fields", ())
        self.lists = frozenset(
            field.encode_name for field in fields if isinstance(field.type, _SEQUENCE_TYPES)
        )
        self.required = not param.has_default
        self.default = param.default

    async def __call__(self, request: Request) -> Any:
        form = await request.form()
        data: dict[str, Any] = {}
        for key in form:
            values = form.getall(key)
            if any(isinstance(value, UploadFile) for value in values):
                continue  # files are parameters of their own
            data[key] = values if key in self.lists or len(values) > 1 else values[0]
        try:
            return msgspec.convert(data, self.annotation, strict=False)
        except msgspec.ValidationError as exc:
            message, loc = _body_error(str(exc))
            raise Invalid(message, loc=["form", *loc[1:]]) from None


def _upload_type(annotation: Any) -> tuple[bool, bool]:
    """(is an UploadFile parameter, is a list of them)."""
    base = without_none(split_annotated(annotation)[0])[0]
    if base is UploadFile:
        return True, False
    if typing.get_origin(base) is list and typing.get_args(base) == (UploadFile,):
        return True, True
    return False, False


def form_source(param: ParamInfo) -> Resolver | None:
    """Claims parameters marked `Form(...)` and those typed `UploadFile` (or a list of them)."""
    found = marker(param.annotation, Form)
    is_file, many = _upload_type(param.annotation)
    if found is None and not is_file:
        return None
    public = (found.alias if found else None) or param.name
    if is_file:
        return _FormFile(param, public, many)
    if is_body_type(param.annotation):
        inner = without_none(split_annotated(param.annotation)[0])[0]
        return _FormModel(param, inner)
    _check_simple(param, "form")
    resolver = _FormValue(param, "form", public)
    resolver.is_async = True
    return resolver


def query_source(param: ParamInfo) -> Resolver | None:
    """Claims parameters marked `Query(...)`, and scalars and lists of scalars."""
    found = marker(param.annotation, Query)
    if found is None and not (
        is_scalar(param.annotation) or sequence_item(param.annotation) is not MISSING
    ):
        return None
    _check_simple(param, "query")
    return _QueryValue(param, "query", (found.alias if found else None) or param.name)


def _check_simple(param: ParamInfo, where: str) -> None:
    if not (is_scalar(param.annotation) or sequence_item(param.annotation) is not MISSING):
        raise ConfigurationError(
            f"handler {param.handler_name}: {where} parameter {param.name!r} must be a scalar "
            "(str, int, float, bool, UUID, date, enum, Literal...) or a list of scalars, "
            f"not {param.annotation!r}"
        )


# -- body ------------------------------------------------------------------------

_JSON_TYPES = ("application/json", "+json")


class _BodyValue:
    """Decodes the JSON body with a decoder built once for the parameter's type."""

    __slots__ = (
        "name",
        "decode",
        "decode_lax",
        "required",
        "default",
        "location",
        "needs_body",
        "is_async",
    )

    def __init__(self, param: ParamInfo, annotation: Any) -> None:
        self.name = param.name
        self.decode = msgspec.json.Decoder(annotation).decode
        self.decode_lax = msgspec.json.Decoder(annotation, strict=False).decode
        self.required = not param.has_default
        self.default = param.default
        self.location = "body"
        self.needs_body = True
        self.is_async = False

    def __call__(self, request: Request) -> Any:
        body = request.received_body
        if not body:
            if self.required:
                raise Invalid("A JSON body is required", loc=["body"])
            return self.default
        content_type = request.headers.get("content-type")
        if content_type is not None:
            media = content_type.partition(";")[0].strip().lower()
            if not media.endswith(_JSON_TYPES):
                raise HTTPError(
                    415, f"The body must be JSON (application/json), not {media or 'unset'}."
                )
        try:
            return self.decode(body)
        except msgspec.ValidationError as exc:
            text = str(exc)
            if _INTEGRAL_FLOAT.match(text):
                # JSON has one number type: 13.0 is the integer 13 (as JSON Schema says)
                with contextlib.suppress(msgspec.ValidationError):
                    return self.decode_lax(body)
            message, loc = _body_error(text)
            raise Invalid(message, loc=loc) from None
        except JSON_DECODE_ERRORS as exc:
            raise malformed_json(exc, body) from None


_INTEGRAL_FLOAT = re.compile(r"Expected `int[^`]*`, got `float`")
_JSON_PATH = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")


def _body_error(text: str) -> tuple[str, list[str | int]]:
    """Split msgspec's `Expected ... - at `$.a[0].b`` into a message and a `loc`."""
    return split_validation_error(text, "body")


def split_validation_error(text: str, root: str) -> tuple[str, list[str | int]]:
    """msgspec's `Expected ... - at `$.a[0].b`` as a message and a `loc` under `root`."""
    message, sep, where = text.rpartition(" - at `")
    if not sep:
        return text, [root]
    loc: list[str | int] = [root]
    for found in _JSON_PATH.finditer(where.rstrip("`")[1:]):
        if found.group(1) is not None:
            loc.append(found.group(1))
        elif found.group(2) is not None:
            loc.append(int(found.group(2)))
    return message, loc


def body_source(param: ParamInfo) -> Resolver | None:
    """Claims a parameter marked `Body()`, or typed as a Struct, dataclass or TypedDict."""
    annotation = param.annotation
    if marker(annotation, Body) is None and (
        not is_body_type(annotation) or marker(annotation, Query) or marker(annotation, Header)
    ):
        return None
    return _BodyValue(param, param.annotation)
