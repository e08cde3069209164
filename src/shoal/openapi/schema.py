"""The OpenAPI 3.1 document of an app, built from its routes' call plans.

Every schema comes from msgspec (`msgspec.json.schema_components`), so the
document says exactly what the validators accept and the encoders send:

- path, query, header and cookie parameters from the plan's resolvers, typed by
  their annotations (path converters when unannotated); `required` unless
  the parameter has a default;
- the request body from the body parameter's type;
- the success response from the return annotation, with the route's
  `status` option (default 200; 204 for `-> None`);
- `422` (a `ValidationProblem`) for every operation that validates input,
  each entry of the route's `responses` option (`{404: "No such user"}`), and
  a `default` problem+json response, since every error shoal sends is one;
- the handler's docstring: its first line is the summary, the rest the
  description. Route options `summary`, `description`, `tags`,
  `operation_id`, `deprecated` override; `include_in_schema=False` hides a
  route. `HEAD` and automatic `OPTIONS` are not listed.
- WebSocket routes, which OpenAPI cannot describe, are listed under the
  extension field `x-websockets` at the top of the document (path: summary,
  description, tags and the handshake's parameters), never as a GET.
"""

from __future__ import annotations

import inspect
import re
import typing
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import msgspec

from .._introspect import (
    Body,
    Cookie,
    Header,
    Query,
    is_plain_result,
    keep_meta,
    marker,
    split_annotated,
    without_none,
)
from ..forms import UploadFile
from ..responses import Response
from ..routing import compile_template

if TYPE_CHECKING:
    from ..app import App, Endpoint

__all__ = ["FieldError", "Problem", "ValidationProblem", "openapi_schema"]

REF = "#/components/schemas/{name}"
PROBLEM_JSON = "application/problem+json"
_MARKERS = (Query, Header, Cookie, Body)
_CONVERTER_IN_PATH = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*):[a-z]+}")


class Problem(msgspec.Struct):
    """An RFC 9457 problem document: every error response shoal sends."""

    type: str
    title: str
    status: int
    detail: str


class FieldError(msgspec.Struct):
    """One invalid field: where it is (`["query", "limit"]`, `["body", "email"]`) and why."""

    loc: list[str | int]
    msg: str


class ValidationProblem(msgspec.Struct):
    """A 422 problem document listing every invalid field."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError]


class _Schemas:
    """Collects annotations, then asks msgspec for all their schemas at once."""

    def __init__(self) -> None:
        self.types: list[Any] = [Problem, ValidationProblem]
        self.slots: list[tuple[dict[str, Any], str]] = []

    def put(self, target: dict[str, Any], key: str, annotation: Any) -> None:
        """Set `target[key]` to the schema of `annotation`, once all are known."""
        self.slots.append((target, key))
        self.types.append(annotation)

    def resolve(self) -> dict[str, Any]:
        schemas, components = msgspec.json.schema_components(self.types, ref_template=REF)
        for (target, key), schema in zip(self.slots, schemas[2:], strict=True):
            target[key] = schema
        return components


def _content(media_type: str, schemas: _Schemas, annotation: Any) -> dict[str, Any]:
    media: dict[str, Any] = {}
    schemas.put(media, "schema", annotation)
    return {media_type: media}


def _problem(description: str, name: str = "Problem") -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF.format(name=name)}}},
    }


def _parameters_and_body(endpoint: Endpoint, schemas: _Schemas, operation: dict[str, Any]) -> bool:
    """Fill `parameters` and `requestBody`; True when the operation validates input."""
    handler = endpoint.handler
    hints = typing.get_type_hints(handler, include_extras=True)
    names = list(inspect.signature(handler).parameters)
    route_params, _, _ = compile_template(endpoint.template)
    parameters: list[dict[str, Any]] = []
    validates = False
    form: dict[str, Any] = {"properties": {}, "required": [], "files": False, "model": None}
    for name, resolver in zip(names, endpoint.plan.resolvers, strict=True):
        annotation = hints.get(name, inspect.Parameter.empty)
        location = resolver.location
        if location in ("query", "header", "cookie", "path"):
            validates = True
            base = split_annotated(annotation)[0]
            if location == "path" and base in (inspect.Parameter.empty, Any):
                annotation = route_params[name].type
            schema_type = keep_meta(annotation, without_none(base)[0])
            param: dict[str, Any] = {
                "name": getattr(resolver, "public", name),
                "in": location,
                "required": location == "path" or bool(getattr(resolver, "required", True)),
            }
            found = marker(annotation, _MARKERS)
            if found is not None and found.description:
                param["description"] = found.description
            schemas.put(param, "schema", schema_type)
            parameters.append(param)
        elif location == "body":
            validates = True
            body: dict[str, Any] = {
                "required": bool(getattr(resolver, "required", True)),
                "content": _content("application/json", schemas, without_none(annotation)[0]),
            }
            found = marker(annotation, _MARKERS)
            if found is not None and found.description:
                body["description"] = found.description
            operation["requestBody"] = body
        elif location == "form":
            validates = True
            _form_part(resolver, annotation, schemas, form)
    if form["properties"] or form["model"] is not None:
        operation["requestBody"] = _form_body(form, schemas)
    if parameters:
        operation["parameters"] = parameters
    return validates


_FILE = {"type": "string", "format": "binary"}
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _form_part(resolver: Any, annotation: Any, schemas: _Schemas, form: dict[str, Any]) -> None:
    """Add one form parameter (a field, a file, or the whole form's type) to `form`."""
    base = without_none(split_annotated(annotation)[0])[0]
    if not hasattr(resolver, "public"):  # the whole form as a Struct, dataclass or TypedDict
        form["model"] = base
        return
    name = resolver.public
    properties = form["properties"]
    if base is UploadFile:
        properties[name] = dict(_FILE)
        form["files"] = True
    elif typing.get_origin(base) is list and typing.get_args(base) == (UploadFile,):
        properties[name] = {"type": "array", "items": dict(_FILE)}
        form["files"] = True
    else:
        schemas.put(properties, name, keep_meta(annotation, base))
    if getattr(resolver, "required", True):
        form["required"].append(name)


def _form_body(form: dict[str, Any], schemas: _Schemas) -> dict[str, Any]:
    """The `requestBody` of a handler with form parameters."""
    model = form["model"]
    if model is not None and not form["properties"]:
        holder: dict[str, Any] = {}
        schemas.put(holder, "schema", model)
        return {"required": True, "content": {media: holder for media in _FORM_TYPES}}
    schema: dict[str, Any] = {"type": "object", "properties": form["properties"]}
    if form["required"]:
        schema["required"] = form["required"]
    if model is not None:  # a Struct's fields, and files beside it
        parts: list[Any] = [None, schema]
        schemas.put(parts, 0, model)  # type: ignore[arg-type]  # a list slot works the same
        schema = {"allOf": parts}
    media_types = ("multipart/form-data",) if form["files"] else _FORM_TYPES
    return {
        "required": bool(form["required"]) or model is not None,
        "content": {media: {"schema": schema} for media in media_types},
    }


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Success"


def _success(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    hints = typing.get_type_hints(endpoint.handler)
    annotation = hints.get("return", inspect.Parameter.empty)
    encoder = endpoint.plan.encoder
    code = int(endpoint.options.get("status", encoder.status if encoder else 200))
    status, phrase = str(code), _phrase(code)
    if annotation is None or annotation is type(None):
        return {"204": {"description": "No Content"}}
    if annotation is inspect.Parameter.empty or (
        isinstance(annotation, type) and issubclass(annotation, Response)
    ):
        return {status: {"description": phrase}}
    inner, nullable = without_none(annotation)
    responses: dict[str, Any] = {}
    if is_plain_result(inner) and inner in (Any, object):
        responses[status] = {"description": phrase, "content": {"application/json": {}}}
    else:
        responses[status] = {
            "description": phrase,
            "content": _content("application/json", schemas, inner),
        }
    if nullable:
        responses["204"] = {"description": "No Content"}
    return responses


def _described(endpoint: Endpoint) -> dict[str, Any]:
    """`summary`, `description` (the options', else the docstring's) and `tags`, where given."""
    options = endpoint.options
    entry: dict[str, Any] = {}
    doc = inspect.getdoc(endpoint.handler) or ""
    first, _, rest = doc.partition("\n")
    summary = options.get("summary") or first.strip()
    description = options.get("description") or rest.strip()
    if summary:
        entry["summary"] = summary
    if description:
        entry["description"] = description
    if options.get("tags"):
        entry["tags"] = list(options["tags"])
    return entry


def _operation(
    endpoint: Endpoint, method: str, schemas: _Schemas, operation_ids: set[str]
) -> dict[str, Any]:
    options = endpoint.options
    operation = _described(endpoint)
    base_id = str(options.get("operation_id") or getattr(endpoint.handler, "__name__", "op"))
    if len(endpoint.methods) > 1:
        base_id = f"{base_id}_{method.lower()}"
    operation_id, n = base_id, 1
    while operation_id in operation_ids:
        n += 1
        operation_id = f"{base_id}_{n}"
    operation_ids.add(operation_id)
    operation["operationId"] = operation_id
    if options.get("deprecated"):
        operation["deprecated"] = True
    validates = _parameters_and_body(endpoint, schemas, operation)
    responses = _success(endpoint, schemas)
    for status, text in sorted((options.get("responses") or {}).items(), key=lambda i: str(i[0])):
        responses[str(status)] = _problem(str(text))
    if validates:
        responses["422"] = _problem("Some values in the request are invalid", "ValidationProblem")
    responses["default"] = _problem("An error, as an RFC 9457 problem document")
    operation["responses"] = responses
    return operation


def _websocket(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    """A WebSocket route's entry in `x-websockets`: its text and handshake parameters."""
    options = endpoint.options
    entry = _described(endpoint)
    if options.get("deprecated"):
        entry["deprecated"] = True
    _parameters_and_body(endpoint, schemas, entry)
    return entry


def openapi_schema(app: App) -> dict[str, Any]:
    """The OpenAPI 3.1 document for `app` (see the module docs for what goes where)."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    websockets: dict[str, Any] = {}
    for endpoint in app.endpoints:
        if not endpoint.options.get("include_in_schema", True):
            continue
        path = _CONVERTER_IN_PATH.sub(r"{\1}", endpoint.template)
        if endpoint.websocket is not None:  # never a GET operation: OpenAPI has no WebSockets
            websockets[path] = _websocket(endpoint, schemas)
            continue
        item = paths.setdefault(path, {})
        for method in endpoint.methods:
            if method in ("HEAD", "OPTIONS"):
                continue
            item[method.lower()] = _operation(endpoint, method, schemas, operation_ids)
    components = schemas.resolve()
    info: dict[str, Any] = {"title": app.title, "version": app.version}
    document = {
        "openapi": "3.1.0",
        "info": info,
        "paths": paths,
        "components": {"schemas": components},
    }
    if websockets:
        document["x-websockets"] = websockets
    for contribute in app.openapi_contributors:  # e.g. shoal.security's schemes
        contribute(app, document)
    return document


def operation_path(template: str) -> str:
    """A route template as an OpenAPI path (`{id:int}` written `{id}`)."""
    return _CONVERTER_IN_PATH.sub(r"{\1}", template)


def problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI response whose body is a problem document."""
    return _problem(description)
