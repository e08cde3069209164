"""Bearer JWT: verified once per token, injected into handlers as typed claims.

```python
class Claims(msgspec.Struct):
    sub: str
    scope: str = ""

auth = JWTBearer(Claims, issuer="https://id.example", audience="runs",
                 algorithms=["RS256"], jwks_url="https://id.example/jwks.json")
auth.install(app)

@app.get("/runs")
async def runs(claims: Claims) -> list[Run]: ...

@app.post("/runs")
async def create(claims: Annotated[Claims, requires_scopes("runs:write")]) -> Run: ...
```

Signatures and keys are joserfc's (see docs/security.md for why joserfc);
the header, the algorithm policy, the key choice and the claims are checked
here, before and after it. Every refusal is a 401 problem with
`WWW-Authenticate: Bearer error="invalid_token"`; a missing scope is a 403.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec
from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning

from .._introspect import Depends
from ..errors import ConfigurationError, Forbidden, Unauthorized
from ..requests import Request
from ._keys import ALGORITHM_KEY_TYPES, KeySource
from ._registry import only_bearer, register
from .openapi import contribute_to

if TYPE_CHECKING:
    from ..app import App

__all__ = ["JWTBearer", "requires_scopes"]

logger = logging.getLogger("shoal.security")

C = TypeVar("C")

INVALID = 'Bearer error="invalid_token"'
_json_decode = msgspec.json.Decoder(dict[str, Any]).decode
_MAX_TOKEN = 16 * 1024


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class _Verified(msgspec.Struct, frozen=True, gc=False):
    claims: Any
    payload: dict[str, Any]
    exp: float | None
    nbf: float | None
    generation: int


class JWTBearer(Generic[C]):
    """Verifies `Authorization: Bearer <JWT>` and provides the claims as `claims_type`.

    - `issuer`: the `iss` every token must carry (a string, or several).
    - `audience`: the `aud` this service answers to; `None` checks no audience
      (say so explicitly: it is a weaker setting).
    - `algorithms`: the accepted `alg`s, explicitly; never `none`.
    - `keys` (a JWKS dict, JWKs, or joserfc keys) or `jwks_url`, fetched at
      startup; see `shoal.security._keys` for refetching.
    - `leeway` (seconds) forgives clock skew on `exp` and `nbf`.
    - `required`: claims every token must have (`exp` by default); the
      fields `claims_type` declares without a default are required too.
    - `query_param`: the query parameter a token may come in (for clients
      that cannot send headers, such as EventSource); None (the default)
      refuses tokens in the query string, which end up in access logs.
    - `cache_size`: verified tokens kept (their signature is not checked
      again; their times are, on every request); 0 verifies every time.
    """

    def __init__(
        self,
        claims_type: type[C],
        *,
        issuer: str | Sequence[str],
        audience: str | Sequence[str] | None,
        algorithms: Sequence[str],
        keys: Any = None,
        jwks_url: str | None = None,
        leeway: float = 30.0,
        required: Sequence[str] = ("exp",),
        query_param: str | None = None,
        cache_size: int = 10_000,
        jwks_max_age: float = 3600.0,
        jwks_min_refetch_interval: float = 30.0,
        scheme_name: str = "bearerAuth",
        description: str | None = None,
    ) -> None:
        if isinstance(algorithms, str):
            raise ConfigurationError("algorithms must be a list, such as ['RS256']")
        unknown = [a for a in algorithms if a not in ALGORITHM_KEY_TYPES]
        if not algorithms or unknown:
            raise ConfigurationError(
                f"algorithms must list accepted JWS algorithms among "
                f"{sorted(ALGORITHM_KEY_TYPES)}; got {list(algorithms)!r}"
            )
        self.claims_type = claims_type
        self.issuers = frozenset([issuer] if isinstance(issuer, str) else issuer)
        self.audiences = (
            None
            if audience is None
            else frozenset([audience] if isinstance(audience, str) else audience)
        )
        self.algorithms = frozenset(algorithms)
        self.keys = KeySource(
            keys,
            jwks_url=jwks_url,
            max_age=jwks_max_age,
            min_refetch_interval=jwks_min_refetch_interval,
        )
        self.leeway = leeway
        self.required = tuple(required)
        self.query_param = query_param
        self.cache_size = cache_size
        self.scheme_name = scheme_name
        self.description = description
        self._cache: dict[str, _Verified] = {}
        self._convert: Callable[[dict[str, Any]], Any] = (
            (lambda payload: payload)
            if claims_type in (dict, Any)
            else (lambda payload: msgspec.convert(payload, claims_type))
        )

        async def claims(request: Request) -> Any:
            return await self.authenticate(request)

        claims.__shoal_security__ = (self, ())  # type: ignore[attr-defined]
        self.provider = claims

    # -- wiring ---------------------------------------------------------------

    def install(self, app: App) -> JWTBearer[C]:
        """Fetch the keys at `app`'s startup and provide `claims_type` to its handlers."""
        app.use(self)
        app.provide(self.provider, provides=self.claims_type)
        register(app, self)
        contribute_to(app)
        return self

    async def __aenter__(self) -> JWTBearer[C]:
        await self.keys.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.keys.close()

    def requires_scopes(self, *scopes: str) -> Depends:
        """A `Depends` marker: the claims, after checking the token grants every scope."""
        return _scope_check(scopes, self)

    def openapi_scheme(self) -> dict[str, Any]:
        """This bearer as an OpenAPI security scheme."""
        scheme: dict[str, Any] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        if self.description:
            scheme["description"] = self.description
        return scheme

    # -- per request ----------------------------------------------------------

    async def authenticate(self, request: Request) -> C:
        """The request's verified claims; raises `Unauthorized` (401) otherwise."""
        state = request.state.__dict__
        done = state.get("shoal_jwt")
        if done is not None and done[0] is self:
            claims: C = done[1].claims
            return claims
        verified = await self.verify_token(self._token(request))
        state["shoal_jwt"] = (self, verified)
        state["shoal_authenticated"] = True
        return verified.claims  # type: ignore[no-any-return]

    def payload(self, request: Request) -> dict[str, Any]:
        """The raw claims of the request's token (after `authenticate`)."""
        done = request.state.__dict__.get("shoal_jwt")
        if done is None or done[0] is not self:
            raise RuntimeError("payload() before authenticate()")
        payload: dict[str, Any] = done[1].payload
        return payload

    def _token(self, request: Request) -> str:
        header = request.headers.get("authorization")
        if header is None:
            name = self.query_param
            if name is not None and name in request.query:
                return request.query[name]
            if "access_token=" in request.query_string:
                raise Unauthorized(
                    "This service does not accept tokens in the query string; send "
                    "`Authorization: Bearer <token>`.",
                    challenge=INVALID,
                )
            raise Unauthorized("Send a token: `Authorization: Bearer <token>`.")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "The Authorization header must be `Bearer <token>`.", challenge=INVALID
            )
        return token.strip()

    async def verify_token(self, token: str) -> _Verified:
        """Verify `token` (or find it verified in the cache); check its times now."""
        now = time.time()
        verified = self._cache.get(token)
        if verified is None or verified.generation != self.keys.generation:
            verified = await self._verify(token, now)
            if self.cache_size > 0:
                if len(self._cache) >= self.cache_size:
                    self._cache.clear()  # simple and bounded; a full cache refills at once
                self._cache[token] = verified
        self._check_times(verified, now)
        if self.keys.jwks_url is not None:
            self.keys.refresh_if_stale()
        return verified

    def _check_times(self, verified: _Verified, now: float) -> None:
        if verified.exp is not None and now > verified.exp + self.leeway:
            raise _invalid("The token has expired.")
        if verified.nbf is not None and now + self.leeway < verified.nbf:
            raise _invalid("The token is not valid yet (nbf).")

    async def _verify(self, token: str, now: float) -> _Verified:
        if len(token) > _MAX_TOKEN or token.count(".") != 2:
            raise _invalid("The token is not a signed JWT (header.payload.signature).")
        try:
            header = _json_decode(_b64decode(token.partition(".")[0]))
        except (binascii.Error, ValueError, msgspec.DecodeError):
            raise _invalid("The token's header is not base64url-encoded JSON.") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise _invalid(
                f"The token is signed with an algorithm this service does not accept "
                f"(accepted: {', '.join(sorted(self.algorithms))})."
            )
        if header.get("crit"):
            raise _invalid("The token has critical header parameters this service does not know.")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _invalid("The token's `kid` is not a string.")
        key_type = ALGORITHM_KEY_TYPES[alg]
        candidates = self.keys.candidates(kid, key_type)
        if candidates is None and await self.keys.refetch_for_unknown_kid():
            candidates = self.keys.candidates(kid, key_type)
        if candidates is None:
            raise _invalid("The token is signed with a key this service does not know.")
        if not candidates:
            raise _invalid("The token's algorithm does not match its key.")
        generation = self.keys.generation
        signed: Any = None
        for key in candidates:
            try:
                if alg == "EdDSA":  # RFC 9864 prefers "Ed25519"; IdPs still send "EdDSA"
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", SecurityWarning)
                        signed = jws.deserialize_compact(token, key, algorithms=[alg])
                else:
                    signed = jws.deserialize_compact(token, key, algorithms=[alg])
                break
            except JoseError:
                continue
            except (ValueError, TypeError):
                raise _invalid("The token is malformed.") from None
        if signed is None:
            raise _invalid("The token's signature is invalid.")
        try:
            payload = _json_decode(signed.payload)
        except (ValueError, msgspec.DecodeError):
            raise _invalid("The token's payload is not a JSON object.") from None
        return self._check_claims(payload, generation)

    def _check_claims(self, payload: dict[str, Any], generation: int) -> _Verified:
        for name in self.required:
            if name not in payload:
                raise _invalid(f"The token lacks the required claim `{name}`.")
        iss = payload.get("iss")
        if not isinstance(iss, str) or iss not in self.issuers:
            raise _invalid("The token was issued by an issuer this service does not trust.")
        if self.audiences is not None:
            aud = payload.get("aud")
            auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not self.audiences.intersection(a for a in auds if isinstance(a, str)):
                raise _invalid("The token is not meant for this service (aud).")
        times: list[float | None] = []
        for name in ("exp", "nbf"):
            value = payload.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise _invalid(f"The token's `{name}` is not a number.")
            times.append(value)
        try:
            claims = self._convert(payload)
        except msgspec.ValidationError as exc:
            raise _invalid(f"The token's claims are invalid: {exc}.") from None
        return _Verified(claims, payload, times[0], times[1], generation)


def _invalid(detail: str) -> Unauthorized:
    return Unauthorized(detail, challenge=INVALID)


def token_scopes(payload: dict[str, Any]) -> set[str]:
    """The scopes a token grants: `scope` (space-separated, RFC 8693) or `scp` (a list)."""
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = payload.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return found


def _scope_check(scopes: Sequence[str], named: JWTBearer[Any] | None) -> Depends:
    wanted = frozenset(scopes)
    if not wanted:
        raise ConfigurationError("requires_scopes() needs at least one scope")

    # no return annotation: the check provides no type of its own (it would
    # clash with the claims provider); it is reached through Depends only
    async def check(request: Request):  # type: ignore[no-untyped-def]
        bearer = named if named is not None else only_bearer(request.app)
        claims = await bearer.authenticate(request)
        missing = wanted - token_scopes(bearer.payload(request))
        if missing:
            needed = " ".join(sorted(wanted))
            raise Forbidden(
                detail=f"The token lacks the scope(s): {', '.join(sorted(missing))}.",
                headers={
                    "www-authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'
                },
            )
        return claims

    check.__shoal_security__ = (named, tuple(sorted(wanted)))  # type: ignore[attr-defined]
    return Depends(check)


def requires_scopes(*scopes: str) -> Depends:
    """`Annotated[Claims, requires_scopes("runs:write")]`: the claims, or 403 without the scopes.

    Uses the app's one installed `JWTBearer`; `bearer.requires_scopes(...)`
    names the bearer when there are several.
    """
    return _scope_check(scopes, None)
