"""A smoke run of `python -m bench.client` (the client libraries' benchmark), a second long."""

from __future__ import annotations

import pytest

from bench import client


def test_the_client_benchmark_runs_and_reports_every_contender(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        client.main(
            ["--duration", "0.3", "--rounds", "1", "--concurrency", "2", "--overhead-calls", "640"]
        )
        == 0
    )
    out = capsys.readouterr().out
    for row in ("| httpx |", "| aiohttp |", "| shoal.client (aiohttp) |"):
        assert row in out
    assert "2 concurrent task(s)" in out and "own CPU per call" in out
