"""`python -m bench.check` (`make bench-check`): has a change made shoal slower than its peers?

Runs shoal, bare granian RSGI and the fastest framework peer (recorded with
the baseline) on `json` and `params`, interleaved: every round loads each
server once per workload, the order reversed on alternate rounds, so that
whatever else the machine does falls on all three alike. shoal's ratio to
each of the two others is taken two ways, from each server's best round: by
req/s, and by CPU time per request (the server's, from `/proc`; the other's
over shoal's). Each is compared with the ratio recorded in `bench/baseline.json`
(written by `--record`), and the command exits 1 if one fell more than
`--tolerance` (5 %) under it. `--metric` says which ratios must hold: `cpu`
(the default) is the steadier on a shared machine, where req/s moves with
whatever else runs; `rps` or `both` on a quiet one. Ratios, not req/s, are
recorded: they carry from one machine to another far better than absolute
figures, though a baseline is best recorded on the machine that checks
against it.

Before you merge a change on the request path, run `make bench-check`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from .loadgen import LoadFailed, run_wrk, script
from .peers import BY_NAME as PEERS
from .peers import ROOT
from .run import pinning
from .server import Server, running, tree_cpu
from .workloads import BY_NAME as WORKLOADS
from .workloads import check

BASELINE = ROOT / "bench" / "baseline.json"
RESULTS = ROOT / ".bench" / "results.json"
CHECKED = ("json", "params")
DEFAULT_PEER = "blacksheep-granian"
"""The fastest framework peer when no full bench run says otherwise (issue 16)."""


def fastest_peer(results_path: Path = RESULTS) -> str:
    """The fastest framework peer on `json` in the last full bench run, or `DEFAULT_PEER`."""
    try:
        saved = json.loads(results_path.read_text())
    except (OSError, ValueError):
        return DEFAULT_PEER
    rows = [
        r for r in saved.get("results", [])
        if r.get("workload") == "json" and r.get("workers") == 1 and not r.get("na")
        and r.get("peer") in PEERS and PEERS[r["peer"]].kind == "framework"
    ]  # fmt: skip
    return max(rows, key=lambda r: r["rps"])["peer"] if rows else DEFAULT_PEER


METRICS = ("cpu", "rps")


def key(workload: str, other: str, metric: str = "rps") -> str:
    """The name of one checked ratio on `workload`: shoal's req/s over `other`'s (`rps`),
    or `other`'s CPU time per request over shoal's (`cpu`): higher is better for shoal."""
    return f"{workload}: shoal / {other}" + (" (CPU per request)" if metric == "cpu" else "")


def measure(
    peer: str, bin_dir: Path, rounds: int, duration: float, warmup: float, connections: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(req/s, CPU seconds per request), each per `"<workload> <server>"`, one per round."""
    names = ["shoal", "granian-rsgi", peer]
    pins = pinning(1)
    threads = max(1, len(pins.load))
    rates: dict[str, list[float]] = {}
    costs: dict[str, list[float]] = {}
    with ExitStack() as stack:
        servers: dict[str, Server] = {
            name: stack.enter_context(running(PEERS[name], bin_dir, 1, pins.server))
            for name in names
        }
        for workload in (WORKLOADS[w] for w in CHECKED):
            lua = script(ROOT / ".bench" / "lua", workload.pipeline)
            for server in servers.values():
                check(workload, server.port)
                if warmup > 0:
                    run_wrk(f"http://127.0.0.1:{server.port}{workload.path}", warmup,
                            connections, lua, 1, threads, pins.load)  # fmt: skip
        for round_ in range(rounds):
            for workload in (WORKLOADS[w] for w in CHECKED):
                lua = script(ROOT / ".bench" / "lua", workload.pipeline)
                for name in names if round_ % 2 == 0 else names[::-1]:
                    url = f"http://127.0.0.1:{servers[name].port}{workload.path}"
                    before = tree_cpu(servers[name].process.pid)
                    load = run_wrk(url, duration, connections, lua, 1, threads, pins.load)
                    used = tree_cpu(servers[name].process.pid) - before
                    if load.errors:
                        raise LoadFailed(f"{name} on {workload.name}: {load.errors} errors")
                    rates.setdefault(f"{workload.name} {name}", []).append(load.rps)
                    if load.requests and used > 0:
                        costs.setdefault(f"{workload.name} {name}", []).append(
                            used / load.requests
                        )
    return rates, costs


def ratios(
    rates: dict[str, list[float]], costs: dict[str, list[float]], peer: str
) -> dict[str, float]:
    """shoal's ratios to bare granian and `peer`, from each server's best round.

    A busy machine only ever slows a server down, so a server's best round
    (the most req/s, the least CPU per request) is the nearest to what it costs
    by itself; the rule of `python -m bench` too.
    """
    found = {}
    for workload in CHECKED:
        ours_rps = max(rates.get(f"{workload} shoal", [0.0]))
        ours_cpu = min(costs.get(f"{workload} shoal", [0.0]))
        for other in ("granian-rsgi", peer):
            theirs_rps = max(rates.get(f"{workload} {other}", [0.0]))
            theirs_cpu = min(costs.get(f"{workload} {other}", [0.0]))
            if ours_rps > 0 and theirs_rps > 0:
                found[key(workload, other)] = ours_rps / theirs_rps
            if ours_cpu > 0 and theirs_cpu > 0:
                found[key(workload, other, "cpu")] = theirs_cpu / ours_cpu
    return found


def compare(
    recorded: dict[str, float], measured: dict[str, float], tolerance: float
) -> list[str]:
    """One line per ratio that fell more than `tolerance` under its recorded value."""
    drops = []
    for name, before in recorded.items():
        now = measured.get(name)
        if now is None:
            drops.append(f"{name}: not measured (recorded {before:.3f})")
        elif now < before * (1 - tolerance):
            drops.append(
                f"{name}: {now:.3f}, {(1 - now / before) * 100:.1f} % under the recorded "
                f"{before:.3f} (tolerance {tolerance * 100:.0f} %)"
            )
    return drops


def guarded(recorded: dict[str, float], metric: str) -> dict[str, float]:
    """The recorded ratios that must hold under `metric` (`cpu`, `rps` or `both`)."""
    return {
        name: value for name, value in recorded.items()
        if metric == "both" or name.endswith("(CPU per request)") == (metric == "cpu")
    }  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true",
                        help="measure and write the baseline instead of checking against it")
    parser.add_argument("--baseline", type=Path, default=BASELINE,
                        help="the recorded ratios (default: bench/baseline.json)")
    parser.add_argument("--peer", default=None,
                        help="the framework peer (default: the baseline's; with --record, the "
                        f"fastest in .bench/results.json, else {DEFAULT_PEER})")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each server's best kept (5)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run (3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds (1)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="largest drop allowed, as a fraction (0.05)")
    parser.add_argument("--metric", choices=(*METRICS, "both"), default="cpu",
                        help="which ratios must hold: CPU time per request (cpu, the default: "
                        "the steadier on a shared machine), req/s (rps: for a quiet machine), "
                        "or both")
    parser.add_argument("--bin", type=Path, default=None,
                        help="the venv's bin/ that runs the servers (default: the bench venv)")
    return parser  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .environment import ensure_tools, ensure_venv, machine, say

    recorded: dict[str, object] = {}
    if not args.record:
        try:
            recorded = json.loads(args.baseline.read_text())
        except OSError:
            say(f"no baseline at {args.baseline}: record one with `make bench-check-record`")
            return 2
    peer = args.peer or str(recorded.get("peer") or fastest_peer())
    ensure_tools(need_go=False)
    bin_dir = args.bin or ensure_venv()
    say(f"bench-check: shoal, granian-rsgi and {peer} on {', '.join(CHECKED)}, "
        f"{args.rounds} round(s) of {args.duration:g} s; load average "
        f"{os.getloadavg()[0]:.1f} (other work on the machine moves the figures)")  # fmt: skip
    rates, costs = measure(peer, bin_dir, args.rounds, args.duration, args.warmup,
                           args.connections)  # fmt: skip
    found = ratios(rates, costs, peer)
    stored = recorded.get("ratios")
    before_ratios: dict[str, float] = stored if isinstance(stored, dict) else {}
    for name, values in rates.items():
        cpu = ", ".join(f"{v * 1e6:.1f}" for v in costs.get(name, []))
        print(f"{name:<28} req/s {', '.join(f'{v:,.0f}' for v in values)};  "
              f"CPU µs/req {cpu}")  # fmt: skip
    for name, value in found.items():
        before = before_ratios.get(name)
        was = f"  (recorded {before:.3f})" if isinstance(before, float) else ""
        print(f"{name:<50} {value:.3f}{was}")
    if args.record:
        facts = machine()
        args.baseline.write_text(json.dumps({
            "peer": peer,
            "ratios": {name: round(value, 4) for name, value in found.items()},
            "recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{facts['cores']} cores, {facts['cpu']}, Python {facts['python']}; "
                       f"load average {os.getloadavg()[0]:.1f} at the end",
            "settings": f"{args.rounds} rounds of {args.duration:g} s, {args.connections} "
                        "connections, each server's best round",
        }, indent=1) + "\n")  # fmt: skip
        say(f"recorded {args.baseline}")
        return 0
    drops = compare(guarded(before_ratios, args.metric), found, args.tolerance)
    if drops:
        print("bench-check FAILED: a ratio fell under the recorded one:", *drops, sep="\n  ")
        return 1
    print(f"bench-check passed: no ratio fell more than {args.tolerance * 100:.0f} % under "
          f"{args.baseline.name}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
