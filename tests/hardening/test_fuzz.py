"""Property tests: whatever a client sends, the adapters answer 2xx-4xx (or 501) and never raise.

Small example counts here (`make test`); `make fuzz` runs the same entry
points under atheris for a long campaign (tests/hardening/atheris_harness.py).
Set HYPOTHESIS_PROFILE=long for a longer hypothesis run.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fuzzing import Runner, drive_asgi, drive_rsgi

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("long", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DRIVERS = {"asgi": drive_asgi, "rsgi": drive_rsgi}

TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
token = st.text(TCHAR, min_size=1, max_size=12)
# a header value as the servers deliver it: latin-1, no CR, LF or NUL
field_value = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=40,
).map(lambda v: v.strip(" \t"))
segment = st.one_of(
    st.text(string.ascii_letters + string.digits + "-._~", max_size=12),
    st.text(max_size=8),  # any unicode, surrogates aside
    st.from_regex(r"(%[0-9A-Fa-f]{2}){1,4}", fullmatch=True),
    st.from_regex(r"-?[0-9]{1,400}(\.[0-9]{1,40})?", fullmatch=True),
    st.uuids().map(str),
    st.sampled_from(["items", "ratio", "objects", "files", "users", "posts", "legacy", "..", "."]),
)
path = st.lists(segment, min_size=0, max_size=5).map(lambda parts: "/" + "/".join(parts))
query_names = st.sampled_from(
    ["limit", "ratio", "flag", "tags", "color", "when", "mode", "page-size", "x"]
)
query_value = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"-?[0-9]{1,30}(\.[0-9]*)?(e[+-]?[0-9]{1,4})?", fullmatch=True),
    st.sampled_from(["true", "false", "nan", "inf", "-inf", "red", "2024-02-30", "1_0", ""]),
)
query = st.lists(st.tuples(query_names, query_value), max_size=6).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")
) | st.binary(max_size=40)
header_names = st.sampled_from(
    ["x-client", "x-retries", "x-token", "cookie", "content-type", "accept", "x-request-id"]
) | token.map(str.lower)
headers = st.lists(st.tuples(header_names, field_value), max_size=6).map(
    lambda items: [(b"host", b"x")] + [(k.encode(), v.encode("latin-1")) for k, v in items]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
user_like = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=60) | st.integers(),
        "age": st.integers(-5, 200) | st.floats() | st.text(max_size=3),
        "email": st.none() | st.text(max_size=10),
        "addresses": st.lists(
            st.fixed_dictionaries(
                {
                    "street": st.text(max_size=5),
                    "zip": st.from_regex(r"[0-9]{4,6}", fullmatch=True),
                }
            ),
            max_size=2,
        ),
        "tags": st.lists(st.text(max_size=4), max_size=3),
        "extra": json_values,
    },
)
body = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    user_like.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 3000).map(lambda n: b"[" * n),
    st.sampled_from([b'"\\ud800"', b'["\xff"]', b"{", b"1e999", b'{"name": "a", "age": 1e400}']),
)


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner() as running:
        yield running


@pytest.mark.parametrize("adapter", DRIVERS)
@given(path=path, query=query, headers=headers)
def test_any_get_is_answered_without_a_server_error(
    runner: Runner, adapter: str, path: str, query: bytes, headers: list[Any]
) -> None:
    status = runner.run(DRIVERS[adapter]("GET", path, query, headers, b""))
    assert 200 <= status < 500 or status == 501


@pytest.mark.parametrize("adapter", DRIVERS)
@given(
    target=st.sampled_from(["/users", "/points", "/json", "/raw", "/legacy/x", "/items/1"]),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x+json", ""]),
    body=body,
    headers=headers,
)
def test_any_body_is_answered_without_a_server_error(
    runner: Runner, adapter: str, target: str, content_type: str, body: bytes, headers: list[Any]
) -> None:
    if content_type:
        headers = [*headers, (b"content-type", content_type.encode())]
    status = runner.run(DRIVERS[adapter]("POST", target, b"", headers, body))
    assert 200 <= status < 500


@pytest.mark.parametrize("adapter", DRIVERS)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) | token,
    path=path,
    headers=headers,
)
def test_any_method_is_answered_without_a_server_error(
    runner: Runner, adapter: str, method: str, path: str, headers: list[Any]
) -> None:
    status = runner.run(DRIVERS[adapter](method, path, b"", headers, b""))
    assert 200 <= status < 500 or status == 501


@pytest.mark.parametrize("adapter", DRIVERS)
@given(value=st.from_regex(r"-?[0-9]{1,500}(\.[0-9]{1,50})?", fullmatch=True))
def test_a_float_path_parameter_is_finite_or_not_routed(
    runner: Runner, adapter: str, value: str
) -> None:
    status = runner.run(DRIVERS[adapter]("GET", "/ratio/" + value, b"", [(b"host", b"x")], b""))
    assert status in (200, 404)
