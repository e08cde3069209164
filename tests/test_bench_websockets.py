"""`python -m bench.websockets` runs: its client drives real echo servers (no timings asserted).

The peers that need the bench venv (Starlette, aiohttp under gunicorn) are
not served here; shoal and bare granian are, as `make bench-ws` serves them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.websockets import (
    BY_NAME,
    ECHO,
    FRAME,
    MESSAGE,
    measure,
    per_message,
    round_trips,
    table,
)
from tests.servers import running_server


def test_the_client_frame_is_a_masked_text_frame_of_the_message() -> None:
    assert FRAME[0] == 0x81 and FRAME[1] == 0x80 | len(MESSAGE)
    mask, payload = FRAME[2:6], FRAME[6:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) == MESSAGE
    assert bytes([0x81, len(MESSAGE)]) + MESSAGE == ECHO


def test_shoal_and_bare_granian_echo_under_the_bench_client() -> None:
    peers = [BY_NAME["shoal"], BY_NAME["granian-rsgi"]]
    results = measure(peers, Path(sys.executable).parent, 0.3, 1, 2)
    assert set(results) == {"shoal", "granian-rsgi"}
    assert all(len(runs) == 1 and runs[0].rate > 0 for runs in results.values())
    assert all(runs[0].cpu is not None and runs[0].cpu >= 0 for runs in results.values())
    lines = table(results).splitlines()
    assert lines[2].startswith("| shoal (") and lines[3].endswith("x |")


def test_the_client_drives_any_echo_and_fails_without_a_server() -> None:
    # the adapter tests' app has an /echo route too, which also sends text back as text
    with running_server("granian-rsgi", "tests.apps.websockets_app:app") as server:
        port = int(server.url.rsplit(":", 1)[1])
        assert round_trips(port, 1, 0.2).rate > 0
    with pytest.raises(OSError):
        round_trips(port, 1, 0.2)  # nothing listens any more


def test_the_in_process_cost_of_an_echo_is_measured_for_shoal() -> None:
    costs = per_message(2000, 1)
    assert set(costs) >= {"ASGI events alone", "shoal"}
    assert all(cost > 0 for cost in costs.values())
