"""JWTBearer: typed claims for good tokens, a 401 for every forged one, 403 for scopes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import pytest
from joserfc import jwk

from shoal import App, ConfigurationError, Request
from shoal.security import JWTBearer, requires_scopes
from shoal.testing import TestClient, TestResponse

from .tokens import (
    AUDIENCE,
    ISSUER,
    claims,
    ed_key,
    hmac_signed,
    public_jwks,
    raw,
    rsa_key,
    sign,
    signed_bytes,
)

RSA = rsa_key("rsa-1")
ED = ed_key("ed-1")
OTHER_RSA = rsa_key("rsa-1")  # same kid, another key: a forger's
PEM = RSA.as_pem(private=False)


class Claims(msgspec.Struct):
    sub: str
    scope: str = ""


class User(msgspec.Struct):
    name: str


async def current_user(claims: Claims) -> User:
    return User(name=f"user {claims.sub}")


def build(**options: Any) -> tuple[App, JWTBearer[Claims]]:
    settings: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "algorithms": ["RS256", "EdDSA"],
        "keys": public_jwks(RSA, ED),
    }
    settings.update(options)
    app = App()
    bearer = JWTBearer(Claims, **settings).install(app)
    app.provide(current_user)

    @app.get("/me")
    async def me(claims: Claims) -> dict[str, str]:
        return {"sub": claims.sub}

    @app.get("/user")
    async def user(user: User) -> User:
        return user

    @app.post("/runs")
    async def create(claims: Annotated[Claims, requires_scopes("runs:write")]) -> dict[str, str]:
        return {"created_by": claims.sub}

    @app.get("/public")
    async def public() -> dict[str, bool]:
        return {"public": True}

    return app, bearer


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app, _ = build()
    with TestClient(app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_refused(response: TestResponse, detail: str, token: str = "") -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert detail in problem["detail"], problem
    # nothing about keys or the token goes back
    text = response.text
    assert str(RSA.as_dict(private=False)["n"])[:20] not in text
    assert "-----BEGIN" not in text
    signature = token.rpartition(".")[2]
    if token:
        assert token not in text
    if len(signature) > 8:
        assert signature not in text


@pytest.mark.parametrize(("key", "alg"), [(RSA, "RS256"), (ED, "EdDSA")], ids=["RS256", "EdDSA"])
def test_a_good_token_gives_the_typed_claims(client: TestClient, key: Any, alg: str) -> None:
    response = client.get("/me", headers=bearer(sign(key, alg, sub="ada")))
    assert response.status_code == 200
    assert response.json() == {"sub": "ada"}


def test_claims_feed_other_providers(client: TestClient) -> None:
    response = client.get("/user", headers=bearer(sign(RSA, sub="ada")))
    assert response.json() == {"name": "user ada"}


def test_public_routes_need_no_token(client: TestClient) -> None:
    assert client.get("/public").status_code == 200


def test_no_token_is_a_plain_challenge(client: TestClient) -> None:
    response = client.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


NOW = int(time.time())  # when the table below is made: its times are far from it

FORGED: list[tuple[str, str, str]] = [
    ("alg none", raw({"alg": "none", "kid": "rsa-1"}, claims()), "algorithm"),
    ("alg None", raw({"alg": "None"}, claims()), "algorithm"),
    ("alg missing", raw({"kid": "rsa-1"}, claims()), "algorithm"),
    ("alg not listed", sign(RSA, "RS384"), "algorithm this service does not accept"),
    ("alg HS256 not listed", hmac_signed({"alg": "HS256"}, claims(), PEM), "algorithm"),
    ("bad signature", sign(RSA)[:-6] + "AAAAAA", "signature is invalid"),
    ("another key, same kid", sign(OTHER_RSA), "signature is invalid"),
    (
        "signature of another token",
        sign(RSA).rpartition(".")[0] + "." + sign(RSA, sub="x").rpartition(".")[2],
        "signature is invalid",
    ),
    ("unknown kid", sign(rsa_key("nobody")), "key this service does not know"),
    ("expired", sign(RSA, exp=NOW - 120), "expired"),
    ("not yet valid", sign(RSA, nbf=NOW + 3600), "not valid yet"),
    ("wrong issuer", sign(RSA, iss="https://evil.test"), "issuer"),
    ("issuer as a list", sign(RSA, iss=[ISSUER]), "issuer"),
    ("no issuer", sign(RSA, iss=None), "issuer"),
    ("wrong audience", sign(RSA, aud="billing"), "not meant for this service"),
    ("no audience", sign(RSA, aud=None), "not meant for this service"),
    ("audience as an object", sign(RSA, aud={"runs": 1}), "not meant for this service"),
    ("payload not an object", signed_bytes(RSA, b"[1, 2]"), "payload is not a JSON object"),
    ("payload not JSON", signed_bytes(RSA, b"hello"), "payload is not a JSON object"),
    ("no exp", sign(RSA, exp=None), "required claim `exp`"),
    ("no sub", sign(RSA, sub=None), "claims are invalid"),
    ("sub of the wrong type", sign(RSA, sub=42), "claims are invalid"),
    ("exp not a number", sign(RSA, exp="tomorrow"), "`exp` is not a number"),
    (
        "critical header",
        raw({"alg": "RS256", "kid": "rsa-1", "crit": ["x"], "x": 1}, claims(), b"s"),
        "critical",
    ),
    ("not a JWT", "hello", "not a signed JWT"),
    ("header not JSON", "bm90IGpzb24.e30.AAAA", "header"),
    ("JWE (five parts)", "a.b.c.d.e", "not a signed JWT"),
]


@pytest.mark.parametrize(
    ("token", "detail"), [(t, d) for _, t, d in FORGED], ids=[name for name, _, _ in FORGED]
)
def test_forged_tokens_are_refused(client: TestClient, token: str, detail: str) -> None:
    assert_refused(client.get("/me", headers=bearer(token)), detail, token)


@pytest.mark.parametrize("skew", [-20, 20])
def test_leeway_forgives_small_clock_skew(client: TestClient, skew: int) -> None:
    now = int(time.time())
    token = sign(RSA, exp=now + skew, nbf=now + skew)
    assert client.get("/me", headers=bearer(token)).status_code == 200


def test_an_audience_list_containing_ours_is_accepted(client: TestClient) -> None:
    token = sign(RSA, aud=["billing", AUDIENCE])
    assert client.get("/me", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token abc"])
def test_other_authorization_schemes_are_refused(client: TestClient, header: str) -> None:
    response = client.get("/me", headers={"authorization": header})
    assert_refused(response, "must be `Bearer <token>`")


def test_hmac_key_confusion_is_refused_even_when_hs256_is_listed() -> None:
    # the classic attack: sign HS256 with the RSA *public* key as the HMAC
    # secret; a library that takes "the key for this kid" as bytes accepts it
    app, _ = build(algorithms=["RS256", "HS256"])
    forged = [
        hmac_signed({"alg": "HS256", "kid": "rsa-1"}, claims(), PEM),
        hmac_signed({"alg": "HS256"}, claims(), PEM),
    ]
    with TestClient(app) as client:
        for token in forged:
            assert_refused(client.get("/me", headers=bearer(token)), "does not match its key")
        assert client.get("/me", headers=bearer(sign(RSA))).status_code == 200


def test_hs256_with_a_shared_secret_works_when_configured() -> None:
    secret = jwk.OctKey.import_key(b"s" * 32, {"kid": "shared"})
    app, _ = build(algorithms=["HS256"], keys=[secret])
    with TestClient(app) as client:
        assert client.get("/me", headers=bearer(sign(secret, "HS256"))).status_code == 200
        assert_refused(client.get("/me", headers=bearer(sign(RSA))), "algorithm")


def test_tokens_in_the_query_string_are_refused_unless_allowed(client: TestClient) -> None:
    token = sign(RSA)
    response = client.get(f"/me?access_token={token}")
    assert_refused(response, "query string", token)
    app, _ = build(query_param="access_token")
    with TestClient(app) as allowing:
        assert allowing.get(f"/me?access_token={token}").status_code == 200


def test_scopes_give_403_when_missing(client: TestClient) -> None:
    response = client.post("/runs", headers=bearer(sign(RSA, scope="runs:read")))
    assert response.status_code == 403
    assert "runs:write" in response.json()["detail"]
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="runs:write"'
    )
    granted = client.post("/runs", headers=bearer(sign(RSA, scope="runs:read runs:write")))
    assert granted.status_code == 200
    assert granted.json() == {"created_by": "user-1"}
    as_list = client.post("/runs", headers=bearer(sign(RSA, scope=None, scp=["runs:write"])))
    assert as_list.status_code == 200


def test_scopes_need_a_valid_token_first(client: TestClient) -> None:
    assert client.post("/runs").status_code == 401
    token = sign(RSA, scope="runs:write", exp=NOW - 600)
    assert_refused(client.post("/runs", headers=bearer(token)), "expired")


def test_a_cached_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    app, verifier = build(leeway=0)
    token = sign(RSA, exp=int(time.time()) + 60)
    with TestClient(app) as client:
        assert client.get("/me", headers=bearer(token)).status_code == 200
        assert token in verifier._cache
        later = time.time() + 120
        monkeypatch.setattr(time, "time", lambda: later)
        assert_refused(client.get("/me", headers=bearer(token)), "expired")


def test_the_bearer_can_be_used_by_hand() -> None:
    app, verifier = build()

    @app.get("/manual")
    async def manual(request: Request) -> dict[str, Any]:
        await verifier.authenticate(request)
        return verifier.payload(request)

    with TestClient(app) as client:
        response = client.get("/manual", headers=bearer(sign(RSA, sub="ada")))
    assert response.json()["sub"] == "ada"


@pytest.mark.parametrize(
    "algorithms", [[], ["none"], ["RS256", "none"], "RS256", ["HS1"]], ids=repr
)
def test_the_algorithm_list_is_explicit_and_sane(algorithms: Any) -> None:
    with pytest.raises(ConfigurationError):
        JWTBearer(
            Claims, issuer=ISSUER, audience=AUDIENCE, algorithms=algorithms, keys=public_jwks(RSA)
        )


def test_keys_or_a_jwks_url_but_not_both() -> None:
    with pytest.raises(ConfigurationError):
        JWTBearer(Claims, issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256"])
    with pytest.raises(ConfigurationError):
        JWTBearer(
            Claims,
            issuer=ISSUER,
            audience=AUDIENCE,
            algorithms=["RS256"],
            keys=public_jwks(RSA),
            jwks_url="http://127.0.0.1:1/jwks.json",
        )


def test_requires_scopes_needs_exactly_one_bearer() -> None:
    app = App()

    @app.get("/x")
    async def x(claims: Annotated[Claims, requires_scopes("a")]) -> dict[str, str]:
        return {}

    with TestClient(app) as client:  # no bearer installed: a 500, logged
        assert client.get("/x").status_code == 500
