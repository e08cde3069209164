"""The workloads: which path each loads, how, and what a correct answer is.

Before a server is loaded, `check(workload, port)` sends it one request and
verifies the answer (status, content type, body, `Server` and `Date`
headers), so every peer is measured doing the same work. A peer that answers
wrongly shows `n/a` with the reason instead of a figure.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from .apps import MESSAGE, PLAINTEXT, SLEEP


class WrongAnswer(Exception):
    """The server's answer to the check request was not the expected one."""


@dataclass(frozen=True)
class Answer:
    """One HTTP response, as the check saw it."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise WrongAnswer(f"body is not JSON: {self.body[:80]!r}") from exc


def _expect_json(answer: Answer) -> object:
    media = answer.headers.get("content-type", "")
    if not media.startswith("application/json"):
        raise WrongAnswer(f"content-type is {media!r}, not application/json")
    return answer.json()


def _equal(expected: object) -> Callable[[Answer], None]:
    def verify(answer: Answer) -> None:
        data = _expect_json(answer)
        if data != expected:
            raise WrongAnswer(f"expected {expected!r}, got {data!r}")

    return verify


def _plaintext(answer: Answer) -> None:
    media = answer.headers.get("content-type", "")
    if not media.startswith("text/plain"):
        raise WrongAnswer(f"content-type is {media!r}, not text/plain")
    if answer.body != PLAINTEXT:
        raise WrongAnswer(f"expected {PLAINTEXT!r}, got {answer.body[:80]!r}")


def _time(answer: Answer) -> None:
    data = _expect_json(answer)
    value = data.get("time") if isinstance(data, dict) else None
    if not isinstance(value, float) or abs(value - time.time()) > 60:
        raise WrongAnswer(f"expected {{'time': <now as float>}}, got {data!r}")


WORLD_ROWS = 10_000
QUERIES = 20
ADDITIONAL_FORTUNE = "Additional fortune added at request time."
FORTUNE_ROWS = 13  # TechEmpower's 12 fortunes and the one added at request time
_FORTUNE_ROW = re.compile(r"<tr><td>(\d+)</td><td>(.*?)</td></tr>", re.S)


def _world(item: object) -> None:
    if not isinstance(item, dict) or set(item) != {"id", "randomNumber"}:
        raise WrongAnswer(f"expected {{'id': n, 'randomNumber': m}}, got {item!r}")
    for key in ("id", "randomNumber"):
        value = item[key]
        if not isinstance(value, int) or not 1 <= value <= WORLD_ROWS:
            raise WrongAnswer(f"{key} must be an integer in 1..{WORLD_ROWS}, got {value!r}")


def _one_world(answer: Answer) -> None:
    _world(_expect_json(answer))


def _worlds(count: int) -> Callable[[Answer], None]:
    def verify(answer: Answer) -> None:
        data = _expect_json(answer)
        if not isinstance(data, list) or len(data) != count:
            raise WrongAnswer(f"expected a list of {count} worlds, got {str(data)[:80]}")
        for item in data:
            _world(item)
        if len({item["id"] for item in data}) != count:
            raise WrongAnswer("the worlds' ids repeat")

    return verify


def _fortunes(answer: Answer) -> None:
    """TechEmpower's fortunes rules: every row, the added one, sorted, escaped, UTF-8."""
    media = answer.headers.get("content-type", "")
    if not media.startswith("text/html"):
        raise WrongAnswer(f"content-type is {media!r}, not text/html")
    try:
        page = answer.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WrongAnswer("body is not UTF-8") from exc
    if not page.startswith("<!DOCTYPE html>") or "<table>" not in page:
        raise WrongAnswer(f"not an HTML table: {page[:80]!r}")
    rows = [(int(i), html.unescape(m)) for i, m in _FORTUNE_ROW.findall(page)]
    messages = [m for _, m in rows]
    problems = []
    if len(rows) != FORTUNE_ROWS:
        problems.append(f"{len(rows)} rows, not {FORTUNE_ROWS}")
    if (0, ADDITIONAL_FORTUNE) not in rows:
        problems.append("the fortune added at request time is missing")
    if messages != sorted(messages):
        problems.append("rows not sorted by message")
    if "<script>" in page or "&lt;script&gt;" not in page:
        problems.append("the <script> fortune is not escaped")
    if "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af" not in page:
        problems.append("the Japanese fortune is missing or mangled")
    if problems:
        raise WrongAnswer("fortunes: " + "; ".join(problems))


@dataclass(frozen=True)
class Workload:
    """A path loaded with wrk; `pipeline` > 1 sends that many requests per write."""

    name: str
    path: str
    verify: Callable[[Answer], None]
    description: str
    pipeline: int = 1
    connections: int | None = None  # None: the run's --connections
    headers: Callable[[], dict[str, str]] | None = None  # sent with every request

    def request_headers(self) -> dict[str, str]:
        """The extra request headers (made when first asked: tokens are minted then)."""
        return self.headers() if self.headers is not None else {}


def _bearer(alg: str) -> Callable[[], dict[str, str]]:
    def headers() -> dict[str, str]:
        from .apps.auth import token

        return {"Authorization": f"Bearer {token(alg)}"}

    return headers


_SUBJECT = {"sub": "bench-user"}


WORKLOADS: list[Workload] = [
    Workload("json", "/json", _equal(MESSAGE),
             'TechEmpower json: `{"message": "Hello, World!"}` with Server and Date headers'),
    Workload("plaintext", "/plaintext", _plaintext,
             "TechEmpower plaintext, one request at a time per connection"),
    Workload("plaintext-pipelined", "/plaintext", _plaintext,
             "TechEmpower plaintext, HTTP/1.1 pipelining 16 deep (wrk Lua script)", pipeline=16),
    Workload("time", "/", _time, 'the seed service: `GET /` answers `{"time": <float>}`'),
    Workload("params", "/users/42?q=shoal", _equal({"id": 42, "q": "shoal"}),
             "dynamic route `/users/{id:int}` plus a query parameter, echoed as JSON"),
    Workload("sync-io", "/sync", _equal({"slept": SLEEP}),
             "a blocking handler (`time.sleep(0.01)`) run off the loop, 64 connections",
             connections=64),
    Workload("params-typed", "/items/42?limit=10&offset=5&q=hello",
             _equal({"id": 42, "limit": 10, "offset": 5, "q": "hello"}),
             "`/items/{item_id:int}?limit=10&offset=5&q=hello` into "
             '`typed(item_id: int, limit: int = 20, offset: int = 0, q: str = "")`, echoed as '
             "JSON; shoal's untyped row is the same handler taking `request: Request` and "
             "reading `request.query` by hand"),
    Workload("db", "/db", _one_world,
             "TechEmpower single query: one random row of the 10,000-row `world` table"),
    Workload("queries", f"/queries?queries={QUERIES}", _worlds(QUERIES),
             f"TechEmpower multiple queries: {QUERIES} random `world` rows, one query each"),
    Workload("updates", f"/updates?queries={QUERIES}", _worlds(QUERIES),
             f"TechEmpower updates: {QUERIES} random `world` rows read one by one, given new "
             "random numbers and written back"),
    Workload("fortunes", "/fortunes", _fortunes,
             "TechEmpower fortunes: the `fortune` table plus one row added at request time, "
             "sorted by message, escaped into an HTML table"),
    Workload("auth-open", "/open", _equal(_SUBJECT),
             '`GET /open` answers `{"sub": "bench-user"}`: the protected route\'s twin, no '
             "authentication"),
    Workload("auth-rs256", "/protected", _equal(_SUBJECT),
             "`GET /protected` with `Authorization: Bearer <JWT>` signed RS256 (2048-bit): "
             "signature, `iss`, `aud`, `exp` verified, the `sub` claim answered",
             headers=_bearer("RS256")),
    Workload("auth-eddsa", "/protected", _equal(_SUBJECT),
             "the same with an EdDSA (Ed25519) token", headers=_bearer("EdDSA")),
]  # fmt: skip

BY_NAME = {workload.name: workload for workload in WORKLOADS}


def fetch(
    port: int, path: str, timeout: float = 10.0, headers: dict[str, str] | None = None
) -> Answer:
    """GET `path` from 127.0.0.1:`port` and return the answer (header names lowercased)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, headers, response.read())
    finally:
        connection.close()


def check(workload: Workload, port: int) -> None:
    """Raise `WrongAnswer` unless the server on `port` answers `workload` correctly."""
    answer = fetch(port, workload.path, headers=workload.request_headers())
    if answer.status != 200:
        raise WrongAnswer(f"status {answer.status}: {answer.body[:80]!r}")
    missing = [name for name in ("server", "date") if name not in answer.headers]
    if missing:
        raise WrongAnswer(f"missing header(s): {', '.join(missing)}")
    workload.verify(answer)
