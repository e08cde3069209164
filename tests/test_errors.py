from __future__ import annotations

import pytest

from shoal import errors
from shoal.errors import (
    HTTPError,
    MethodNotAllowed,
    ServiceUnavailable,
    ShoalError,
    ValidationError,
)


def test_every_exception_is_in_the_one_tree() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), ShoalError), name
        assert name in (errors.__doc__ or ""), f"{name} is missing from the tree drawing"


def test_problem_document() -> None:
    error = HTTPError(404, "no such user", headers={"X-A": "1"}, type="https://e.x/nf", user=7)
    assert error.problem() == {
        "type": "https://e.x/nf",
        "title": "Not Found",
        "status": 404,
        "detail": "no such user",
        "user": 7,
    }
    assert error.headers == {"X-A": "1"}
    assert str(error) == "no such user"


def test_defaults_from_status() -> None:
    error = HTTPError(429)
    assert (error.title, error.detail) == ("Too Many Requests", "Too Many Requests")
    assert HTTPError(599).title == "Error"  # unknown statuses still make a problem


@pytest.mark.parametrize("status", [200, 302, 600, 99])
def test_only_error_statuses(status: int) -> None:
    with pytest.raises(ValueError, match="4xx or 5xx"):
        HTTPError(status)


def test_subclasses_carry_their_headers_and_members() -> None:
    assert MethodNotAllowed(["GET", "HEAD"]).headers == {"allow": "GET, HEAD"}
    assert ServiceUnavailable(retry_after=5).headers == {"retry-after": "5"}
    invalid = ValidationError([{"loc": ["query", "n"], "msg": "expected int"}])
    assert invalid.status == 422
    assert invalid.problem()["errors"] == [{"loc": ["query", "n"], "msg": "expected int"}]
