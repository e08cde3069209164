"""What `shoal.security` adds to an app's OpenAPI document.

`securitySchemes` lists the installed schemes; an operation gets `security`
when its handler needs one of them, directly or through other providers
(`claims: Claims`, `Annotated[Claims, requires_scopes("x")]`, a provider that
takes the claims...), and documents the 401 (and the 403 for scopes).
"""

from __future__ import annotations

import inspect
import typing
from typing import TYPE_CHECKING, Any

from ..openapi.schema import operation_path, problem_response
from ._registry import only_bearer, schemes_of

if TYPE_CHECKING:
    from ..app import App

__all__ = ["operation_security", "security_schemes"]


def security_schemes(app: App) -> dict[str, Any]:
    """`components.securitySchemes` for `app` (empty when nothing is installed)."""
    return {scheme.scheme_name: scheme.openapi_scheme() for scheme in schemes_of(app)}


def operation_security(app: App, handler: Any) -> list[dict[str, list[str]]]:
    """The `security` requirement of the operation `handler` answers (empty: none)."""
    found: dict[str, set[str]] = {}
    _walk(app, handler, found, set())
    return [{name: sorted(scopes)} for name, scopes in sorted(found.items())]


def _walk(app: App, func: Any, found: dict[str, set[str]], seen: set[int]) -> None:
    if id(func) in seen:
        return
    seen.add(id(func))
    marker = getattr(func, "__shoal_security__", None)
    if marker is not None:
        scheme, scopes = marker
        if scheme is None:  # requires_scopes(): the app's one bearer
            scheme = only_bearer(app)
        found.setdefault(scheme.scheme_name, set()).update(scopes)
        if scheme.provider is not func:
            _walk(app, scheme.provider, found, seen)
        return
    try:
        hints = typing.get_type_hints(func, include_extras=True)
        parameters = inspect.signature(func).parameters
    except Exception:
        return
    for name in parameters:
        annotation = hints.get(name)
        if annotation is None:
            continue
        provider = app.container.lookup(annotation)
        if provider is not None:
            provider = app.container.effective(provider)
            if provider.kind == "call":
                _walk(app, provider.func, found, seen)


def add_security(app: App, document: dict[str, Any]) -> None:
    """`securitySchemes` and each operation's `security` (an `app.openapi_contributors` entry)."""
    schemes = security_schemes(app)
    if not schemes:
        return
    document["components"]["securitySchemes"] = schemes
    for endpoint in app.endpoints:
        security = operation_security(app, endpoint.handler)
        item = document["paths"].get(operation_path(endpoint.template), {})
        for method in endpoint.methods:
            operation = item.get(method.lower())
            if not security or operation is None:
                continue
            operation["security"] = security
            responses = operation["responses"]
            responses.setdefault("401", problem_response("Missing or invalid credentials"))
            if any(scopes for requirement in security for scopes in requirement.values()):
                responses.setdefault(
                    "403", problem_response("The credentials lack a required scope")
                )


def contribute_to(app: App) -> None:
    """Make `app`'s OpenAPI document describe its security schemes (once)."""
    if add_security not in app.openapi_contributors:
        app.openapi_contributors.append(add_security)
