"""The hostile-request suite: raw bytes drawn from request-smuggling and parser CVEs.

Each case is sent on its own connection to `shoal run` and to uvicorn (the
ASGI adapter); the table says which statuses must come back, in order, and
whether the server must close the connection; and the server must keep
serving afterwards. The cases come from the parser bugs of aiohttp, gunicorn,
uvicorn/httptools, h11, waitress, Twisted, Tornado and Node's llhttp:

- CL.TE / TE.CL smuggling and duplicate or malformed Content-Length
  (CVE-2023-47627 aiohttp, CVE-2024-1135 gunicorn, CVE-2022-24761 waitress,
  CVE-2022-24801 Twisted, CVE-2023-28708 Tornado, CVE-2022-32215 llhttp);
- chunk sizes and extensions (CVE-2023-30589 llhttp, CVE-2024-23829 aiohttp,
  CVE-2024-27306/CVE-2024-52304 aiohttp, h11's chunk-size overflow);
- bare LF / CR, NUL and control bytes, obs-fold, whitespace before the colon
  (CVE-2022-32213/32214 llhttp, CVE-2023-37276 aiohttp, CVE-2024-24795);
- oversized lines and headers; invalid methods and versions; absolute-form,
  asterisk-form and authority-form targets; `Expect: 100-continue`;
  pipelining with a bad request in the middle; HTTP/1.0 keep-alive; bytes
  after `Connection: close`; the Host rules of RFC 9112 §3.2.

A server may answer a broken request earlier or later in the exchange, so
where shoal run (granian) and uvicorn differ in a harmless way the table says
so per server. What is never allowed: a 5xx other than 501, a smuggled second
request answered, a dead worker.
"""

# ruff: noqa: E501  (the case table reads best one case a line)
from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from tests.servers import running_server

from .raw import get, parse_statuses

TARGET = "tests.apps.hardening:app"
H = b"Host: x\r\n"


def req(line: bytes, headers: bytes = b"", body: bytes = b"", host: bool = True) -> bytes:
    return line + b"\r\n" + (H if host else b"") + headers + b"\r\n" + body


OK = req(b"GET / HTTP/1.1")
# a request that would be answered if a server took a body's bytes for a request
SMUGGLED = b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"


@dataclass(frozen=True)
class Case:
    """Bytes to send; the statuses expected and whether the connection closes (per server)."""

    data: bytes
    statuses: tuple[int, ...]
    closes: bool
    uvicorn: tuple[tuple[int, ...], bool] | None = None  # where uvicorn differs, harmlessly
    why: str = ""

    def expected(self, kind: str) -> tuple[tuple[int, ...], bool]:
        if kind == "uvicorn" and self.uvicorn is not None:
            return self.uvicorn
        return self.statuses, self.closes


def post(headers: bytes, body: bytes, version: bytes = b"1.1") -> bytes:
    return req(b"POST /size HTTP/" + version, headers, body)


CASES: dict[str, Case] = {
    # -- Content-Length / Transfer-Encoding smuggling
    "cl-te": Case(post(b"Content-Length: 6\r\n" + CHUNKED, b"0\r\n\r\n" + SMUGGLED), (200,), True,
                  uvicorn=((400,), True), why="TE wins, the connection closes (RFC 9112 6.3)"),
    "te-cl": Case(post(CHUNKED + b"Content-Length: 40\r\n", b"0\r\n\r\n" + SMUGGLED), (200,), True,
                  uvicorn=((400,), True)),
    "cl-twice-differ": Case(post(b"Content-Length: 3\r\nContent-Length: 4\r\n", b"abcd"), (400,), True),
    "cl-twice-same": Case(post(b"Content-Length: 3\r\nContent-Length: 3\r\n", b"abc"), (200,), False,
                          uvicorn=((400,), True), why="RFC 9110 8.6 allows identical values"),
    "cl-list": Case(post(b"Content-Length: 3, 3\r\n", b"abc"), (400,), True),
    "cl-plus": Case(post(b"Content-Length: +3\r\n", b"abc"), (400,), True),
    "cl-minus": Case(post(b"Content-Length: -1\r\n", b"abc"), (400,), True),
    "cl-hex": Case(post(b"Content-Length: 0x3\r\n", b"abc"), (400,), True),
    "cl-inner-space": Case(post(b"Content-Length: 1 2\r\n", b"abc"), (400,), True),
    "cl-underscore": Case(post(b"Content-Length: 1_0\r\n", b"abcdefghij"), (400,), True),
    "cl-huge": Case(post(b"Content-Length: 99999999999999999999999\r\n", b"abc"), (400,), True),
    "cl-over-limit": Case(post(b"Content-Length: 10000000\r\n", b"abc"), (413,), True),
    # -- chunked framing
    "chunk-size-invalid": Case(post(CHUNKED, b"zz\r\nabc\r\n0\r\n\r\n"), (400,), True),
    "chunk-size-0x": Case(post(CHUNKED, b"0x3\r\nabc\r\n0\r\n\r\n"), (400,), True),
    "chunk-size-overflow": Case(post(CHUNKED, b"fffffffffffffffff1\r\nabc\r\n0\r\n\r\n"), (400,), True),
    "chunk-size-negative": Case(post(CHUNKED, b"-3\r\nabc\r\n0\r\n\r\n"), (400,), True),
    "chunk-size-space": Case(post(CHUNKED, b"3 3\r\nabc\r\n0\r\n\r\n"), (400,), True),
    "chunk-ext-bare-lf": Case(post(CHUNKED, b"3;a\nb\r\nabc\r\n0\r\n\r\n"), (400,), True),
    "chunk-ext-100k": Case(post(CHUNKED, b"3;" + b"a" * 100_000 + b"\r\nabc\r\n0\r\n\r\n"), (400,), True,
                           uvicorn=((200,), False), why="llhttp accepts long extensions"),
    "chunk-data-too-long": Case(post(CHUNKED, b"3\r\nabcdef\r\n0\r\n\r\n"), (400,), True),
    "chunk-no-crlf": Case(post(CHUNKED, b"3\r\nabc0\r\n\r\n"), (400,), True),
    "chunk-bare-lf": Case(post(CHUNKED, b"3\nabc\n0\n\n"), (400,), True),
    # -- Transfer-Encoding values (shoal's own rules, beyond the servers')
    "te-obs-fold": Case(post(b"Transfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n", b"abc"), (400,), True),
    "te-vertical-tab": Case(post(b"Transfer-Encoding: \x0bchunked\r\nContent-Length: 3\r\n", b"abc"),
                            (400,), True),
    "te-gzip-chunked": Case(post(b"Transfer-Encoding: gzip, chunked\r\n", b"1\r\na\r\n0\r\n\r\n"), (501,), True),
    "te-chunked-twice": Case(post(CHUNKED + CHUNKED, b"1\r\na\r\n0\r\n\r\n"), (400,), True),
    "te-identity": Case(post(b"Transfer-Encoding: identity\r\nContent-Length: 1\r\n", b"a"), (400,), True),
    "te-on-http10": Case(post(CHUNKED, b"1\r\na\r\n0\r\n\r\n", b"1.0"), (400,), True),
    # -- bytes where they do not belong
    "bare-lf-head": Case(b"GET / HTTP/1.1\nHost: x\n\n", (200,), False, uvicorn=((400,), True),
                         why="RFC 9112 2.2: a recipient MAY accept a bare LF"),
    "bare-cr-in-value": Case(req(b"GET / HTTP/1.1", b"X-A: a\rb\r\n"), (400,), True),
    "nul-in-value": Case(req(b"GET / HTTP/1.1", b"X-A: a\x00b\r\n"), (400,), True),
    "nul-in-path": Case(req(b"GET /a\x00b HTTP/1.1"), (400,), True),
    "control-in-name": Case(req(b"GET / HTTP/1.1", b"X\x01A: b\r\n"), (400,), True),
    "obs-fold": Case(req(b"GET / HTTP/1.1", b"X-A: a\r\n b\r\n"), (400,), True),
    "space-before-colon": Case(req(b"GET / HTTP/1.1", b"X-A : b\r\n"), (400,), True),
    "space-in-name": Case(req(b"GET / HTTP/1.1", b"X A: b\r\n"), (400,), True),
    "empty-name": Case(req(b"GET / HTTP/1.1", b": b\r\n"), (400,), True),
    "space-before-first-header": Case(b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", (400,), True),
    "tls-to-http-port": Case(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 50, (400,), True),
    # -- sizes (granian: 431 past --max-header-size; shoal checks it under ASGI)
    "request-line-70k": Case(req(b"GET /" + b"a" * 70_000 + b" HTTP/1.1"), (431,), True,
                             uvicorn=((400,), True)),
    "header-70k": Case(req(b"GET / HTTP/1.1", b"X-A: " + b"a" * 70_000 + b"\r\n"), (431,), True),
    "headers-300": Case(req(b"GET / HTTP/1.1", b"".join(b"X-%d: %s\r\n" % (i, b"v" * 250) for i in range(300))),
                        (431,), True),
    # -- methods, versions, targets
    "method-bad-char": Case(req(b"G(T / HTTP/1.1"), (400,), True),
    "method-space": Case(req(b"GE T / HTTP/1.1"), (400,), True),
    "method-lowercase": Case(req(b"get / HTTP/1.1"), (405,), False, uvicorn=((400,), True),
                             why="a lower-case token is a valid, unknown method"),
    "version-1.2": Case(req(b"GET / HTTP/1.2"), (400,), True),
    "version-junk": Case(req(b"GET / HTTP/1.1x"), (400,), True),
    "absolute-form": Case(req(b"GET http://other.example/ HTTP/1.1"), (200,), False),
    "asterisk-form": Case(req(b"OPTIONS * HTTP/1.1"), (404,), False),
    "authority-form": Case(req(b"CONNECT x:443 HTTP/1.1"), (400,), False, uvicorn=((400,), True)),
    "target-no-slash": Case(req(b"GET pid HTTP/1.1"), (400,), False, uvicorn=((400,), True)),
    # -- Expect, pipelining, persistence
    "expect-oversized": Case(req(b"POST /size HTTP/1.1", b"Expect: 100-continue\r\nContent-Length: 10000000\r\n"),
                             (413,), True, why="refused before the body is asked for: no 100, closed"),
    "expect-small": Case(req(b"POST /size HTTP/1.1", b"Expect: 100-continue\r\nContent-Length: 3\r\n", b"abc"),
                         (100, 200), False),
    "pipeline-bad-middle": Case(OK + req(b"GET / HTTP/1.1", b"X A: b\r\n") + OK, (200, 400), True,
                                uvicorn=((400,), True), why="nothing after the bad one is answered"),
    "pipeline-three": Case(OK + OK + OK, (200, 200, 200), False),
    "http10-keep-alive": Case(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + b"GET / HTTP/1.0\r\n\r\n" * 2,
                              (200, 200), True, uvicorn=((200,), True)),
    "http10-one-request": Case(b"GET / HTTP/1.0\r\n\r\n" + SMUGGLED, (200,), True),
    "after-connection-close": Case(req(b"GET / HTTP/1.1", b"Connection: close\r\n") + SMUGGLED, (200,), True),
    "get-with-body": Case(req(b"GET / HTTP/1.1", b"Content-Length: 3\r\n", b"abc") + OK, (200, 200), False),
    "leading-crlf": Case(b"\r\n" + OK, (200,), False),
    # -- Host (RFC 9112 3.2: exactly one on HTTP/1.1)
    "host-missing": Case(req(b"GET / HTTP/1.1", host=False), (400,), True),
    "host-twice": Case(req(b"GET / HTTP/1.1", b"Host: y\r\n"), (400,), True),
    "host-missing-http10": Case(b"GET / HTTP/1.0\r\n\r\n", (200,), True),
    # -- paths
    "path-percent-nul": Case(req(b"GET /%00 HTTP/1.1"), (404,), False),
    "path-overlong-utf8": Case(req(b"GET /%zz%c0%af HTTP/1.1"), (404,), False),
    "path-newline": Case(req(b"GET /fail%0aFORGED HTTP/1.1"), (404,), False),
    "value-obs-text": Case(req(b"GET / HTTP/1.1", b"X-A: \xff\xfe\r\n"), (200,), False),
}  # fmt: skip


@dataclass
class Outcome:
    statuses: list[int]
    closed: bool
    serving: bool
    raw: bytes = field(repr=False, default=b"")


def run_case(port: int, case: Case, expected: int) -> Outcome:
    """Send the case; read until the server closes, or until `expected` responses and a pause."""
    raw = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(OSError):  # the server refused the rest: the answer says why
            sock.sendall(case.data)
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            enough = len(parse_statuses(raw)) >= expected
            sock.settimeout(0.3 if enough else max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if enough:
                    break
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            raw += chunk
    serving = get(port, "/").statuses == [200]
    return Outcome(parse_statuses(raw), closed, serving, raw)


@pytest.fixture(scope="module", params=["granian-rsgi", "uvicorn"])
def outcomes(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, Outcome], str]]:
    kind: str = request.param
    with running_server(kind, TARGET, env={"HARDENING_BODY_TIMEOUT": "1"}) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with ThreadPoolExecutor(16) as pool:
            futures = {
                name: pool.submit(run_case, port, case, len(case.expected(kind)[0]))
                for name, case in CASES.items()
            }
            results = {name: future.result() for name, future in futures.items()}
        assert get(port, "/").statuses == [200]
        yield kind, results, server.output()


def test_the_suite_has_at_least_40_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_request(outcomes: tuple[str, dict[str, Outcome], str], name: str) -> None:
    kind, results, _ = outcomes
    statuses, closes = CASES[name].expected(kind)
    outcome = results[name]
    assert (tuple(outcome.statuses), outcome.closed) == (statuses, closes), outcome.raw[:300]
    assert outcome.serving, "the server stopped serving after this request"


def test_no_hostile_request_left_a_traceback(outcomes: tuple[str, dict[str, Outcome], str]) -> None:
    _, _, output = outcomes
    assert "Traceback" not in output
    assert not any(line.startswith("FORGED") for line in output.splitlines())
