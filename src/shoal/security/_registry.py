"""Which security schemes are installed on which app (for OpenAPI and `requires_scopes`)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..app import App

__all__ = ["only_bearer", "register", "schemes_of"]

_schemes: weakref.WeakKeyDictionary[App, list[Any]] = weakref.WeakKeyDictionary()


def register(app: App, scheme: Any) -> None:
    """Record that `scheme` (a `JWTBearer`, `APIKeys`...) guards routes of `app`."""
    found = _schemes.setdefault(app, [])
    if any(s.scheme_name == scheme.scheme_name for s in found):
        raise ConfigurationError(f"a security scheme named {scheme.scheme_name!r} is installed")
    found.append(scheme)


def schemes_of(app: App | None) -> list[Any]:
    """The schemes installed on `app`, in installation order."""
    return list(_schemes.get(app, ())) if app is not None else []


def only_bearer(app: App | None) -> Any:
    """The one bearer scheme (`JWTBearer`) installed on `app`; `ConfigurationError` if not one."""
    found = [s for s in schemes_of(app) if s.openapi_scheme().get("scheme") == "bearer"]
    if len(found) != 1:
        raise ConfigurationError(
            "requires_scopes() needs exactly one JWTBearer installed on the app "
            f"(found {len(found)}); use bearer.requires_scopes() to name one"
        )
    return found[0]
