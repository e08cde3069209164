"""API keys: hashed, several, compared in constant time, logged by id only."""

from __future__ import annotations

import logging

import pytest

from shoal import App, ConfigurationError
from shoal.security import APIKey, APIKeys, hash_key
from shoal.testing import TestClient

OPS = "ops-0123456789abcdef"
BILLING = "billing-fedcba9876543210"


def build() -> tuple[App, APIKeys]:
    app = App()
    keys = APIKeys({"ops": OPS, "billing": hash_key(BILLING)}).install(app)

    @app.get("/whoami")
    async def whoami(key: APIKey) -> dict[str, str]:
        return {"key": key.id}

    return app, keys


@pytest.mark.parametrize(("secret", "key_id"), [(OPS, "ops"), (BILLING, "billing")])
def test_each_key_is_known_by_its_id(secret: str, key_id: str) -> None:
    app, _ = build()
    with TestClient(app) as client:
        response = client.get("/whoami", headers={"X-API-Key": secret})
    assert response.status_code == 200
    assert response.json() == {"key": key_id}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": ""},
        {"x-api-key": OPS[:-1]},
        {"x-api-key": OPS + "x"},
        {"x-api-key": hash_key(BILLING)},
        {"authorization": f"Bearer {OPS}"},
    ],
    ids=["none", "empty", "prefix", "longer", "the stored hash", "other header"],
)
def test_wrong_or_missing_keys_get_401(headers: dict[str, str]) -> None:
    app, _ = build()
    with TestClient(app) as client:
        response = client.get("/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'APIKey header="X-API-Key"'
    assert response.headers["content-type"] == "application/problem+json"


def test_logs_name_the_key_id_never_the_key(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = build()
    with caplog.at_level(logging.DEBUG, logger="shoal.security"), TestClient(app) as client:
        client.get("/whoami", headers={"x-api-key": OPS})
        client.get("/whoami", headers={"x-api-key": "guess-0123456789abcdef"})
    text = caplog.text
    assert "'ops'" in text
    assert "refused an unknown API key" in text
    assert OPS not in text and "guess-0123456789abcdef" not in text


def test_match_compares_with_every_key() -> None:
    _, keys = build()
    assert keys.match(OPS) == APIKey("ops")
    assert keys.match(BILLING) == APIKey("billing")
    assert keys.match("nope") is None


@pytest.mark.parametrize("keys", [{}, {"short": "abc"}, {"bad": "sha256:1234"}])
def test_weak_configurations_are_refused(keys: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        APIKeys(keys)
