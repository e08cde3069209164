from __future__ import annotations

import pytest

from shoal.datastructures import Headers, QueryParams, State


def test_headers_are_case_insensitive_and_multi_valued() -> None:
    headers = Headers([("content-type", "text/plain"), ("x-tag", "a"), ("X-Tag", "b")])
    assert headers["Content-Type"] == "text/plain"
    assert headers.get("X-TAG") == "a"
    assert headers.getall("x-tag") == ["a", "b"]
    assert headers.getall("missing", []) == []
    assert "CONTENT-type" in headers and "nope" not in headers
    assert len(headers) == 2 and sorted(headers) == ["content-type", "x-tag"]
    assert headers.multi_items()[2] == ("X-Tag", "b")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {}),
        ("a=1", {"a": ["1"]}),
        ("a=1&a=2&b=", {"a": ["1", "2"], "b": [""]}),
        ("q=hello+world&x=%2F%20", {"q": ["hello world"], "x": ["/ "]}),
        ("flag", {"flag": [""]}),
    ],
)
def test_query_params_parse(query: str, expected: dict[str, list[str]]) -> None:
    params = QueryParams.parse(query)
    assert {key: params.getall(key) for key in params} == expected


def test_multimappings_compare_by_items() -> None:
    assert QueryParams([("a", "1")]) == QueryParams([("a", "1")])
    assert Headers([("a", "1")]) != Headers([("a", "2")])


def test_state_is_an_attribute_bag() -> None:
    state = State(a=1)
    state.b = 2
    assert (state.a, state.b) == (1, 2)
    with pytest.raises(AttributeError):
        _ = state.missing


def test_query_parsing_agrees_with_the_standard_library() -> None:
    # the fast path (nothing to decode) and parse_qsl must give the same pairs
    import random
    from urllib.parse import parse_qsl

    rng = random.Random(7)
    alphabet = "ab=&;+% 2x"
    for _ in range(5000):
        query = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        expected = parse_qsl(query, keep_blank_values=True)
        params = QueryParams.parse(query)
        assert params.multi_items() == expected, query
        for key in {k for k, _ in expected}:
            values = [v for k, v in expected if k == key]
            assert params.getall(key) == params.values_of(key) == values, query
            assert params.get(key) == params[key] == values[0], query
        assert params.get("missing") is None and "missing" not in params
