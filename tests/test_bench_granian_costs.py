"""A smoke run of `python -m bench.granian_costs` (granian's side of a response), seconds long."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import granian_costs


def test_every_variant_is_served_and_compared_with_the_baseline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bin_dir = str(Path(sys.executable).parent)  # the dev venv: granian, no peers needed
    assert granian_costs.main(["--duration", "0.3", "--repeat", "1", "--bin-dir", bin_dir]) == 0
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    ratios = {}
    for variant in granian_costs.VARIANTS:
        [line] = [line for line in lines if line.startswith(variant.label)]
        rps, ratio, cpu = line[len(variant.label) :].split()  # "n/a (why)" would not parse
        assert float(rps) > 0 and float(cpu) > 0
        ratios[variant.name] = ratio
    assert ratios["bytes-shared"] == "1.00"
