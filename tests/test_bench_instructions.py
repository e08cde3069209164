"""`python -m bench.instructions`: callgrind dumps read per process and thread; a smoke run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import instructions
from bench.instructions import Count, differences, read_dumps, table

BIN = Path(sys.executable).parent


def _dump(folder: Path, name: str, total: int) -> None:
    (folder / name).write_text(f"# callgrind format\nversion: 1\nsummary: {total}\nfn=x\n1 2\n")


def test_dumps_are_read_by_process_and_thread(tmp_path: Path) -> None:
    _dump(tmp_path, "cg.100.1-01", 900)
    _dump(tmp_path, "cg.100.1-03", 300)
    _dump(tmp_path, "cg.101.1-01", 50)
    (tmp_path / "cg.100").write_text("")  # the final dump at exit: never written here
    (tmp_path / "server.log").write_text("summary: 7\n")  # not a dump file
    assert read_dumps(tmp_path) == {100: {1: 900, 3: 300}, 101: {1: 50}}


def test_each_peer_is_compared_with_the_first_on_its_main_thread() -> None:
    shoal = Count("shoal", "json", 1000, {1: 54_000.0, 3: 19_000.0})
    off = Count("shoal-ops-off", "json", 1000, {1: 45_000.0, 3: 18_000.0})
    bare = Count("granian-rsgi", "json", 1000, {1: 18_000.0, 3: 17_000.0})
    assert differences([shoal, off, bare]) == [
        "- json: shoal (granian RSGI) runs +9,000 main-thread instructions a request (+20%) "
        "against shoal, operations off (no health, metrics, request ids)",
        "- json: shoal (granian RSGI) runs +36,000 main-thread instructions a request (+200%) "
        "against bare granian RSGI",
    ]
    assert table([shoal])[2] == "| json | shoal (granian RSGI) | 54,000 | 19,000 | 1,000 |"
    assert shoal.others == 19_000.0


def test_a_smoke_run_counts_more_python_for_shoal_than_bare_granian(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--peers", "shoal,granian-rsgi", "--seconds", "1", "--bin", str(BIN),
            "--out", str(tmp_path)]  # fmt: skip
    assert instructions.main(argv) == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    counts = {c["peer"]: c for c in saved["counts"]}
    shoal, bare = counts["shoal"], counts["granian-rsgi"]
    assert shoal["requests"] > 0 and bare["requests"] > 0
    # the worker's main thread runs the Python: shoal's framework is more of it
    assert shoal["threads"]["1"] > bare["threads"]["1"] > 0, counts
    assert "| json | bare granian RSGI |" in capsys.readouterr().out
