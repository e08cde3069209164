"""Cookies: `request.cookies`, `set_cookie`/`delete_cookie`, `Cookie()`, the test client's jar."""

from __future__ import annotations

import datetime
from typing import Annotated, Any

import httpx
import pytest
from openapi_spec_validator import validate

from examples import cookie_session
from shoal import App, ConfigurationError, Cookie, Request, Response
from shoal.requests import parse_cookie_header
from shoal.testing import TestClient
from tests.servers import running_server


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["a=1; b=2"], {"a": "1", "b": "2"}),
        (['a="quoted value"; b='], {"a": "quoted value", "b": ""}),
        (["a=1;b=2;;  c = 3 "], {"a": "1", "b": "2", "c": "3"}),
        (["a=first; a=second", "a=third"], {"a": "first"}),
        (["novalue; x=y=z"], {"x": "y=z"}),
        (["=orphan; ok=1"], {"ok": "1"}),
        ([], {}),
    ],
)
def test_the_cookie_header_is_parsed_leniently(headers: list[str], expected: Any) -> None:
    assert parse_cookie_header(headers) == expected


def test_request_cookies_are_lazy_and_cached() -> None:
    loads: list[int] = []

    def load() -> list[tuple[str, str]]:
        loads.append(1)
        return [("cookie", "sid=abc; theme=dark")]

    request = Request("GET", "/", headers=load)
    assert loads == []  # nothing read before the cookies are asked for
    assert request.cookies == {"sid": "abc", "theme": "dark"}
    assert request.cookies is request.cookies
    assert loads == [1]


def test_set_cookie_has_safe_defaults() -> None:
    response = Response()
    response.set_cookie("sid", "abc")
    assert response.headers == [("set-cookie", "sid=abc; Path=/; SameSite=Lax; HttpOnly")]


def test_set_cookie_with_every_attribute() -> None:
    response = Response()
    expires = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    response.set_cookie(
        "__Host-sid",
        '"a=b"',
        max_age=60,
        expires=expires,
        secure=True,
        httponly=False,
        samesite="none",
        partitioned=True,
    )
    response.set_cookie("pref", "x", domain="example.org", path="/app", samesite="strict")
    assert [value for _, value in response.headers] == [
        '__Host-sid="a=b"; Max-Age=60; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Path=/; '
        "SameSite=None; Secure; Partitioned",
        "pref=x; Domain=example.org; Path=/app; SameSite=Strict; HttpOnly",
    ]


def test_max_age_alone_adds_a_matching_expires() -> None:
    response = Response()
    response.set_cookie("sid", "abc", max_age=3600)
    value = response.headers[0][1]
    expires = value.split("Expires=")[1].split(";")[0]
    moment = datetime.datetime.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT")
    delta = moment.replace(tzinfo=datetime.UTC) - datetime.datetime.now(datetime.UTC)
    assert 3500 < delta.total_seconds() <= 3600


def test_delete_cookie_expires_it_with_the_same_scope() -> None:
    response = Response()
    response.delete_cookie("sid", path="/app", domain="example.org")
    assert response.headers == [
        (
            "set-cookie",
            "sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=example.org; "
            "Path=/app; SameSite=Lax; HttpOnly",
        )
    ]


@pytest.mark.parametrize(
    ("name", "value", "options", "message"),
    [
        ("bad name", "v", {}, "not an HTTP token"),
        ("n;x", "v", {}, "not an HTTP token"),
        ("n", "two words", {}, "RFC 6265 does not allow"),
        ("n", "a;b", {}, "RFC 6265 does not allow"),
        ("n", "a,b", {}, "RFC 6265 does not allow"),
        ("n", "caf\u00e9", {}, "RFC 6265 does not allow"),
        ("n", 'a"b', {}, "RFC 6265 does not allow"),
        ("n", "back\\slash", {}, "RFC 6265 does not allow"),
        ("n", "a\r\nSet-Cookie: x=y", {}, "RFC 6265 does not allow"),  # no header injection
        ("n", "v", {"path": "/a;Domain=evil"}, "invalid path"),
        ("n", "v", {"domain": "a\nb"}, "invalid domain"),
        ("n", "v", {"samesite": "none"}, "needs secure=True"),
        ("n", "v", {"partitioned": True}, "needs secure=True"),
        ("__Secure-n", "v", {}, "needs secure=True"),
        ("__Host-n", "v", {"secure": True, "path": "/a"}, "path='/'"),
        ("n", "v", {"expires": datetime.datetime(2030, 1, 1)}, "aware datetime"),
        ("n", "v", {"samesite": "loose"}, "'lax', 'strict' or 'none'"),
    ],
)
def test_invalid_cookies_are_refused(
    name: str, value: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Response().set_cookie(name, value, **options)


def cookie_app() -> App:
    app = App()

    @app.get("/typed")
    async def typed(
        count: Annotated[int, Cookie()],
        session: Annotated[str | None, Cookie("session-id", description="the session")] = None,
    ) -> dict[str, Any]:
        return {"count": count, "session": session}

    return app


def test_cookie_parameters_are_converted_and_validated() -> None:
    with TestClient(cookie_app()) as client:
        ok = client.get("/typed", cookies={"count": "3", "session-id": "s1"})
        default = client.get("/typed", headers={"cookie": "count=4"})
        bad = client.get("/typed", cookies={"count": "many"})
        missing = client.get("/typed")
    assert ok.json() == {"count": 3, "session": "s1"}
    assert default.json() == {"count": 4, "session": None}
    assert bad.status_code == 422
    assert [error["loc"] for error in bad.json()["errors"]] == [["cookie", "count"]]
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["cookie", "count"]


def test_a_cookie_parameter_must_be_a_scalar() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match="cookie parameter 'ids' must be a scalar"):

        @app.get("/")
        async def handler(ids: Annotated[list[int], Cookie()]) -> None: ...


def test_openapi_describes_cookie_parameters() -> None:
    document = cookie_app().openapi()
    validate(document)
    parameters = document["paths"]["/typed"]["get"]["parameters"]
    assert parameters == [
        {"name": "count", "in": "cookie", "required": True, "schema": {"type": "integer"}},
        {
            "name": "session-id",
            "in": "cookie",
            "required": False,
            "description": "the session",
            "schema": {"type": "string"},
        },
    ]


def test_the_test_client_keeps_a_cookie_jar() -> None:
    with TestClient(cookie_session.app) as client:
        assert client.get("/me").status_code == 401
        assert client.post("/login", json={"user": "ada"}).status_code == 200
        assert set(client.cookies) == {"session_id"}
        assert client.get("/me").json() == {"user": "ada"}
        client.cookies.set("theme", "dark")
        assert client.get("/cookies").json() == {
            "session_id": client.cookies["session_id"],
            "theme": "dark",
        }
        assert client.post("/logout").status_code == 204
        assert set(client.cookies) == {"theme"}
        assert client.get("/me").status_code == 401


def test_the_jar_follows_path_and_expiry() -> None:
    app = App()

    @app.get("/set")
    async def setter() -> Response:
        response = Response()
        response.set_cookie("scoped", "1", path="/api")
        response.set_cookie("gone", "2", max_age=0)
        response.set_cookie("old", "3", expires=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))
        response.set_cookie("kept", "4", max_age=60)
        return response

    @app.get("/{rest:path}")
    async def echo(request: Request, rest: str) -> dict[str, str]:
        return request.cookies

    with TestClient(app) as client:
        client.cookies.set("gone", "before")
        client.get("/set")
        assert dict(client.cookies) == {"scoped": "1", "kept": "4"}
        assert client.get("/api/items").json() == {"scoped": "1", "kept": "4"}
        assert client.get("/api").json() == {"scoped": "1", "kept": "4"}
        assert client.get("/apiary").json() == {"kept": "4"}
        assert client.get("/").json() == {"kept": "4"}


@pytest.mark.parametrize("kind", ["granian-rsgi", "uvicorn"])
def test_sessions_over_http(kind: str) -> None:
    with (
        running_server(kind, "examples.cookie_session:app") as server,
        httpx.Client(base_url=server.url) as client,
    ):
        login = client.post("/login", json={"user": "grace"})
        assert login.status_code == 200
        set_cookie = login.headers["set-cookie"]
        assert set_cookie.startswith("session_id=")
        assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
        assert "Max-Age=3600" in set_cookie
        assert client.get("/me").json() == {"user": "grace"}
        assert client.post("/logout").status_code == 204
        assert "session_id" not in client.cookies
        assert client.get("/me").status_code == 401
