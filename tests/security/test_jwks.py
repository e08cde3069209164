"""JWKS: keys fetched at startup from an identity provider on a real socket, rotated."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from shoal import App, StartupError
from shoal.security import JWTBearer
from shoal.testing import TestClient
from tests.servers import Server, free_port, running_server

from .tokens import AUDIENCE, ISSUER, ed_key, public_jwks, rsa_key, sign

K1, K2, K3 = rsa_key("k1"), rsa_key("k2"), ed_key("k3")


class Claims(msgspec.Struct):
    sub: str


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("idp") / "jwks.json"


@pytest.fixture(scope="module")
def idp(jwks_file: Path) -> Iterator[Server]:
    publish(jwks_file, K1)
    with running_server(
        "granian-rsgi", "tests.security.apps.idp:app", env={"SHOAL_TEST_JWKS": str(jwks_file)}
    ) as server:
        yield server


def publish(path: Path, *keys: Any) -> None:
    path.write_text(json.dumps(public_jwks(*keys)))


def build(url: str, **options: Any) -> tuple[App, JWTBearer[Claims]]:
    app = App()
    bearer = JWTBearer(
        Claims,
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["RS256", "EdDSA"],
        jwks_url=url,
        **options,
    ).install(app)

    @app.get("/me")
    async def me(claims: Claims) -> dict[str, str]:
        return {"sub": claims.sub}

    return app, bearer


def get(client: TestClient, token: str) -> int:
    return client.get("/me", headers={"authorization": f"Bearer {token}"}).status_code


def test_keys_are_fetched_at_startup_and_rotated(idp: Server, jwks_file: Path) -> None:
    publish(jwks_file, K1)
    app, bearer = build(f"{idp.url}/.well-known/jwks.json", jwks_min_refetch_interval=0)
    old_token = sign(K1)
    with TestClient(app) as client:
        assert bearer.keys.fetches == 1
        assert get(client, old_token) == 200
        # the IdP adds k2 and starts signing with it: the unknown kid triggers a refetch
        publish(jwks_file, K1, K2)
        assert get(client, sign(K2, sub="new")) == 200
        assert bearer.keys.fetches == 2
        # k1 retires; a token signed with a kid nobody knows refetches and sees it gone
        publish(jwks_file, K2, K3)
        assert get(client, sign(K3, "EdDSA")) == 200
        assert bearer.keys.fetches == 3
        # the k1 token verified earlier is not served from the cache any more
        assert get(client, old_token) == 401
        assert get(client, sign(K2)) == 200


def test_refetches_on_unknown_kids_are_rate_limited(idp: Server, jwks_file: Path) -> None:
    publish(jwks_file, K1)
    app, bearer = build(f"{idp.url}/.well-known/jwks.json", jwks_min_refetch_interval=60)
    with TestClient(app) as client:
        for n in range(20):  # a flood of tokens with made-up kids
            response = client.get(
                "/me", headers={"authorization": f"Bearer {sign(rsa_key(f'x{n}'))}"}
            )
            assert response.status_code == 401
            assert "key this service does not know" in response.json()["detail"]
        assert bearer.keys.fetches == 1  # the IdP was not hammered
        assert get(client, sign(K1)) == 200


def test_a_stale_key_set_is_refreshed_in_the_background(idp: Server, jwks_file: Path) -> None:
    publish(jwks_file, K1)
    app, bearer = build(f"{idp.url}/.well-known/jwks.json", jwks_max_age=0)
    with TestClient(app) as client:
        deadline = time.monotonic() + 10  # the refresh runs beside the requests: give it time
        while bearer.keys.fetches <= 1 and time.monotonic() < deadline:
            assert get(client, sign(K1)) == 200
            time.sleep(0.01)
        assert bearer.keys.fetches > 1


def test_the_app_does_not_start_without_its_keys() -> None:
    app, _ = build(f"http://127.0.0.1:{free_port()}/jwks.json")
    with pytest.raises(StartupError), TestClient(app):
        pass


def test_a_document_that_is_not_a_jwks_stops_startup(idp: Server) -> None:
    app, _ = build(f"{idp.url}/nothing-here")
    with pytest.raises(StartupError), TestClient(app):
        pass
