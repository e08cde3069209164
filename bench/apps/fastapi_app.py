"""FastAPI on uvicorn (uvloop + httptools) and granian; `def` routes: AnyIO's 40 threads."""

import time
from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from . import MESSAGE, PLAINTEXT, SLEEP
from .auth import AUDIENCE, ISSUER, KIDS, SUBJECT, public_pem

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/json")
async def json() -> dict[str, str]:
    return MESSAGE


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse(PLAINTEXT)


@app.get("/")
async def now() -> dict[str, float]:
    return {"time": time.time()}


@app.get("/users/{id}")
async def user(id: int, q: str | None = None) -> dict[str, object]:
    return {"id": id, "q": q}


@app.get("/items/{item_id}")
async def typed_item(
    item_id: int, limit: int = 20, offset: int = 0, q: str = ""
) -> dict[str, object]:
    return {"id": item_id, "limit": limit, "offset": offset, "q": q}


@app.get("/sync")
def sync_io() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


# The auth-* workloads: FastAPI's security utilities (HTTPBearer) and PyJWT, as
# FastAPI's documentation does it, with the key picked by `kid`.
bearer = HTTPBearer()
KEYS = {KIDS[alg]: public_pem(alg) for alg in ("RS256", "EdDSA")}


async def claims(
    credentials: Annotated[HTTPAuthorizationCredentials, Security(bearer)],
) -> dict:
    token = credentials.credentials
    try:
        key = KEYS[jwt.get_unverified_header(token).get("kid")]
        return jwt.decode(
            token,
            key,
            algorithms=["RS256", "EdDSA"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except (KeyError, jwt.PyJWTError) as exc:
        raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"}) from exc


@app.get("/open")
async def open_route() -> dict[str, str]:
    return {"sub": SUBJECT}


@app.get("/protected")
async def protected(token: Annotated[dict, Depends(claims)]) -> dict[str, str]:
    return {"sub": token["sub"]}
