"""WSGI mounts: Flask unchanged under a prefix, PEP 3333 checked by wsgiref's validator, faults."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment
from wsgiref.validate import validator

import httpx
import pytest
from flask import Flask, Response, abort, jsonify, request, stream_with_context

from shoal import App, ConfigurationError
from shoal.cli import main
from shoal.testing import AsyncTestClient, TestClient
from tests.apps import wsgi_targets
from tests.servers import running_server

# -- apps under test -------------------------------------------------------------


def make_flask() -> Flask:
    flask = Flask("legacy")

    @flask.get("/json")
    def as_json() -> Response:
        return jsonify(
            message="hi",
            path=request.path,
            script_root=request.script_root,
            args=request.args.getlist("tag"),
            cookie=request.cookies.get("session"),
            agent=request.headers.get("User-Agent"),
        )

    @flask.post("/form")
    def form() -> Response:
        return jsonify(dict(request.form))

    @flask.post("/json-in")
    def json_in() -> tuple[Response, int]:
        return jsonify(received=request.get_json()), 201

    @flask.get("/stream")
    def stream() -> Response:
        def generate() -> Iterator[str]:
            for i in range(3):  # the request context must survive between chunks
                yield f"{i}:{request.args['who']}\n"

        return Response(stream_with_context(generate()), mimetype="text/plain")

    @flask.get("/missing")
    def missing() -> Response:
        abort(404)

    @flask.get("/crash")
    def crash() -> Response:
        raise RuntimeError("the flask view crashed")

    @flask.route("/shared", methods=["GET", "POST"])
    def shared() -> Response:
        return jsonify(answered_by="flask", method=request.method)

    return flask


def mounted(wsgi_app: WSGIApplication, prefix: str = "/w", **options: Any) -> App:
    app = App(**options)
    app.mount(prefix, wsgi_app)
    return app


class Recorder:
    """A raw WSGI app built from `body`, recording environs and close() calls."""

    def __init__(
        self,
        body: Iterable[bytes] | None = None,
        status: str = "200 OK",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.body = body
        self.status = status
        self.headers = headers or [("Content-Type", "text/plain")]
        self.environs: list[WSGIEnvironment] = []
        self.closed = 0

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.environs.append(environ)
        start_response(self.status, self.headers)
        return Closing(self.body if self.body is not None else [b"ok"], self)


class Closing:
    def __init__(self, chunks: Iterable[bytes], recorder: Recorder) -> None:
        self.chunks = chunks
        self.recorder = recorder

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.recorder.closed += 1


# -- Flask, unchanged --------------------------------------------------------------


@pytest.fixture
def flask_client() -> Iterator[TestClient]:
    app = mounted(make_flask(), "/legacy")

    @app.get("/legacy/shared")
    async def shared() -> dict[str, str]:
        return {"answered_by": "shoal"}

    with TestClient(app) as client:
        yield client


def test_flask_json_route_sees_the_prefix_split(flask_client: TestClient) -> None:
    response = flask_client.get(
        "/legacy/json?tag=a&tag=b",
        headers={"cookie": "session=s1", "user-agent": "pytest"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "message": "hi",
        "path": "/json",
        "script_root": "/legacy",
        "args": ["a", "b"],
        "cookie": "s1",
        "agent": "pytest",
    }


def test_flask_form_and_json_posts(flask_client: TestClient) -> None:
    form = flask_client.post(
        "/legacy/form",
        content="name=Ada&lang=en",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    created = flask_client.post("/legacy/json-in", json={"x": [1, 2]})
    assert form.json() == {"name": "Ada", "lang": "en"}
    assert (created.status_code, created.json()) == (201, {"received": {"x": [1, 2]}})


def test_flask_streaming_response_with_its_request_context(flask_client: TestClient) -> None:
    response = flask_client.get("/legacy/stream?who=ada")
    assert response.status_code == 200
    assert response.text == "0:ada\n1:ada\n2:ada\n"


def test_flask_errors_are_flasks_own(
    flask_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        missing = flask_client.get("/legacy/missing")
        crashed = flask_client.get("/legacy/crash")
        after = flask_client.get("/legacy/json")
    assert missing.status_code == 404 and "Not Found" in missing.text
    assert crashed.status_code == 500 and "Internal Server Error" in crashed.text
    assert after.status_code == 200
    [logged] = [r for r in caplog.records if r.exc_info]
    assert "the flask view crashed" in str(logged.exc_info[1] if logged.exc_info else "")


def test_routes_win_and_other_methods_fall_through_to_the_mount(flask_client: TestClient) -> None:
    assert flask_client.get("/legacy/shared").json() == {"answered_by": "shoal"}
    posted = flask_client.post("/legacy/shared", content=b"")
    assert posted.json() == {"answered_by": "flask", "method": "POST"}


# -- routing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/api/ping", "route"),  # a route beats every mount
        ("/api/other", "api"),
        ("/api", "api"),  # the prefix itself
        ("/api/deep/x", "deep"),  # the longest prefix wins
        ("/api/deeper", "api"),  # a prefix ends at a slash
        ("/apix", "root"),
        ("/", "root"),
        ("/anything/else", "root"),
    ],
)
def test_mount_routing(path: str, answer: str) -> None:
    app = App()

    def named(name: str) -> WSGIApplication:
        def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [f"{name} {environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()]

        return wsgi

    app.mount("/", named("root"))
    app.mount("/api/", named("api"))
    app.mount("/api/deep", named("deep"))

    @app.get("/api/ping")
    async def ping() -> str:
        return "route"

    with TestClient(app) as client:
        text = client.get(path).text
    assert text.strip('"').split(" ")[0] == answer


@pytest.mark.parametrize(
    ("prefix", "path", "script_name", "path_info"),
    [
        ("/w", "/w", "/w", ""),
        ("/w", "/w/", "/w", "/"),
        ("/w", "/w/a/b", "/w", "/a/b"),
        ("/w/", "/w/a", "/w", "/a"),
        ("/", "/a", "", "/a"),
        ("/w", "/w/caf\u00e9", "/w", "/caf\u00c3\u00a9"),  # UTF-8 bytes as latin-1
        ("/\u00e9t\u00e9", "/\u00e9t\u00e9/x", "/\u00c3\u00a9t\u00c3\u00a9", "/x"),
    ],
)
def test_script_name_and_path_info(
    prefix: str, path: str, script_name: str, path_info: str
) -> None:
    recorder = Recorder()
    with TestClient(mounted(recorder, prefix)) as client:
        client.get(path)
    [environ] = recorder.environs
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (script_name, path_info)


def test_unmounted_paths_keep_shoals_404_and_redirects() -> None:
    app = mounted(Recorder(), "/w")

    @app.get("/items/")
    async def items() -> list[int]:
        return []

    with TestClient(app) as client:
        missing = client.get("/wx")
        redirect = client.get("/items")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (redirect.status_code, redirect.headers["location"]) == (308, "/items/")


# -- the environ -------------------------------------------------------------------


def test_environ_holds_the_request() -> None:
    recorder = Recorder()
    with TestClient(mounted(recorder)) as client:
        client.post(
            "/w/x?a=1&b=%20",
            content=b"body",
            headers={
                "host": "example.com:8080",
                "content-type": "text/plain",
                "x-thing": "one",
                "x_thing": "spoofed",
                "cookie": "a=1",
            },
        )
    [environ] = recorder.environs
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["QUERY_STRING"] == "a=1&b=%20"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.com", "8080")
    assert environ["CONTENT_TYPE"] == "text/plain"
    assert environ["CONTENT_LENGTH"] == "4"
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["HTTP_X_THING"] == "one"  # the underscore header was dropped
    assert environ["HTTP_COOKIE"] == "a=1"
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("testclient", "50000")
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.multithread"] is True
    assert environ["shoal.request"].path == "/w/x"


def test_repeated_headers_are_joined() -> None:
    recorder = Recorder()
    app = mounted(recorder)

    async def run() -> None:
        from shoal.requests import Request

        request = Request(
            "GET",
            "/w/",
            headers=[("accept", "a/b"), ("accept", "c/d"), ("cookie", "a=1"), ("cookie", "b=2")],
            app=app,
        )
        await app.startup()
        try:
            await app.handle(request)
        finally:
            await app.shutdown()

    asyncio.run(run())
    [environ] = recorder.environs
    assert environ["HTTP_ACCEPT"] == "a/b,c/d"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("localhost", "80")


# -- bodies in -------------------------------------------------------------------


def reader(how: str) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        if how == "read":
            data = stream.read()
        elif how == "read-chunks":
            data = b"".join(iter(lambda: stream.read(1000), b""))
        elif how == "readline":
            data = b"".join(iter(stream.readline, b""))
        elif how == "readlines":
            data = b"".join(stream.readlines())
        else:
            data = b"".join(stream)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d %d" % (len(data), data.count(b"\n"))]

    return app


@pytest.mark.parametrize("how", ["read", "read-chunks", "readline", "readlines", "iterate"])
@pytest.mark.parametrize("size", [0, 10, 64 * 1024, 200 * 1024])  # buffered, then streamed
def test_the_body_reaches_the_app(how: str, size: int) -> None:
    body = (b"x" * 99 + b"\n") * (size // 100) + b"y" * (size % 100)
    with TestClient(mounted(reader(how))) as client:
        response = client.post("/w/", content=body)
    lines = body.count(b"\n")
    assert response.text == f"{size} {lines}"


def test_a_declared_body_over_the_limit_is_413_before_the_app_runs() -> None:
    recorder = Recorder()
    with TestClient(mounted(recorder, max_body_size=1000)) as client:
        response = client.post("/w/", content=b"x" * 1001)
    assert response.status_code == 413
    assert recorder.environs == []


def test_a_body_that_streams_past_the_limit_is_413() -> None:
    with TestClient(mounted(reader("read"), max_body_size=100_000)) as client:
        response = client.post(
            "/w/", content=b"x" * 150_000, headers={"content-length": "70000"}
        )  # a lying length: the limit holds on what actually arrives
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_a_malformed_content_length_is_400() -> None:
    recorder = Recorder()
    with TestClient(mounted(recorder)) as client:
        response = client.post("/w/", content=b"abc", headers={"content-length": "three"})
    assert response.status_code == 400
    assert recorder.environs == []


# -- bodies out and close() ----------------------------------------------------------


def test_a_complete_body_is_sent_whole_and_closed() -> None:
    recorder = Recorder([b"hello ", b"", b"world"], headers=[("Content-Length", "11")])
    with TestClient(mounted(recorder)) as client:
        response = client.get("/w/")
    assert response.text == "hello world"
    assert response.headers["content-length"] == "11"
    assert recorder.closed == 1


def test_a_streamed_body_is_closed_once_at_its_end() -> None:
    def chunks() -> Iterator[bytes]:
        yield b""
        for i in range(4):
            yield str(i).encode()

    recorder = Recorder(chunks())
    with TestClient(mounted(recorder)) as client:
        response = client.get("/w/")
    assert response.text == "0123"
    assert recorder.closed == 1


def test_head_strips_the_body_keeps_the_length_and_closes() -> None:
    recorder = Recorder([b"abc"], headers=[("Content-Type", "text/plain")])
    with TestClient(mounted(recorder)) as client:
        response = client.head("/w/")
    assert response.content == b""
    assert response.headers["content-length"] == "3"
    assert recorder.closed == 1


def test_the_write_callable_comes_before_the_iterable() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]

    with TestClient(mounted(app)) as client:
        assert client.get("/w/").text == "written returned"


def test_hop_by_hop_headers_are_dropped() -> None:
    recorder = Recorder(headers=[("Connection", "close"), ("X-Kept", "yes")])
    with TestClient(mounted(recorder)) as client:
        response = client.get("/w/")
    assert "connection" not in response.headers
    assert response.headers["x-kept"] == "yes"


def test_exc_info_before_the_body_replaces_the_response() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("503 Service Unavailable", [("X-Error", "1")], sys.exc_info())
        return [b"sorry"]

    with TestClient(mounted(app)) as client:
        response = client.get("/w/")
    assert (response.status_code, response.text, response.headers["x-error"]) == (503, "sorry", "1")


def test_exc_info_after_the_body_started_aborts_the_stream() -> None:
    closed: list[bool] = []

    class Body:
        def __init__(self, start_response: StartResponse) -> None:
            self.start_response = start_response

        def __iter__(self) -> Iterator[bytes]:
            yield b"partial"
            try:
                raise ValueError("failed mid-body")
            except ValueError:
                self.start_response("500 Internal Server Error", [], sys.exc_info())
            yield b"never"

        def close(self) -> None:
            closed.append(True)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body(start_response)

    # the status line is out: a server aborts the connection (tests/hardening),
    # the test client raises the error rather than pass a short body as whole
    with TestClient(mounted(app)) as client, pytest.raises(ValueError, match="failed mid-body"):
        client.get("/w/")
    assert closed == [True]


# -- faults: 500 problem, logged, serving on ------------------------------------------


def raises(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    raise KeyError("broken legacy code")


def not_iterable(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
    start_response("200 OK", [])
    return 42


def starts_twice(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [])
    start_response("404 Not Found", [])
    return [b"x"]


def never_starts(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    return [b"no status"]


def bad_status(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("OK", [])
    return [b"x"]


def yields_text(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
    start_response("200 OK", [])
    return ["text, not bytes"]


def bad_header(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("X-Number", 5)])  # type: ignore[list-item]
    return [b"x"]


@pytest.mark.parametrize(
    ("wsgi_app", "logged"),
    [
        (raises, "broken legacy code"),
        (not_iterable, "returned a int, not an iterable"),
        (starts_twice, "start_response() a second time"),
        (never_starts, "without calling start_response()"),
        (bad_status, "malformed status"),
        (yields_text, "yielded a str, not bytes"),
        (bad_header, "not two str"),
    ],
)
def test_a_faulty_wsgi_app_is_a_logged_500_and_the_server_serves_on(
    wsgi_app: WSGIApplication, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = mounted(wsgi_app, "/bad")
    app.mount("/good", Recorder())
    with TestClient(app) as client, caplog.at_level(logging.ERROR, "shoal"):
        failed = client.get("/bad/")
        after = client.get("/good/")
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert logged not in failed.text  # nothing internal reaches the client
    [record] = [r for r in caplog.records if r.exc_info]
    assert logged in str(record.exc_info[1] if record.exc_info else "")
    assert (after.status_code, after.text) == (200, "ok")


def test_close_is_called_when_the_app_fails_after_returning() -> None:
    def failing() -> Iterator[bytes]:
        raise OSError("disk gone")
        yield b""

    recorder = Recorder(failing())
    with TestClient(mounted(recorder)) as client:
        assert client.get("/w/").status_code == 500
    assert recorder.closed == 1


def test_wsgi_errors_is_logged_one_record_per_flush(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        errors = environ["wsgi.errors"]
        errors.write("first line\n")
        errors.writelines(["second ", "line\n"])
        errors.flush()
        errors.write("unflushed at the end")
        start_response("200 OK", [])
        return [b"ok"]

    with TestClient(mounted(app)) as client, caplog.at_level(logging.ERROR, "shoal.wsgi"):
        client.get("/w/")
    messages = [r.getMessage() for r in caplog.records if r.name == "shoal.wsgi"]
    assert messages == ["first line\nsecond line", "unflushed at the end"]


async def test_a_full_pool_answers_503() -> None:
    release = threading.Event()

    def slow(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        release.wait(10)
        start_response("200 OK", [])
        return [b"done"]

    app = mounted(slow, threads=1, max_queue=0)
    async with AsyncTestClient(app) as client:
        first = asyncio.ensure_future(client.get("/w/"))
        deadline = time.monotonic() + 5
        while app.statistics().thread_pool.busy < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        refused = await client.get("/w/")
        release.set()
        served = await first
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
    assert served.text == "done"


# -- PEP 3333, checked by wsgiref's validator ---------------------------------------------


def strict_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    first = stream.readline()
    rest = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
    lines = stream.readlines()
    environ["wsgi.errors"].write("")
    environ["wsgi.errors"].flush()
    body = json.dumps(
        {
            "method": environ["REQUEST_METHOD"],
            "script": environ["SCRIPT_NAME"],
            "path": environ["PATH_INFO"],
            "query": environ["QUERY_STRING"],
            "body": (first + rest + b"".join(lines)).decode(),
        }
    ).encode()
    write = start_response("200 OK", [("Content-Type", "application/json")])
    if environ["QUERY_STRING"] == "write":
        write(b"")
    if environ["QUERY_STRING"] == "stream":
        return iter([body[:5], b"", body[5:]])
    return [body]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected_path"),
    [
        ("GET", "/strict/", b"", "/"),
        ("GET", "/strict", b"", ""),
        ("GET", "/strict/a/b?x=1", b"", "/a/b"),
        ("GET", "/strict/s?stream", b"", "/s"),
        ("GET", "/strict/w?write", b"", "/w"),
        ("POST", "/strict/p", b"line one\nline two\n", "/p"),
        ("PUT", "/strict/big", b"z" * 100_000, "/big"),
        ("DELETE", "/strict/d", b"", "/d"),
        ("HEAD", "/strict/h", b"", "/h"),
    ],
)
def test_the_mount_passes_the_pep_3333_validator(
    method: str, path: str, body: bytes, expected_path: str
) -> None:
    app = mounted(validator(strict_app), "/strict")
    with TestClient(app) as client:
        response = client.request(method, path, content=body)
    assert response.status_code == 200
    if method == "HEAD":
        assert response.content == b""
        return
    answer = response.json()
    assert (answer["method"], answer["script"], answer["path"]) == (
        method,
        "/strict",
        expected_path,
    )
    assert answer["body"] == body.decode()


# -- configuration ---------------------------------------------------------------


async def asgi_app(scope: Any, receive: Any, send: Any) -> None: ...


@pytest.mark.parametrize(
    ("prefix", "target", "message"),
    [
        ("/x", App(), "async (ASGI) application"),
        ("/x", asgi_app, "async (ASGI) application"),
        ("/x", "not an app", "needs a WSGI application"),
        ("x", Recorder(), "must start with '/'"),
        ("/x/{id}", Recorder(), "cannot hold path parameters"),
    ],
)
def test_mount_refuses_what_it_cannot_serve(prefix: str, target: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        App().mount(prefix, target)


def test_one_prefix_one_mount_and_none_after_start() -> None:
    app = mounted(Recorder(), "/x")
    with pytest.raises(ConfigurationError, match="already mounted"):
        app.mount("/x/", Recorder())
    with TestClient(app), pytest.raises(ConfigurationError, match="after the app has started"):
        app.mount("/y", Recorder())


def test_shoal_routes_lists_mounts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "tests.apps.wsgi_targets:app"]) == 0
    out = capsys.readouterr().out
    assert "/flask/..." in out and "WSGI <Flask 'tests.apps.wsgi_targets'>" in out
    assert "GET" in out and "/closed" in out


@pytest.mark.parametrize(
    ("target", "interface", "message"),
    [
        ("examples.hello:app", "wsgi", "is a shoal App, not a WSGI application"),
        ("tests.apps.wsgi_targets:MAX_BODY", "wsgi", "is a int, not a WSGI application"),
        ("examples.wsgi_hello:application", "rsgi", "serve a WSGI application"),
    ],
)
def test_shoal_run_checks_the_interface(
    target: str, interface: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", target, "--interface", interface]) == 2
    assert message in capsys.readouterr().err


# -- on a real socket -------------------------------------------------------------


def test_shoal_run_interface_wsgi_serves_a_plain_wsgi_app() -> None:
    extra = ["--interface", "wsgi"]
    with running_server("granian-rsgi", "examples.wsgi_hello:application", extra) as server:
        response = httpx.get(server.url + "/anything")
    assert response.status_code == 200
    assert response.text == "Hello, World!"
    assert response.headers["content-type"] == "text/plain"


@pytest.mark.parametrize("kind", ["granian-rsgi", "uvicorn", "hypercorn"])
def test_mounted_apps_on_a_real_server(kind: str) -> None:
    with (
        running_server(kind, "tests.apps.wsgi_targets:app") as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        as_json = client.get("/flask/json")
        streamed = client.get("/flask/stream")

        def chunks(size: int) -> Iterator[bytes]:
            for _ in range(size // 4096):
                yield b"a" * 4096

        uploaded = client.post("/flask/length", content=chunks(200 * 4096 // 4))  # chunked
        too_big = client.post("/flask/length", content=chunks(wsgi_targets.MAX_BODY + 8192))
        declared_too_big = client.post("/flask/length", content=b"b" * (wsgi_targets.MAX_BODY + 1))
        validated = client.post("/validated/v", content=b"one\ntwo\n")

        before = client.get("/closed").json()["closed"]
        with client.stream("GET", "/forever/") as endless:
            received = 0
            for chunk in endless.iter_bytes():
                received += len(chunk)
                if received > 50_000:
                    break  # hang up mid-stream
        deadline = time.monotonic() + 10
        while client.get("/closed").json()["closed"] == before and time.monotonic() < deadline:
            time.sleep(0.05)
        after = client.get("/closed").json()
        log = server.output()
    assert as_json.json() == {"message": "from flask", "script_root": "/flask", "path": "/json"}
    assert as_json.headers.get_list("content-length") == [str(len(as_json.content))]
    assert streamed.text == "".join(f"line {i}\n" for i in range(5))
    assert uploaded.json() == {"length": 200 * 4096 // 4 // 4096 * 4096}
    assert too_big.status_code == 413
    assert declared_too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"
    assert validated.text == "POST /v 8"
    assert after["closed"] == before + 1
    assert after["busy"] == 0  # no thread left behind by the hang-up
    # the validator found nothing; the only traceback is Flask logging the 413 it was handed
    assert "AssertionError" not in log and "unhandled error" not in log
    assert log.count("Traceback") == log.count("shoal.errors.PayloadTooLarge: The body is over")
