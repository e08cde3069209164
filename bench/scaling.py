"""`python -m bench.scaling`: json throughput by worker count, one command, unattended.

Runs shoal (`shoal run --workers N`), aiohttp with SO_REUSEPORT workers,
Starlette on granian (ASGI) and bare granian RSGI at N = 1, 2, 4, 8, 16
workers (those that fit the machine's server CPUs, or `--workers`), loading
each with wrk on CPUs of its own, the peers interleaved in rounds as in
`python -m bench`. Writes under `--out` (default `.bench/scaling/`):
`results.json`, `scaling.md` (the table, the settings, the verdicts against
issue 16's goals) and `scaling.png` (the chart, when matplotlib is at hand:
the bench venv has it).

The load generator must not starve: it gets `--load-cpus` CPUs of its own
(default a quarter of them, at least one), the servers the rest. A worker
count larger than the servers' CPUs is still run, unpinned, and marked so: its
figure measures contention, not scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .peers import BY_NAME as PEERS
from .peers import ROOT, python_path
from .run import Pinning, Result, Settings, measure
from .workloads import BY_NAME as WORKLOADS

COUNTS = (1, 2, 4, 8, 16)
SCALING_PEERS = ("shoal", "aiohttp-reuseport", "starlette-granian", "granian-rsgi")
OUT = ROOT / ".bench" / "scaling"
LINEAR_GOAL = 0.8  # issue 16: >= 0.8x linear to 8 workers
AIOHTTP_GOAL = 2.0  # issue 16: >= 2x aiohttp at 8 workers
TIMES = "\u00d7"  # the multiplication sign, for ratios

GRANIAN_THREADS = (
    "granian's own threads, per worker, as `shoal run`, the Starlette and the bare granian "
    "rows start it (none of them changes granian's defaults): 1 runtime thread "
    "(`--runtime-threads 1`, so `--runtime-mode auto` picks the single-threaded runtime), "
    "1 blocking thread (`--blocking-threads 1`: the thread that holds the GIL and runs the "
    "Python app; granian refuses more than 1 for RSGI and ASGI), and up to 512 idle-reaped "
    "runtime I/O blocking threads (`--runtime-blocking-threads`, used for file I/O only). "
    "Why: one worker runs Python on one thread at a time (the GIL), so more runtime threads "
    "in a worker only add hand-offs; throughput across cores comes from more worker "
    "processes, which is what this table measures."
)


def split_cpus(cpus: Sequence[int], load_cpus: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(server CPUs, load CPUs): the last `load_cpus` CPUs go to wrk."""
    cpus = sorted(cpus)
    if len(cpus) < 2:
        return (), ()
    load_cpus = min(max(1, load_cpus), len(cpus) - 1)
    return tuple(cpus[:-load_cpus]), tuple(cpus[-load_cpus:])


def plan(cpus: Sequence[int], load_cpus: int, workers: int, per_worker: int = 0) -> Pinning:
    """Where the servers at `workers` and wrk run, and the note that says so.

    `per_worker` > 0 gives the servers `workers * per_worker` CPUs, no more: each row then
    has the same CPUs per worker, which is what "linear in cores" means. 0 gives every
    count all the server CPUs (a granian worker uses up to about two: its Rust I/O thread
    and the Python thread)."""
    server, load = split_cpus(cpus, load_cpus)
    if not load:
        return Pinning((), (), "one CPU: servers and wrk share it")
    if per_worker and workers * per_worker <= len(server):
        server = server[: workers * per_worker]
    note = f"servers on CPU {_cpus(server)}, wrk on CPU {_cpus(load)} ({len(load)} thread(s))"
    if workers > len(server):
        return Pinning((), load, f"{workers} workers > {len(server)} server CPUs: servers "
                       f"unpinned (they share every CPU with wrk), wrk on CPU {_cpus(load)}")
    return Pinning(server, load, note)


def _cpus(cpus: Sequence[int]) -> str:
    return ",".join(map(str, cpus))


def default_counts(cpus: Sequence[int], load_cpus: int) -> list[int]:
    """The worker counts of `COUNTS` that fit the server CPUs (at least 1)."""
    server, _ = split_cpus(cpus, load_cpus)
    fit = [n for n in COUNTS if n <= max(1, len(server))]
    return fit or [1]


def table(results: Sequence[Result], notes: dict[int, str]) -> list[str]:
    """The markdown table: req/s by workers (x linear, the servers' CPU time per request:
    steadier than req/s on a busy machine), and shoal's ratio to each peer."""
    counts = sorted({r.workers for r in results})
    by_peer: dict[str, dict[int, Result]] = {}
    for r in results:
        by_peer.setdefault(r.peer, {})[r.workers] = r
    head = ["peer", *(f"{n} worker{'s' * (n > 1)}" for n in counts)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(counts)]
    for name, cells in by_peer.items():
        one = cells.get(1)
        row = [PEERS[name].label if name in PEERS else name]
        for n in counts:
            cell = cells.get(n)
            if cell is None:
                row.append("")
            elif cell.na:
                row.append(f"n/a ({cell.na})")
            else:
                extra = [f"{cell.rps / (n * one.rps):.2f}{TIMES} linear"] if (
                    one and not one.na and one.rps and n > 1) else []  # fmt: skip
                if cell.cpu_us:
                    extra.append(f"{cell.cpu_us:.0f} µs CPU/req")
                row.append(f"{cell.rps:,.0f}" + (f" ({', '.join(extra)})" if extra else ""))
        lines.append("| " + " | ".join(row) + " |")
    shoal = by_peer.get("shoal", {})
    for name, cells in by_peer.items():
        if name == "shoal":
            continue
        row = [f"shoal {TIMES} {PEERS[name].label if name in PEERS else name}"]
        for n in counts:
            ours, theirs = shoal.get(n), cells.get(n)
            ok = ours and theirs and not ours.na and not theirs.na and theirs.rps
            row.append(f"{ours.rps / theirs.rps:.2f}" if ok and ours and theirs else "")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("| pinning | " + " | ".join(notes.get(n, "") for n in counts) + " |")
    return lines



def verdicts(results: Sequence[Result], notes: dict[int, str] | None = None) -> list[str]:
    """Issue 16's scaling goals, at the largest count up to 8 that was measured."""
    cells = {(r.peer, r.workers): r for r in results if not r.na and r.rps}
    counts = sorted({n for _, n in cells if n <= 8})
    if not counts or counts[-1] == 1:
        return ["- Only one worker count measured: no scaling verdict."]
    top = counts[-1]
    lines = []
    one, at = cells.get(("shoal", 1)), cells.get(("shoal", top))
    if one and at:
        linear = at.rps / (top * one.rps)
        verdict = "met" if linear >= LINEAR_GOAL else "**MISSED**"
        lines.append(f"- shoal at {top} workers: {linear:.2f}{TIMES} linear (goal "
                     f">= {LINEAR_GOAL}{TIMES} to 8 workers): {verdict}.")  # fmt: skip
    if one and at and one.cpu_us and at.cpu_us:
        busy_one, busy_at = one.rps * one.cpu_us / 1e6, at.rps * at.cpu_us / 1e6
        lines.append(f"- CPUs shoal's servers kept busy (req/s {TIMES} CPU per request): "
                     f"{busy_one:.1f} at 1 worker, {busy_at:.1f} at {top}; linear at {top} "
                     f"needs {top * busy_one:.1f}. A granian worker uses up to two (its Rust "
                     "runtime thread beside the Python thread): where the servers have fewer "
                     "CPUs than that, the CPUs bound the figure (`--cpus-per-worker 1` "
                     "measures per core).")  # fmt: skip
    peer = cells.get(("aiohttp-reuseport", top))
    if at and peer:
        ratio = at.rps / peer.rps
        verdict = "met" if ratio >= AIOHTTP_GOAL else "**MISSED**"
        lines.append(f"- shoal vs aiohttp (SO_REUSEPORT) at {top} workers: {ratio:.2f}{TIMES} "
                     f"(goal >= {AIOHTTP_GOAL}{TIMES} at 8 workers): {verdict}.")  # fmt: skip
    if top < 8:
        lines.append(f"- The goals are set at 8 workers; this machine measured up to {top}.")
    if "unpinned" in (notes or {}).get(top, ""):
        lines.append(f"- At {top} workers the servers shared their CPUs with wrk: the figures "
                     "measure contention, not scaling.")  # fmt: skip
    return lines


def chart(results_path: Path, png: Path, python: Path) -> str | None:
    """Draw the chart with `python` (which must have matplotlib); the reason if it could not."""
    code = (
        "import json, sys; from pathlib import Path; from bench.plot import scaling; "
        "scaling(json.loads(Path(sys.argv[1]).read_text())['results'], Path(sys.argv[2]))"
    )
    done = subprocess.run(
        [str(python), "-c", code, str(results_path), str(png)], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": python_path()}, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit {done.returncode}"
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scaling",
        description="json req/s by worker count: shoal, aiohttp (SO_REUSEPORT), Starlette on "
        "granian, bare granian; writes a table and a chart.",
    )
    parser.add_argument("--workers", type=lambda v: [int(n) for n in v.split(",")],
                        default=None, help="comma-separated worker counts (default: those of "
                        "1,2,4,8,16 that fit the server CPUs)")  # fmt: skip
    parser.add_argument("--load-cpus", type=int, default=None,
                        help="CPUs for wrk (default: a quarter of them, at least 1)")
    parser.add_argument("--peers", default=",".join(SCALING_PEERS),
                        help=f"comma-separated (default: {','.join(SCALING_PEERS)})")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds (1)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds, best kept (2)")
    parser.add_argument("--connections", type=int, default=64,
                        help="wrk connections per worker (64)")
    parser.add_argument("--cpus-per-worker", type=int, default=0,
                        help="pin the servers at N workers to N x this many CPUs (default 0: "
                        "every count gets all the server CPUs)")
    parser.add_argument("--out", type=Path, default=OUT, help="results folder")
    parser.add_argument("--docs", action="store_true",
                        help="also write docs/scaling.md and docs/img/bench-scaling-cores.png")
    parser.add_argument("--bin", type=Path, default=None,
                        help="the venv's bin/ that runs the servers (default: the bench venv)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from .environment import ensure_tools, ensure_venv, machine, say

    ensure_tools(need_go=False)
    bin_dir = args.bin or ensure_venv()
    cpus = sorted(os.sched_getaffinity(0))
    load_cpus = args.load_cpus or max(1, len(cpus) // 4)
    counts = args.workers or default_counts(cpus, load_cpus)
    peers = [PEERS[name] for name in args.peers.split(",")]
    started = time.time()
    load_average = os.getloadavg()[0]
    results: list[Result] = []
    notes: dict[int, str] = {}
    for n in counts:
        pins = plan(cpus, load_cpus, n, args.cpus_per_worker)
        notes[n] = pins.note
        say(f"scaling: {n} worker(s), {pins.note}")
        settings = Settings(args.duration, args.connections * n, args.warmup, args.repeat)
        results += measure(peers, [WORKLOADS["json"]], settings, bin_dir, n, pins=pins)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.scaling" + ("" if not argv else " " + " ".join(argv))
    facts = machine()
    results_path = args.out / "results.json"
    results_path.write_text(json.dumps({
        "command": command, "machine": facts, "started": started, "notes": notes,
        "results": [r.to_dict() for r in results],
    }, indent=1))  # fmt: skip
    png = args.out / "scaling.png"
    why = chart(results_path, png, bin_dir / "python")
    page = [
        "# Scaling across cores (json)",
        "",
        f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} with `{command}`, "
        f"{facts['cores']} cores ({facts['cpu']}), Python {facts['python']}; load average "
        f"{load_average:.1f} at the start (above 0 means something else was running).",
        "",
        f"- {args.duration:g} s per run after {args.warmup:g} s of warm-up, {args.repeat} "
        "rounds (peers interleaved, the best kept), "
        f"{args.connections} wrk connections per worker.",
        f"- wrk gets {len(split_cpus(cpus, load_cpus)[1]) or 'no'} CPU(s) of its own and "
        "as many threads; the servers get the rest (see the pinning row)"
        + (f", {args.cpus_per_worker} per worker." if args.cpus_per_worker else "."),
        f"- {GRANIAN_THREADS}",
        "",
        *table(results, notes),
        "",
        *verdicts(results, notes),
        "",
        "![json: requests per second by workers](scaling.png)" if why is None
        else f"No chart: {why}",
        "",
    ]
    (args.out / "scaling.md").write_text("\n".join(page))
    print("\n".join(page))
    if args.docs:
        image = ROOT / "docs" / "img" / "bench-scaling-cores.png"
        text = "\n".join(page).replace("](scaling.png)", f"](img/{image.name})")
        intro = ("This page is written by `make bench-scaling BENCH_SCALING_ARGS=--docs` "
                 "(`python -m bench.scaling --docs`); do not edit it by hand.\n")  # fmt: skip
        text = text.replace("\n\n", "\n\n" + intro + "\n", 1)
        (ROOT / "docs" / "scaling.md").write_text(text)
        if why is None:
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(png.read_bytes())
    say(f"wrote {args.out}/scaling.md" + ("" if why else " and scaling.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
