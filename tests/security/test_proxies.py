"""TrustedProxies: forwarding headers from trusted peers only, the chain walked from the right."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from shoal import App, Request
from shoal.security import TrustedProxies, parse_forwarded
from shoal.testing import TestClient
from tests.servers import running_server

TRUSTED = ["10.0.0.0/8", "192.168.1.1", "fd00::/8"]

CASES: list[tuple[str, tuple[str, int], dict[str, str], tuple[Any, ...]]] = [
    # name, peer, headers, (client host, scheme, host)
    (
        "untrusted peer: all ignored",
        ("203.0.113.9", 5000),
        {"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "https", "x-forwarded-host": "evil"},
        ("203.0.113.9", "http", "api.test"),
    ),
    (
        "untrusted peer: Forwarded ignored",
        ("203.0.113.9", 5000),
        {"forwarded": "for=1.2.3.4;proto=https"},
        ("203.0.113.9", "http", "api.test"),
    ),
    (
        "trusted peer",
        ("10.0.0.1", 5000),
        {
            "x-forwarded-for": "1.2.3.4",
            "x-forwarded-proto": "https",
            "x-forwarded-host": "api.example",
        },
        ("1.2.3.4", "https", "api.example"),
    ),
    (
        "client-spoofed first hop",
        ("10.0.0.1", 5000),
        {"x-forwarded-for": "6.6.6.6, 1.2.3.4"},
        ("1.2.3.4", "http", "api.test"),
    ),
    (
        "two trusted proxies",
        ("10.0.0.1", 5000),
        {"x-forwarded-for": "1.2.3.4, 192.168.1.1"},
        ("1.2.3.4", "http", "api.test"),
    ),
    (
        "a trusted hop on the right",
        ("10.0.0.1", 5000),
        {"x-forwarded-for": "1.2.3.4, 10.9.9.9"},
        ("1.2.3.4", "http", "api.test"),
    ),
    (
        "only trusted hops",
        ("10.0.0.1", 5000),
        {"x-forwarded-for": "10.0.0.3, 10.0.0.2"},
        ("10.0.0.3", "http", "api.test"),
    ),
    (
        "garbage for",
        ("10.0.0.1", 5000),
        {"x-forwarded-for": "<script>"},
        ("10.0.0.1", "http", "api.test"),
    ),
    (
        "bad proto and host",
        ("10.0.0.1", 5000),
        {"x-forwarded-proto": "javascript", "x-forwarded-host": "a b/c"},
        ("10.0.0.1", "http", "api.test"),
    ),
    (
        "Forwarded",
        ("10.0.0.1", 5000),
        {"forwarded": 'for=192.0.2.60;proto=https;host=api.example, for="[2001:db8::1]:4711"'},
        ("2001:db8::1", "https", "api.example"),
    ),
    (
        "Forwarded wins over X-Forwarded",
        ("10.0.0.1", 5000),
        {"forwarded": "for=192.0.2.60", "x-forwarded-for": "1.2.3.4"},
        ("192.0.2.60", "http", "api.test"),
    ),
    (
        "IPv6 trusted peer",
        ("fd00::1", 5000),
        {"x-forwarded-for": "2001:db8::7"},
        ("2001:db8::7", "http", "api.test"),
    ),
]


def build(trusted: list[str]) -> App:
    app = App(middleware=[TrustedProxies(trusted)])

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, object]:
        return {"client": request.client, "scheme": request.scheme, "host": request.host}

    return app


@pytest.mark.parametrize(
    ("peer", "headers", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_forwarding_headers(
    peer: tuple[str, int], headers: dict[str, str], expected: tuple[Any, ...]
) -> None:
    with TestClient(build(TRUSTED), client=peer) as client:
        seen = client.get("/whoami", headers={"host": "api.test", **headers}).json()
    assert (seen["client"][0], seen["scheme"], seen["host"]) == expected


def test_parse_forwarded() -> None:
    assert parse_forwarded(
        [
            'For="[2001:db8:cafe::17]:4711";Proto=HTTPS, for=_hidden',
            "by=203.0.113.43;for=198.51.100.17",
        ]
    ) == [
        {"for": "[2001:db8:cafe::17]:4711", "proto": "HTTPS"},
        {"for": "_hidden"},
        {"by": "203.0.113.43", "for": "198.51.100.17"},
    ]


def get(url: str, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.parametrize(("trusted", "honoured"), [("10.0.0.0/8", False), ("127.0.0.1", True)])
def test_on_a_real_socket(trusted: str, honoured: bool) -> None:
    spoof = {"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "https"}
    with running_server(
        "granian-rsgi", "tests.security.apps.proxied:app", env={"SHOAL_TEST_TRUSTED": trusted}
    ) as server:
        seen = get(f"{server.url}/whoami", spoof)
    if honoured:
        assert seen["client"][0] == "1.2.3.4" and seen["scheme"] == "https"
    else:
        assert seen["client"][0] == "127.0.0.1" and seen["scheme"] == "http"
