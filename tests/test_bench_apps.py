"""The bench apps keep answering every workload correctly (no timings measured).

Each app whose dependencies are in the dev environment is served for real, as
`make bench` serves it, and answers one request per workload, checked by the
same `bench.workloads.check` that guards every benchmark run. The peers that
need the bench venv (`.bench/venv`) are not covered here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.loadgen import LoadFailed, parse
from bench.peers import BY_NAME as PEERS
from bench.server import Server, running, session_pids, tree_rss
from bench.workloads import WORKLOADS, Answer, Workload, WrongAnswer, check, fetch

BIN = Path(sys.executable).parent
DEV_PEERS = ["shoal", "granian-rsgi", "raw-asgi"]


@pytest.fixture(scope="module", params=DEV_PEERS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    peer = PEERS[request.param]
    with running(peer, BIN, log_dir=tmp_path_factory.mktemp("logs")) as started:
        yield started


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.name)
def test_each_app_answers_each_workload(server: Server, workload: Workload) -> None:
    check(workload, server.port)  # raises WrongAnswer with the reason


def test_the_server_process_tree_is_found_and_measured(server: Server) -> None:
    assert server.process.pid in session_pids(server.process.pid)
    assert tree_rss(server.process.pid) > 1024 * 1024


def test_a_wrong_answer_is_caught(server: Server) -> None:
    missing = Workload("missing", "/no-such-route", lambda answer: None, "a 404")
    with pytest.raises(WrongAnswer, match="status 404"):
        check(missing, server.port)
    wrong_id = Workload("params", "/users/7?q=x", WORKLOADS[4].verify, "another id")
    with pytest.raises(WrongAnswer, match="expected"):
        check(wrong_id, server.port)


def test_params_echo_the_id_and_query(server: Server) -> None:
    answer = fetch(server.port, "/users/7?q=x")
    assert answer.status == 200
    assert answer.json() == {"id": 7, "q": "x"}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (Answer(200, {"content-type": "text/html"}, b"{}"), "not application/json"),
        (Answer(200, {"content-type": "application/json"}, b"nope"), "not JSON"),
        (Answer(200, {"content-type": "application/json"}, b'{"message": "hi"}'), "expected"),
    ],
)
def test_json_verification_rejects(answer: Answer, message: str) -> None:
    with pytest.raises(WrongAnswer, match=message):
        WORKLOADS[0].verify(answer)


WRK_LINE = (
    'BENCH_RESULT {"requests": 5000, "duration_us": 2000000, "connect": 1, "read": 2, '
    '"write": 0, "status": 3, "timeout": 4, "p50_us": 1500, "p99_us": 9000}'
)


@pytest.mark.parametrize(("pipeline", "p50", "p99"), [(1, 1.5, 9.0), (16, None, None)])
def test_wrk_result_line_is_parsed(pipeline: int, p50: float | None, p99: float | None) -> None:
    load = parse("Running 2s test\n" + WRK_LINE + "\n", pipeline)
    assert load.rps == 2500
    assert (load.p50_ms, load.p99_ms) == (p50, p99)
    assert (load.socket_errors, load.status_errors, load.errors) == (7, 3, 10)


def test_wrk_output_without_result_fails() -> None:
    with pytest.raises(LoadFailed, match="no result"):
        parse("unable to connect to 127.0.0.1:1 Connection refused\n")
