"""Where a bearer's verification keys come from: a static set, or a JWKS URL.

A `KeySource` indexes keys by `kid` and by key type, so a token's key is
picked by its `kid` *and* the key type its algorithm needs: an `HS256` token
naming an RSA key finds nothing (the HMAC key-confusion attack needs the
public key to be used as an HMAC secret, and no HMAC key is ever built from
one). A JWKS source fetches the set at startup (the app does not start
without it), refetches it when a token names an unknown `kid` (at most once
per `min_refetch_interval`, whatever the number of such tokens), and in the
background once the set is older than `max_age`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from joserfc import jwk

from ..errors import ConfigurationError

__all__ = ["ALGORITHM_KEY_TYPES", "KeySource", "import_keys"]

logger = logging.getLogger("shoal.security")

Key = jwk.OctKey | jwk.RSAKey | jwk.ECKey | jwk.OKPKey

# The key type (`kty`) each accepted algorithm verifies with. `none` is not
# here and never will be.
ALGORITHM_KEY_TYPES: Mapping[str, str] = {
    **{f"HS{n}": "oct" for n in (256, 384, 512)},
    **{f"RS{n}": "RSA" for n in (256, 384, 512)},
    **{f"PS{n}": "RSA" for n in (256, 384, 512)},
    **{f"ES{n}": "EC" for n in (256, 384, 512)},
    "EdDSA": "OKP",
    "Ed25519": "OKP",
}

MAX_JWKS_SIZE = 1024 * 1024


def import_keys(keys: Any) -> list[Key]:
    """Keys from a JWKS document (`{"keys": [...]}`), a list of JWKs or joserfc keys, or one key."""
    if isinstance(keys, Mapping) and "keys" in keys:
        keys = keys["keys"]
    if isinstance(keys, (jwk.OctKey, jwk.RSAKey, jwk.ECKey, jwk.OKPKey, Mapping)):
        keys = [keys]
    found: list[Key] = []
    for item in keys:
        if isinstance(item, (jwk.OctKey, jwk.RSAKey, jwk.ECKey, jwk.OKPKey)):
            found.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ConfigurationError(f"not a JWK: {type(item).__name__}")
        if item.get("use", "sig") != "sig" or item.get("kty") not in ("oct", "RSA", "EC", "OKP"):
            continue  # encryption keys and unknown types verify nothing here
        try:
            found.append(jwk.import_key(dict(item)))
        except Exception as exc:
            logger.warning(
                "skipped a JWK that could not be imported (kid %r): %s", item.get("kid"), exc
            )
    return found


def _fetch(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_JWKS_SIZE + 1)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection
        raise ValueError(f"{url} answered {exc.code}") from None
    if len(body) > MAX_JWKS_SIZE:
        raise ValueError(f"the JWKS at {url} is over {MAX_JWKS_SIZE} bytes")
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{url} did not answer a JWKS document ({{'keys': [...]}})")
    return document


class KeySource:
    """The current verification keys, static or fetched from `jwks_url`.

    `generation` changes whenever the set changes, so verified-token caches
    keyed on it forget tokens whose key was removed.
    """

    def __init__(
        self,
        keys: Any = None,
        *,
        jwks_url: str | None = None,
        max_age: float = 3600.0,
        min_refetch_interval: float = 30.0,
        fetch_timeout: float = 5.0,
    ) -> None:
        if (keys is None) == (jwks_url is None):
            raise ConfigurationError("give a bearer either `keys` or `jwks_url`, not both")
        self.jwks_url = jwks_url
        self.max_age = max_age
        self.min_refetch_interval = min_refetch_interval
        self.fetch_timeout = fetch_timeout
        self.generation = 0
        self.fetched_at = 0.0
        self.fetches = 0
        self._by_kid: dict[str, Key] = {}
        self._by_type: dict[str, list[Key]] = {}
        self._lock: asyncio.Lock | None = None
        self._background: asyncio.Task[None] | None = None
        if keys is not None:
            self._install(import_keys(keys))
            if not self._by_type:
                raise ConfigurationError("the bearer's key set has no signing key")

    def _install(self, keys: Iterable[Key]) -> None:
        by_kid: dict[str, Key] = {}
        by_type: dict[str, list[Key]] = {}
        for key in keys:
            if key.kid is not None:
                by_kid[key.kid] = key
            by_type.setdefault(key.key_type, []).append(key)
        old = {k: v.thumbprint() for k, v in self._by_kid.items()}
        new = {k: v.thumbprint() for k, v in by_kid.items()}
        if old != new or set(self._by_type) != set(by_type) or not by_kid:
            self.generation += 1
        self._by_kid, self._by_type = by_kid, by_type

    def candidates(self, kid: str | None, key_type: str) -> Sequence[Key] | None:
        """Keys of `key_type` that may have signed a token naming `kid`.

        None means the `kid` is unknown (a refetch may find it); an empty list
        means the `kid` is known but holds another type of key.
        """
        if kid is None:
            return self._by_type.get(key_type, ())
        key = self._by_kid.get(kid)
        if key is None:
            return None
        return (key,) if key.key_type == key_type else ()

    # -- fetching -------------------------------------------------------------

    async def open(self) -> None:
        """Fetch the JWKS (startup); raises if it cannot be had."""
        if self.jwks_url is not None:
            await self._refetch()
            if not self._by_type:
                raise ConfigurationError(f"the JWKS at {self.jwks_url} has no signing key")

    async def close(self) -> None:
        """Stop a background refetch, if one runs."""
        task, self._background = self._background, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _refetch(self) -> None:
        assert self.jwks_url is not None
        document = await asyncio.to_thread(_fetch, self.jwks_url, self.fetch_timeout)
        self.fetches += 1
        self.fetched_at = time.monotonic()
        self._install(import_keys(document))
        logger.info(
            "fetched %d keys from %s (kids %s)",
            len(self._by_kid),
            self.jwks_url,
            sorted(self._by_kid),
        )

    async def refetch_for_unknown_kid(self) -> bool:
        """Refetch the set because a token named an unknown `kid`; False if rate-limited.

        Concurrent callers share one fetch; a failed fetch keeps the old set.
        """
        if self.jwks_url is None:
            return False
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if time.monotonic() - self.fetched_at < self.min_refetch_interval:
                return False
            try:
                await self._refetch()
            except Exception as exc:
                self.fetched_at = time.monotonic()  # a dead IdP is asked again only later
                logger.warning("refetching the JWKS from %s failed: %r", self.jwks_url, exc)
                return False
            return True

    def refresh_if_stale(self) -> None:
        """Start a background refetch once the set is older than `max_age`."""
        if (
            self.jwks_url is None
            or time.monotonic() - self.fetched_at < self.max_age
            or (self._background is not None and not self._background.done())
        ):
            return
        self._background = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        try:
            await self._refetch()
        except Exception as exc:
            self.fetched_at = time.monotonic() - self.max_age + self.min_refetch_interval
            logger.warning("refreshing the JWKS from %s failed: %r", self.jwks_url, exc)
