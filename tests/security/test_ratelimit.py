"""Rate limits: the GCRA arithmetic, the middleware's answers, keys, and per-route limits."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import pytest

from shoal import App, ConfigurationError, Request
from shoal.security import (
    APIKeys,
    JWTBearer,
    MemoryBackend,
    Rate,
    RateLimit,
    api_key_id,
    jwt_subject,
)
from shoal.testing import TestClient

from .tokens import AUDIENCE, ISSUER, public_jwks, rsa_key, sign

# (seconds since start, allowed?, remaining) for Rate(10/s, burst 3): three at
# once, then one every 0.1 s
GCRA_STEPS = [
    (0.00, True, 2),
    (0.00, True, 1),
    (0.00, True, 0),
    (0.00, False, 0),
    (0.05, False, 0),
    (0.10, True, 0),
    (0.10, False, 0),
    (0.35, True, 1),  # 0.25 s of credit: two tokens back, one spent
    (1.00, True, 2),  # full again
]


def test_gcra_steps() -> None:
    backend = MemoryBackend()
    rate = Rate(10, per=1.0, burst=3)
    for at, allowed, remaining in GCRA_STEPS:
        decision = backend.hit_now("k", rate, 1000.0 + at)
        assert (decision.allowed, decision.remaining) == (allowed, remaining), at
        if not allowed:
            assert 0 < decision.retry_after <= 0.1 + 1e-9


@pytest.mark.parametrize(
    ("limit", "per", "burst", "seconds"),
    [
        (10, 1.0, 5, 3.0),
        (2, 1.0, 1, 10.0),
        (100, 60.0, 20, 120.0),
        (0.5, 1.0, 3, 20.0),
    ],
)
def test_gcra_never_allows_more_than_rate_times_t_plus_burst(
    limit: float, per: float, burst: int, seconds: float
) -> None:
    backend = MemoryBackend()
    rate = Rate(limit, per=per, burst=burst)
    allowed, steps = 0, 1000
    for i in range(steps + 1):  # hammering: a request every seconds/steps
        allowed += backend.hit_now("k", rate, seconds * i / steps).allowed
    ceiling = burst + seconds * limit / per
    assert ceiling - 1 <= allowed <= ceiling


def test_the_memory_backend_stays_bounded() -> None:
    backend = MemoryBackend(max_keys=100)
    rate = Rate(1, per=1.0)
    for i in range(1000):
        backend.hit_now(f"client-{i}", rate, float(i) / 1000)
    assert len(backend._tats) <= 100


@pytest.mark.parametrize("bad", [dict(limit=0), dict(limit=1, per=0), dict(limit=1, burst=0)])
def test_bad_rates_are_configuration_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Rate(**bad)


def build(rate: Rate | None, **options: Any) -> App:
    app = App()
    RateLimit(rate, **options).install(app)

    @app.get("/items")
    async def items() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/runs", rate_limit=Rate(1, per=60))
    async def runs() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/status", rate_limit=None)
    async def livez() -> dict[str, bool]:
        return {"ok": True}

    return app


def test_over_the_limit_is_a_429_problem_with_the_draft_headers() -> None:
    with TestClient(build(Rate(2, per=60, burst=2))) as client:
        first = client.get("/items")
        assert first.status_code == 200
        assert first.headers["ratelimit-policy"] == '"default";q=2;w=60'
        assert first.headers["ratelimit"] == '"default";r=1;t=30'
        assert client.get("/items").headers["ratelimit"] == '"default";r=0;t=60'
        refused = client.get("/items")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "30"
    assert refused.headers["ratelimit"] == '"default";r=0;t=30'
    assert refused.headers["ratelimit-policy"] == '"default";q=2;w=60'
    assert "rate limit" in refused.json()["detail"]


def plain_app(**options: Any) -> App:
    """No per-route limits, in process, a plain key: the limiter's inlined fast path."""
    app = App()
    RateLimit(Rate(2, per=60), **options).install(app)

    @app.get("/items")
    async def items() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.mark.parametrize("headers", [True, False])
@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "general path"])
def test_both_paths_count_alike(fast: bool, headers: bool) -> None:
    app = plain_app(headers=headers) if fast else build(Rate(2, per=60), headers=headers)
    with TestClient(app) as client:
        answers = [client.get("/items") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    if headers:
        assert [a.headers["ratelimit"] for a in answers[:2]] == [
            '"default";r=1;t=30',
            '"default";r=0;t=60',
        ]
    else:
        assert all("ratelimit" not in a.headers for a in answers[:2])
    assert answers[2].headers["ratelimit"] == '"default";r=0;t=30'
    assert answers[2].headers["retry-after"] == "30"


def test_routes_have_their_own_limits_or_none() -> None:
    with TestClient(build(Rate(3, per=60))) as client:
        assert client.post("/runs").status_code == 200
        assert client.post("/runs").status_code == 429  # its own 1/min
        assert [client.get("/items").status_code for _ in range(4)] == [200, 200, 200, 429]
        assert all(client.get("/status").status_code == 200 for _ in range(10))
        assert "ratelimit" not in client.get("/status").headers
        assert client.get("/nowhere").status_code == 429  # the app's limit covers 404s too
        # the health and metrics probes are never limited, even once the app's limit is hit
        for probe in ("/livez", "/readyz", "/metrics"):
            assert all(client.get(probe).status_code == 200 for _ in range(5)), probe


def test_probes_are_not_limited_on_the_fast_path() -> None:
    app = App()
    RateLimit(Rate(1, per=60, burst=1)).install(app)  # one limit, in process: the inlined path
    with TestClient(app) as client:
        assert [client.get("/nowhere").status_code for _ in range(2)] == [404, 429]
        assert all(client.get("/livez").status_code == 200 for _ in range(5))


def test_route_limits_without_an_app_limit() -> None:
    with TestClient(build(None)) as client:
        assert all(client.get("/items").status_code == 200 for _ in range(10))
        assert client.post("/runs").status_code == 200
        assert client.post("/runs").status_code == 429


def test_a_wrong_route_option_is_a_configuration_error() -> None:
    app = App()
    RateLimit(Rate(1)).install(app)

    @app.get("/x", rate_limit=5)
    async def x() -> dict[str, bool]:
        return {}

    with pytest.raises(ConfigurationError, match="must be a Rate"), TestClient(app):
        pass  # found when the app starts, not at the first request


def test_a_limiter_must_be_installed() -> None:
    app = App(middleware=[RateLimit(Rate(1))])
    with pytest.raises(ConfigurationError, match="install"), TestClient(app):
        pass


KEY_A, KEY_B = "a" * 24, "b" * 24


def test_keyed_by_api_key() -> None:
    app = App()
    keys = APIKeys({"alpha": KEY_A, "beta": KEY_B}).install(app)
    RateLimit(Rate(1, per=60), key=api_key_id(keys)).install(app)

    @app.get("/x")
    async def x() -> dict[str, bool]:
        return {}

    with TestClient(app) as client:
        for key in (KEY_A, KEY_B):
            assert client.get("/x", headers={"x-api-key": key}).status_code == 200
            assert client.get("/x", headers={"x-api-key": key}).status_code == 429
        # no key (or a wrong one) falls back to the address: its own bucket
        assert client.get("/x").status_code == 200
        assert client.get("/x", headers={"x-api-key": "c" * 24}).status_code == 429


class Claims(msgspec.Struct):
    sub: str


KEY = rsa_key("k")


def test_keyed_by_jwt_subject_and_the_claims_verified_once() -> None:
    app = App()
    bearer = JWTBearer(
        Claims, issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256"], keys=public_jwks(KEY)
    ).install(app)
    RateLimit(Rate(2, per=60), key=jwt_subject(bearer)).install(app)

    @app.get("/x")
    async def x(claims: Claims) -> dict[str, str]:
        return {"sub": claims.sub}

    def call(sub: str) -> int:
        token = sign(KEY, sub=sub)  # a fresh token each time: same subject, same bucket
        return client.get("/x", headers={"authorization": f"Bearer {token}"}).status_code

    with TestClient(app) as client:
        assert [call("ada") for _ in range(3)] == [200, 200, 429]
        assert [call("bob") for _ in range(3)] == [200, 200, 429]


def test_keyed_by_a_function() -> None:
    def tenant(request: Request) -> str | None:
        return request.headers.get("x-tenant")

    app = build(Rate(1, per=60), key=tenant)
    with TestClient(app) as client:
        assert client.get("/items", headers={"x-tenant": "t1"}).status_code == 200
        assert client.get("/items", headers={"x-tenant": "t1"}).status_code == 429
        assert client.get("/items", headers={"x-tenant": "t2"}).status_code == 200


_ = Annotated  # keep the import for readers of the test's types
