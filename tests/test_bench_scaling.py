"""`python -m bench.scaling`: the worker counts, the pinning, the verdicts, and a smoke run.

The smoke run serves shoal and bare granian from the dev venv at one worker
for a second each (no timing is asserted): it proves the command still runs
end to end and writes its table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import scaling
from bench.run import Result
from bench.scaling import TIMES

BIN = Path(sys.executable).parent


def test_worker_counts_fit_the_server_cpus() -> None:
    assert scaling.default_counts(range(2), 1) == [1]
    assert scaling.default_counts(range(16), 4) == [1, 2, 4, 8]
    assert scaling.default_counts(range(24), 6) == [1, 2, 4, 8, 16]
    assert scaling.default_counts([0], 1) == [1]


def test_wrk_keeps_its_cpus_and_too_many_workers_run_unpinned() -> None:
    pinned = scaling.plan(range(16), 4, 8)
    assert pinned.server == tuple(range(12)) and pinned.load == (12, 13, 14, 15)
    crowded = scaling.plan(range(16), 4, 16)
    assert crowded.server == () and crowded.load == (12, 13, 14, 15)
    assert "16 workers > 12 server CPUs" in crowded.note
    assert scaling.plan([3], 1, 1).load == ()


def test_cpus_per_worker_gives_each_count_the_same_cpus_per_worker() -> None:
    one, four = scaling.plan(range(16), 6, 1, 1), scaling.plan(range(16), 6, 4, 2)
    assert one.server == (0,) and one.load == tuple(range(10, 16))
    assert four.server == tuple(range(8)) and "servers on CPU 0,1,2,3,4,5,6,7," in four.note
    # more than the server CPUs hold: all of them, as without the option
    assert scaling.plan(range(16), 6, 8, 2).server == tuple(range(10))


def test_verdicts_at_the_largest_count_up_to_eight() -> None:
    results = [
        Result("shoal", "json", 1, rps=1000), Result("shoal", "json", 8, rps=7000),
        Result("aiohttp-reuseport", "json", 8, rps=3000), Result("shoal", "json", 16, rps=1),
    ]  # fmt: skip
    lines = scaling.verdicts(results)
    assert lines[0].startswith(f"- shoal at 8 workers: 0.88{TIMES} linear") and "met" in lines[0]
    assert f"2.33{TIMES}" in lines[1] and "MISSED" not in lines[1]
    assert not any("CPUs shoal's servers kept busy" in line for line in lines)  # no CPU times
    busy = scaling.verdicts([
        Result("shoal", "json", 1, rps=1000, cpu_us=1900.0),
        Result("shoal", "json", 8, rps=4400, cpu_us=1900.0),
    ])  # fmt: skip
    assert busy[1].startswith("- CPUs shoal's servers kept busy")
    assert "1.9 at 1 worker, 8.4 at 8; linear at 8 needs 15.2" in busy[1]
    crowded = scaling.verdicts(results, {8: "8 workers > 6 server CPUs: servers unpinned"})
    assert crowded[-1].startswith("- At 8 workers the servers shared their CPUs with wrk")
    assert scaling.verdicts(results[:1]) == [
        "- Only one worker count measured: no scaling verdict."
    ]


def test_a_smoke_run_writes_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--workers", "1", "--duration", "1", "--warmup", "0", "--repeat", "1",
            "--peers", "shoal,granian-rsgi", "--bin", str(BIN), "--out", str(tmp_path)]  # fmt: skip
    assert scaling.main(argv) == 0
    page = (tmp_path / "scaling.md").read_text()
    assert "| shoal (granian RSGI) |" in page and "| bare granian RSGI |" in page
    assert f"| shoal {TIMES} bare granian RSGI |" in page and "1 blocking thread" in page
    saved = json.loads((tmp_path / "results.json").read_text())
    rows = {r["peer"]: r for r in saved["results"]}
    assert set(rows) == {"shoal", "granian-rsgi"}
    assert all(r["na"] is None and r["rps"] > 0 for r in rows.values()), rows
    assert page in capsys.readouterr().out
