"""Who may call, and how often: authentication, rate limits, headers, proxies.

- `JWTBearer`: `Authorization: Bearer <JWT>` verified against a key set or a
  JWKS URL, the claims injected into handlers as a typed Struct;
  `requires_scopes(...)` for 403 on a missing scope.
- `APIKeys`: keys in a header, stored hashed, compared in constant time.
- `RateLimit` with `Rate`: GCRA per app or per route, in process
  (`MemoryBackend`) or shared (`shoal.security.redis.RedisBackend`).
- `SecurityHeaders`: nosniff, no-store, Referrer-Policy, HSTS, Server.
- `TrustedProxies`: `Forwarded` / `X-Forwarded-*` from your proxies only.

Installed schemes appear in the app's OpenAPI document (`securitySchemes`,
and `security` on each operation that needs them). See docs/security.md.
"""

from .apikeys import APIKey, APIKeys, hash_key
from .headers import SecurityHeaders
from .jwt import JWTBearer, requires_scopes, token_scopes
from .proxies import TrustedProxies, parse_forwarded
from .ratelimit import (
    Decision,
    MemoryBackend,
    Rate,
    RateLimit,
    RateLimitBackend,
    api_key_id,
    client_address,
    jwt_subject,
)

__all__ = [
    "APIKey",
    "APIKeys",
    "Decision",
    "JWTBearer",
    "MemoryBackend",
    "Rate",
    "RateLimit",
    "RateLimitBackend",
    "SecurityHeaders",
    "TrustedProxies",
    "api_key_id",
    "client_address",
    "hash_key",
    "jwt_subject",
    "parse_forwarded",
    "requires_scopes",
    "token_scopes",
]
