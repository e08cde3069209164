"""Keys and tokens for the `auth-*` workloads, shared by the bench apps and the harness.

The keys (one RSA, one Ed25519) are made on first use and kept in
`.bench/auth-keys.json` (`BENCH_AUTH_KEYS` overrides the path); the first
process to write the file wins (`os.link` refuses to replace it), so the
harness and every server agree on them. They are throwaway keys that sign
nothing but benchmark tokens.

| route            | answer                                                   |
|------------------|----------------------------------------------------------|
| `GET /open`      | `{"sub": "bench-user"}`, no authentication                |
| `GET /protected` | `{"sub": <the token's sub>}` after verifying the bearer   |
|                  | JWT (signature, `iss`, `aud`, `exp`; `sub` required)     |
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from functools import cache
from pathlib import Path
from typing import Any

ISSUER = "https://id.bench"
AUDIENCE = "bench"
SUBJECT = "bench-user"
ALGORITHMS = {"rs256": "RS256", "eddsa": "EdDSA"}
KIDS = {"RS256": "bench-rsa", "EdDSA": "bench-ed25519"}

_ROOT = Path(__file__).resolve().parent.parent.parent


def _path() -> Path:
    return Path(os.environ.get("BENCH_AUTH_KEYS", _ROOT / ".bench" / "auth-keys.json"))


@cache
def private_jwks() -> dict[str, Any]:
    """The private JWKS, made once and shared through the file."""
    path = _path()
    if not path.exists():
        from joserfc import jwk

        keys: list[jwk.RSAKey | jwk.OKPKey] = [
            jwk.RSAKey.generate_key(2048, parameters={"kid": KIDS["RS256"], "use": "sig"}),
            jwk.OKPKey.generate_key("Ed25519", parameters={"kid": KIDS["EdDSA"], "use": "sig"}),
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as tmp:
            json.dump({"keys": [key.as_dict(private=True) for key in keys]}, tmp)
        try:
            os.link(tmp.name, path)  # fails if another process wrote it first
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp.name)
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def public_jwks() -> dict[str, Any]:
    """The public half: what an identity provider's JWKS endpoint would serve."""
    private = {"d", "p", "q", "dp", "dq", "qi"}
    return {
        "keys": [
            {k: v for k, v in key.items() if k not in private} for key in private_jwks()["keys"]
        ]
    }


def public_pem(alg: str) -> bytes:
    """The public key of `alg` as PEM (for libraries that take PEM, such as PyJWT)."""
    from joserfc import jwk

    for key in public_jwks()["keys"]:
        if key["kid"] == KIDS[alg]:
            imported = jwk.import_key(key)
            assert isinstance(imported, (jwk.RSAKey, jwk.OKPKey))
            pem: bytes = imported.as_pem(private=False)
            return pem
    raise KeyError(alg)


def token(alg: str, lifetime: float = 86_400.0) -> str:
    """A valid bearer token signed with `alg`'s key (the load generator sends it)."""
    from joserfc import jwk, jwt
    from joserfc.errors import SecurityWarning

    key = next(jwk.import_key(k) for k in private_jwks()["keys"] if k["kid"] == KIDS[alg])
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "iat": now,
              "exp": now + int(lifetime)}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # "EdDSA": RFC 9864 prefers "Ed25519"
        return jwt.encode({"alg": alg, "kid": KIDS[alg]}, claims, key, algorithms=[alg])
