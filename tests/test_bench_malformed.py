"""`python -m bench.malformed`: the series is sent and recorded; shoal lives through it."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.malformed import REQUESTS, Outcome, probe, table
from bench.peers import BY_NAME as PEERS
from bench.server import running

BIN = Path(sys.executable).parent


def test_shoal_answers_every_malformed_request_and_stays_up(tmp_path: Path) -> None:
    with running(PEERS["shoal"], BIN, log_dir=tmp_path) as server:
        outcomes = probe(server.port)
    assert len(outcomes) == len(REQUESTS) and all(o.alive for o in outcomes)
    plus_one = outcomes[[name for name, _ in REQUESTS].index("Content-Length: +1")]
    assert plus_one.answer.startswith("HTTP/1.1 400")


def test_a_dead_server_ends_its_column() -> None:
    outcomes = [Outcome(REQUESTS[0][0], "HTTP/1.1 400 Bad Request", True),
                Outcome(REQUESTS[1][0], "closed, no answer", False)]  # fmt: skip
    lines = table({"fragile": outcomes}).splitlines()
    assert lines[2] == f"| {REQUESTS[0][0]} | HTTP/1.1 400 Bad Request |"
    assert lines[3] == f"| {REQUESTS[1][0]} | closed, no answer **(server dead)** |"
    assert lines[4] == f"| {REQUESTS[2][0]} | not sent (server dead) |"
