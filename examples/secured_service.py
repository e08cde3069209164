"""A runs service guarded the way docs/security.md describes: serve with `shoal run`.

- every `/runs` route needs a JWT from the identity provider (`RUNS_JWKS_URL`);
  creating a run needs the `runs:write` scope;
- each user (the token's `sub`) gets 10 requests a second, bursts of 20; creating
  runs is limited further to 1 a second, bursts of 5;
- `/admin/stats` takes an operator's API key instead (`RUNS_OPS_KEY_HASH`, the
  `sha256:` form from `shoal.security.hash_key`);
- security headers on every answer; forwarding headers believed only from the
  proxies in `RUNS_TRUSTED_PROXIES`.
"""

import os
from typing import Annotated

import msgspec

from shoal import App
from shoal.security import (
    APIKey,
    APIKeys,
    JWTBearer,
    Rate,
    RateLimit,
    SecurityHeaders,
    TrustedProxies,
    hash_key,
    jwt_subject,
    requires_scopes,
)


class Claims(msgspec.Struct):
    """What this service needs from a token (anything else in it is ignored)."""

    sub: str
    scope: str = ""


class NewRun(msgspec.Struct):
    name: str


class Run(msgspec.Struct):
    id: int
    name: str
    owner: str


app = App(title="runs", version="1.0.0")

auth = JWTBearer(
    Claims,
    issuer=os.environ.get("RUNS_ISSUER", "https://id.example"),
    audience="runs",
    algorithms=["RS256", "EdDSA"],
    jwks_url=os.environ.get("RUNS_JWKS_URL", "http://127.0.0.1:9000/.well-known/jwks.json"),
).install(app)

operators = APIKeys(
    {"ops": os.environ.get("RUNS_OPS_KEY_HASH", hash_key("change-me-0123456789"))}
).install(app)

# Middleware: the last added runs first. Proxies are resolved before anything
# reads the client's address; headers wrap every answer, 429s included.
RateLimit(Rate(10, per=1, burst=20), key=jwt_subject(auth)).install(app)
app.add_middleware(SecurityHeaders())
app.add_middleware(
    TrustedProxies(os.environ.get("RUNS_TRUSTED_PROXIES", "127.0.0.1").split(","))
)

RUNS: list[Run] = []


@app.get("/runs", tags=["runs"])
async def list_runs(claims: Claims) -> list[Run]:
    """The caller's runs."""
    return [run for run in RUNS if run.owner == claims.sub]


@app.post("/runs", status=201, tags=["runs"], rate_limit=Rate(1, per=1, burst=5))
async def create_run(
    new: NewRun, claims: Annotated[Claims, requires_scopes("runs:write")]
) -> Run:
    """Start a run (needs the `runs:write` scope)."""
    run = Run(id=len(RUNS) + 1, name=new.name, owner=claims.sub)
    RUNS.append(run)
    return run


@app.get("/admin/stats", tags=["admin"])
async def stats(key: APIKey) -> dict[str, int | str]:
    """Counts, for operators (API key)."""
    return {"runs": len(RUNS), "asked_by": key.id}


@app.get("/status", rate_limit=None)
async def livez() -> dict[str, bool]:
    """Liveness: no token, no limit."""
    return {"live": True}
