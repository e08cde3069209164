"""`python -m bench.check` (`make bench-check`): the comparison, and a smoke run of `--record`.

The smoke run records a baseline in a temporary file with shoal, bare granian
and raw ASGI on uvicorn (the dev venv has no framework peer), one round of a
second: it proves the command runs end to end; no timing is asserted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import check

BIN = Path(sys.executable).parent


def test_a_ratio_more_than_the_tolerance_under_the_recorded_one_fails() -> None:
    recorded = {"json: shoal / granian-rsgi": 0.9, "params: shoal / x": 1.5, "json: shoal / x": 2.0}
    measured = {"json: shoal / granian-rsgi": 0.86, "params: shoal / x": 1.42}
    drops = check.compare(recorded, measured, 0.05)
    assert drops == [
        "params: shoal / x: 1.420, 5.3 % under the recorded 1.500 (tolerance 5 %)",
        "json: shoal / x: not measured (recorded 2.000)",
    ]
    assert check.compare(recorded, {**measured, "json: shoal / x": 9.0,
                                    "params: shoal / x": 1.43}, 0.05) == []  # fmt: skip


def test_ratios_come_from_each_servers_best_round() -> None:
    rates = {"json shoal": [900.0, 1000.0], "json granian-rsgi": [1250.0, 400.0],
             "json x": [500.0], "params shoal": [800.0], "params x": [0.0]}  # fmt: skip
    costs = {"json shoal": [20e-6, 10e-6], "json granian-rsgi": [8e-6, 30e-6],
             "json x": [15e-6], "params shoal": [12e-6], "params x": [24e-6]}  # fmt: skip
    found = check.ratios(rates, costs, "x")
    assert {name: round(value, 3) for name, value in found.items()} == {
        "json: shoal / granian-rsgi": 0.8, "json: shoal / granian-rsgi (CPU per request)": 0.8,
        "json: shoal / x": 2.0, "json: shoal / x (CPU per request)": 1.5,
        "params: shoal / x (CPU per request)": 2.0,  # x answered nothing: no req/s ratio
    }  # fmt: skip


def test_the_metric_picks_which_recorded_ratios_must_hold() -> None:
    recorded = {"json: shoal / x": 2.0, "json: shoal / x (CPU per request)": 1.5}
    measured = {"json: shoal / x": 1.0, "json: shoal / x (CPU per request)": 1.6}
    assert check.guarded(recorded, "cpu") == {"json: shoal / x (CPU per request)": 1.5}
    assert check.guarded(recorded, "rps") == {"json: shoal / x": 2.0}
    assert check.guarded(recorded, "both") == recorded
    assert check.compare(check.guarded(recorded, "cpu"), measured, 0.05) == []
    assert len(check.compare(check.guarded(recorded, "both"), measured, 0.05)) == 1


def test_the_fastest_framework_peer_comes_from_the_last_run(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    assert check.fastest_peer(results) == check.DEFAULT_PEER  # no run yet
    rows = [
        {"peer": "socketify", "workload": "json", "workers": 1, "rps": 9000, "na": None},
        {"peer": "emmett55", "workload": "json", "workers": 1, "rps": 5000, "na": None},
        {"peer": "robyn", "workload": "json", "workers": 1, "rps": 7000, "na": "wrong answer"},
        {"peer": "falcon", "workload": "json", "workers": 1, "rps": 4000, "na": None},
        {"peer": "sanic", "workload": "params", "workers": 1, "rps": 8000, "na": None},
    ]
    results.write_text(json.dumps({"results": rows}))
    assert check.fastest_peer(results) == "emmett55"  # socketify is a reference, not a peer


def test_without_a_baseline_it_says_how_to_record_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check.main(["--baseline", str(tmp_path / "none.json")]) == 2
    assert "make bench-check-record" in capsys.readouterr().err


def test_record_writes_every_ratio(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    argv = ["--record", "--baseline", str(baseline), "--peer", "raw-asgi", "--rounds", "1",
            "--duration", "1", "--warmup", "0", "--bin", str(BIN)]  # fmt: skip
    assert check.main(argv) == 0
    saved = json.loads(baseline.read_text())
    assert saved["peer"] == "raw-asgi"
    pairs = [f"{w}: shoal / {p}" for w in ("json", "params") for p in ("granian-rsgi", "raw-asgi")]
    assert set(saved["ratios"]) == {*pairs, *(f"{k} (CPU per request)" for k in pairs)}
    assert all(value > 0 for value in saved["ratios"].values())
