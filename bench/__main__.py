"""`python -m bench`: shoal against its peers, in one run, figures into docs/.

Sets up what it needs (the peers' venv, wrk, Go), runs every selected peer on
every selected workload with wrk, prints the tables, and (unless `--quick` or
`--no-docs`) writes `docs/benchmarks.md` and its charts in `docs/img/`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .database import databases, postgres_version
from .environment import (
    BENCH_DIR,
    BIN,
    NO_DEPS,
    REQUIREMENTS,
    ensure_go_server,
    ensure_tools,
    ensure_venv,
    machine,
    say,
)
from .peers import BY_NAME as PEERS
from .peers import PEERS as ALL_PEERS
from .peers import ROOT, Peer
from .report import console, keep_sections, markdown
from .run import Result, Settings, measure, pinning
from .workloads import BY_NAME as WORKLOADS
from .workloads import WORKLOADS as ALL_WORKLOADS
from .workloads import Workload

DOCS = ROOT / "docs"
IMAGES = DOCS / "img"
RESULTS = BENCH_DIR / "results.json"


def _names(value: str, known: Sequence[str], what: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark shoal against its peers with wrk."
    )
    parser.add_argument(
        "--workloads",
        type=lambda v: _names(v, list(WORKLOADS), "workload"),
        default=list(WORKLOADS),
        help=f"comma-separated, from: {', '.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument(
        "--peers",
        type=lambda v: _names(v, list(PEERS), "peer"),
        default=list(PEERS),
        help=f"comma-separated, from: {', '.join(PEERS)} (default: all; shoal's baseline "
        "rows, shoal, shoal-auth and shoal-db, always run)",
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run (default 3)")
    parser.add_argument(
        "--connections", type=int, default=64, help="wrk connections (default 64; sync-io: 64)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of warm-up before a peer's first run"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="rounds per workload, peers interleaved; the best round counts (default 2)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1 s per run, no warm-up, no docs"
    )
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="also measure json at 2..N workers for shoal and the three fastest peers",
    )  # fmt: skip
    parser.add_argument(
        "--docs", action=argparse.BooleanOptionalAction, default=None,
        help="write docs/benchmarks.md and docs/img/ (default: yes, except with --quick)",
    )  # fmt: skip
    parser.add_argument(
        "--bin", type=Path, default=None,
        help="the venv's bin/ that runs the servers (default: the bench venv, made if missing)",
    )  # fmt: skip
    parser.add_argument(
        "--from-results", action="store_true",
        help=f"measure nothing: rewrite the docs from the last run ({RESULTS.relative_to(ROOT)})",
    )  # fmt: skip
    return parser


def _versions() -> dict[str, str]:
    versions = {}
    lines = REQUIREMENTS.read_text().splitlines() + NO_DEPS.read_text().splitlines()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            versions[name] = version
    return versions


def _top_peers(results: Sequence[Result], count: int) -> list[str]:
    ranked = sorted(
        (r for r in results
         if r.workload == "json" and r.workers == 1 and r.na is None
         and PEERS[r.peer].kind not in ("shoal", "variant") and PEERS[r.peer].scales),
        key=lambda r: -r.rps,
    )  # fmt: skip
    return [r.peer for r in ranked[:count]]


def _plots() -> dict[str, str]:
    done = subprocess.run(
        [str(BIN / "python"), "-m", "bench.plot", str(RESULTS), str(IMAGES)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        say(f"charts failed: {done.stderr[-800:]}")
        return {}
    images = {}
    for line in done.stdout.splitlines():
        key, _, name = line.partition("\t")
        images[key] = f"img/{name}"
    return images


def _measure(
    args: argparse.Namespace, peers: list[Peer], workloads: list[Workload]
) -> list[Result]:
    ensure_tools(need_go=any(not p.python for p in peers))
    bin_dir = args.bin or ensure_venv()
    if any(p.name == "go" for p in peers):
        ensure_go_server()
    settings = Settings(args.duration, args.connections, args.warmup, args.repeat)
    backends = sorted({
        p.database for p in peers
        if p.database is not None and any(p.runs(w.name) for w in workloads)
    })  # fmt: skip
    with databases(bin_dir, backends) as urls:
        results = measure(peers, workloads, settings, bin_dir, databases=urls)
    if args.workers > 1:
        json_load = [WORKLOADS["json"]]
        if "json" not in args.workloads:
            results += measure(peers, json_load, settings, bin_dir)
        scaled = [PEERS[name] for name in ["shoal", *_top_peers(results, 3)]]
        say(f"scaling 2..{args.workers} workers: {', '.join(p.name for p in scaled)}")
        for workers in range(2, args.workers + 1):
            results += measure(scaled, json_load, settings, bin_dir, workers)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.repeat = 1.0, 0.0, 1
    write_docs = args.docs if args.docs is not None else not args.quick
    peers = [p for p in ALL_PEERS if p.name in args.peers or p.kind == "shoal"]
    workloads = [w for w in ALL_WORKLOADS if w.name in args.workloads]

    if args.from_results:
        saved = json.loads(RESULTS.read_text())
        results = [Result(**r) for r in saved["results"]]
        command, facts, run_settings = saved["command"], saved["machine"], saved["settings"]
        started = saved.get("started", time.time())
        print(console(results))
        write_docs = True
    else:
        command = "python -m bench" + ("" if not argv else " " + shlex.join(argv))
        started = time.time()
        results = _measure(args, peers, workloads)
        print(console(results))
        say(f"measured in {time.time() - started:.0f}s")
        facts = machine()
        if any(p.database == "postgresql" for p in peers) and any(
            w.name in ("db", "queries", "updates", "fortunes") for w in workloads
        ):
            facts["postgresql"] = postgres_version() + " (fsync, synchronous_commit off)"
        run_settings = {
            "duration": f"{args.duration:g} s per run, after {args.warmup:g} s of warm-up",
            "rounds": f"{args.repeat} per workload, every peer once a round, the best kept",
            "connections": f"{args.connections} (sync-io: 64), one wrk thread per load CPU",
            "database workloads": (
                "one PostgreSQL for every peer (not pinned: it shares the CPUs with the server "
                "and wrk), pools of 10 connections, one worker"
            ),
            "CPU pinning (one worker)": pinning(1).note,
        }
        if args.workers > 1:
            run_settings["CPU pinning (scaling)"] = pinning(args.workers).note
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({
            "command": command, "machine": facts, "settings": run_settings, "started": started,
            "results": [r.to_dict() for r in results],
        }, indent=1))  # fmt: skip
    if write_docs:
        images = _plots()
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
        DOCS.mkdir(exist_ok=True)
        page = markdown(results, facts, command, run_settings, _versions(), images, when)
        written = DOCS / "benchmarks.md"
        if written.exists():  # what other benches and people wrote there stays
            page = keep_sections(written.read_text(), page)
        written.write_text(page)
        say(f"wrote {written.relative_to(ROOT)} and {len(images)} chart(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
