"""Which security schemes are installed on which app (for OpenAPI and `requires_scopes`)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import App

__all__ = ["register", "schemes_of"]

_schemes: weakref.WeakKeyDictionary[App, list[Any]] = weakref.WeakKeyDictionary()


def register(app: App, scheme: Any) -> None:
    """Record that `scheme` (a `JWTBearer`, `APIKeys`...) guards routes of `app`."""
    found = _schemes.setdefault(app, [])
    if any(s.scheme_name == scheme.scheme_name for s in found):
        from ..errors import ConfigurationError

        raise ConfigurationError(f"a security scheme named {scheme.scheme_name!r} is installed")
    found.append(scheme)


def schemes_of(app: App | None) -> list[Any]:
    """The schemes installed on `app`, in installation order."""
    return list(_schemes.get(app, ())) if app is not None else []
