"""API keys in a header: stored hashed, compared in constant time, logged by id.

```python
keys = APIKeys({"billing": "sha256:9f86d0...", "ops": os.environ["OPS_KEY"]})
keys.install(app)

@app.get("/invoices")
async def invoices(key: APIKey) -> list[Invoice]:   # key.id == "billing"
    ...
```

Each key has an id (what logs and handlers see) and a secret. The service
keeps only SHA-256 digests (give `sha256:<hex>` to never hold the secret at
all). A presented key is hashed and compared with every stored digest with
`hmac.compare_digest`, all of them, whatever matched: the time taken says
nothing about which key, or how much of one, was right.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, Unauthorized
from ..requests import Request
from ._registry import register
from .openapi import contribute_to

if TYPE_CHECKING:
    from ..app import App

__all__ = ["APIKey", "APIKeys", "hash_key"]

logger = logging.getLogger("shoal.security")


def hash_key(secret: str) -> str:
    """The stored form of an API key: `sha256:<hex digest>`."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class APIKey:
    """The API key a request was authenticated with: its `id`, never the secret."""

    id: str


class APIKeys:
    """Authenticates requests by an API key in `header` (default `X-API-Key`).

    `keys` maps each key's id to its secret or to `hash_key(secret)`.
    Handlers receive an `APIKey` by declaring a parameter of that type; a
    request without a valid key gets 401.
    """

    def __init__(
        self,
        keys: Mapping[str, str],
        *,
        header: str = "X-API-Key",
        scheme_name: str = "apiKeyAuth",
        description: str | None = None,
    ) -> None:
        if not keys:
            raise ConfigurationError("APIKeys needs at least one key")
        self.header = header.lower()
        self.header_name = header
        self.scheme_name = scheme_name
        self.description = description
        self._digests: list[tuple[bytes, APIKey]] = []
        for key_id, secret in keys.items():
            if secret.startswith("sha256:"):
                digest = bytes.fromhex(secret.removeprefix("sha256:"))
                if len(digest) != 32:
                    raise ConfigurationError(f"API key {key_id!r}: not a SHA-256 digest")
            else:
                if len(secret) < 16:
                    raise ConfigurationError(f"API key {key_id!r} is too short (16+ characters)")
                digest = hashlib.sha256(secret.encode()).digest()
            self._digests.append((digest, APIKey(key_id)))

        async def api_key(request: Request) -> APIKey:
            return self.authenticate(request)

        api_key.__shoal_security__ = (self, ())  # type: ignore[attr-defined]
        self.provider = api_key

    def install(self, app: App) -> APIKeys:
        """Provide `APIKey` to `app`'s handlers (and document the scheme)."""
        app.provide(self.provider, provides=APIKey)
        register(app, self)
        contribute_to(app)
        return self

    def match(self, presented: str) -> APIKey | None:
        """The key `presented` is, or None; constant time over every stored key."""
        digest = hashlib.sha256(presented.encode()).digest()
        found: APIKey | None = None
        for stored, key in self._digests:
            if hmac.compare_digest(stored, digest):
                found = key
        return found

    def authenticate(self, request: Request) -> APIKey:
        """The request's key; `Unauthorized` (401) when it has none or an unknown one."""
        state = request.state.__dict__
        done = state.get("shoal_api_key")
        if done is not None:
            key: APIKey = done
            return key
        presented = request.headers.get(self.header)
        challenge = f'APIKey header="{self.header_name}"'
        if not presented:
            raise Unauthorized(
                f"Send an API key in the {self.header_name} header.", challenge=challenge
            )
        found = self.match(presented)
        if found is None:
            logger.warning(
                "refused an unknown API key from %s on %s %s",
                _peer(request),
                request.method,
                request.path,
            )
            raise Unauthorized("The API key is not valid.", challenge=challenge)
        logger.debug("API key %r accepted on %s %s", found.id, request.method, request.path)
        state["shoal_api_key"] = found
        state["shoal_authenticated"] = True
        return found

    def openapi_scheme(self) -> dict[str, Any]:
        """This scheme as an OpenAPI security scheme."""
        scheme: dict[str, Any] = {"type": "apiKey", "in": "header", "name": self.header_name}
        if self.description:
            scheme["description"] = self.description
        return scheme


def _peer(request: Request) -> str:
    client = request.client
    return client[0] if client else "?"
