"""What granian's side of a response costs, and which event loop it should run.

`python -m bench.granian_costs [--duration S] [--repeat N]` serves the bare
RSGI `json` variants of `bench/apps/granian_variants.py` (a shared header
list, a list per response, two headers, a `str` body), and the shared-list
app under granian's `--loop asyncio` and `--loop uvloop`, each with one
worker, and loads them in interleaved rounds with wrk, like `python -m
bench`. It prints req/s, CPU µs a request and the ratio to the baseline: the
answers to issue 16's "measure what `response_bytes` vs `response_str` and
header tuples cost, whether a pre-built header list helps, whether uvloop vs
asyncio matters". The figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .environment import BIN, ensure_tools, ensure_venv, say
from .peers import Peer, granian
from .run import Result, Settings, measure
from .workloads import BY_NAME as WORKLOADS

_APP = "bench.apps.granian_variants"


VARIANTS: list[Peer] = [
    Peer("bytes-shared", "response_bytes, one header list (baseline)", "ceiling",
         granian("rsgi", f"{_APP}:bytes_shared"), workloads=("json",)),
    Peer("bytes-fresh", "response_bytes, a header list per response", "ceiling",
         granian("rsgi", f"{_APP}:bytes_fresh"), workloads=("json",)),
    Peer("two-headers", "response_bytes, two headers (+ x-request-id)", "ceiling",
         granian("rsgi", f"{_APP}:bytes_two_headers"), workloads=("json",)),
    Peer("str-body", "response_str (a str body)", "ceiling",
         granian("rsgi", f"{_APP}:str_body"), workloads=("json",)),
    Peer("loop-asyncio", "baseline, --loop asyncio", "ceiling",
         granian("rsgi", f"{_APP}:bytes_shared"), workloads=("json",),
         env={"GRANIAN_LOOP": "asyncio"}),
    Peer("loop-uvloop", "baseline, --loop uvloop", "ceiling",
         granian("rsgi", f"{_APP}:bytes_shared"), workloads=("json",),
         env={"GRANIAN_LOOP": "uvloop"}),
]  # fmt: skip


def table(results: Sequence[Result]) -> str:
    """The results as text, each with its ratio to the baseline's req/s and CPU."""
    base = next((r for r in results if r.peer == "bytes-shared"), None)
    labels = {p.name: p.label for p in VARIANTS}
    lines = [f"{'variant':<48} {'req/s':>8} {'ratio':>6} {'CPU µs/req':>11}"]
    for result in results:
        if result.na is not None:
            lines.append(f"{labels[result.peer]:<48} n/a ({result.na})")
            continue
        ratio = result.rps / base.rps if base is not None and base.rps else float("nan")
        cpu = f"{result.cpu_us:.1f}" if result.cpu_us is not None else "-"
        lines.append(f"{labels[result.peer]:<48} {result.rps:>8.0f} {ratio:>6.2f} {cpu:>11}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.granian_costs", description=__doc__)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (best kept)")
    parser.add_argument("--bin-dir", default=None, help="a venv's bin/ (default: the bench venv)")
    args = parser.parse_args(argv)
    ensure_tools(need_go=False)
    bin_dir = BIN if args.bin_dir is None else Path(args.bin_dir)
    if args.bin_dir is None:
        ensure_venv()
    settings = Settings(duration=args.duration, connections=64, warmup=1.0, repeat=args.repeat)
    results = measure(VARIANTS, [WORKLOADS["json"]], settings, bin_dir)
    say("\n" + table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
