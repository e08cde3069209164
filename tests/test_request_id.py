"""`Request.id`: the client's `X-Request-ID` when sane, else a cheap unique one."""

from __future__ import annotations

import os

import pytest

from shoal import Request


def request_with(headers: list[tuple[str, str]]) -> Request:
    return Request("GET", "/", headers=headers)


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abc-123", True),
        ("4bf92f3577b34da6a3ce929d0e0e4736", True),
        ("x" * 200, True),
        ("x" * 201, False),  # too long
        ("", False),
        ("caf\u00e9", False),  # not ASCII
        ("a\tb", False),  # not printable
        ("line\nbreak", False),
    ],
)
def test_an_incoming_id_is_kept_only_when_sane(incoming: str, kept: bool) -> None:
    request = request_with([("x-request-id", incoming)])
    assert (request.id == incoming) is kept
    assert request.id == request.id  # stable once made


def test_generated_ids_are_unique_and_share_a_per_process_prefix() -> None:
    ids = [request_with([]).id for _ in range(1000)]
    assert len(set(ids)) == 1000
    prefixes = {i.partition("-")[0] for i in ids}
    assert len(prefixes) == 1 and len(prefixes.pop()) == 10


def test_middleware_may_assign_an_id() -> None:
    request = request_with([("x-request-id", "from-client")])
    request.id = "from-gateway"
    assert request.id == "from-gateway"


def test_a_forked_worker_makes_ids_of_its_own() -> None:
    parent = request_with([]).id.partition("-")[0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its prefix and leave at once
        try:
            os.write(write, request_with([]).id.partition("-")[0].encode())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child and child != parent
