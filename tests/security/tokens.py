"""Forging tokens for the tests: good ones with joserfc, bad ones by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from typing import Any

from joserfc import jwk, jws, jwt
from joserfc.errors import SecurityWarning

ISSUER = "https://id.test"
AUDIENCE = "runs"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rsa_key(kid: str) -> jwk.RSAKey:
    return jwk.RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})


def ed_key(kid: str) -> jwk.OKPKey:
    return jwk.OKPKey.generate_key("Ed25519", parameters={"kid": kid, "use": "sig"})


def public_jwks(*keys: Any) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "exp": now + 3600,
        "scope": "runs:read",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(
    key: Any, alg: str = "RS256", header: dict[str, Any] | None = None, **overrides: Any
) -> str:
    head = {"alg": alg, **({"kid": key.kid} if key.kid else {}), **(header or {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # "EdDSA" is deprecated by RFC 9864
        return jwt.encode(head, claims(**overrides), key, algorithms=[alg])


def signed_bytes(key: Any, payload: bytes, alg: str = "RS256") -> str:
    """A correctly signed JWS whose payload is `payload` (not necessarily a claims object)."""
    return jws.serialize_compact({"alg": alg, "kid": key.kid}, payload, key, algorithms=[alg])


def raw(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, signed with whatever bytes the test chose."""
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    )


def hmac_signed(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    """An HS256 token signed with `secret` (for key-confusion forgeries)."""
    signing_input = (
        b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    ).encode()
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return signing_input.decode() + "." + b64(signature)
