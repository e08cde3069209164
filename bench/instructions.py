"""Instructions per request in a real server, thread by thread: costs without the noise.

`python -m bench.instructions` starts each peer with one worker under
valgrind's callgrind, loads it with wrk, and counts the instructions each
thread of the worker ran while it served: the counters are zeroed after a
warm-up and read when the load ends, so start-up is not counted. Divided by
the requests served, that is a cost per request which repeats within 1-2 %
on any machine, busy or not (about 5 % with a database, whose pool's
contention changes the work), where req/s on this 2-core VM moves by 5-10 %
from run to run.

A granian worker has two kinds of threads: its main thread runs the event
loop and every line of Python (the app, granian's crossings into Python,
asyncio); its Rust runtime thread parses HTTP and does the socket I/O beside
it. What a change to shoal's request path adds or saves shows on the main
thread, to the instruction. The counts are not times: callgrind does not
count the kernel's work (the socket I/O, the wake-ups) and an instruction of
one kind costs more than another, so compare a peer with itself, or shoal
with a variant, rather than read a ratio of counts as a ratio of req/s.

Under valgrind everything runs about 50 times slower, so work done on a
timer (the watchdog's beat, a snapshot a second) weighs about 50 times more
per request than it does at full speed; it is small on the main thread
and is most of the watchdog thread's count.

    python -m bench.instructions [--workloads json] [--peers shoal,shoal-ops-off,granian-rsgi]
        [--seconds 10] [--bin DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .database import databases
from .loadgen import run_wrk, script
from .peers import BY_NAME as PEERS
from .peers import ROOT, Peer
from .server import running, session_pids
from .workloads import BY_NAME as WORKLOADS

OUT = ROOT / ".bench" / "instructions"
DEFAULT_PEERS = "shoal,shoal-ops-off,shoal-access-log,granian-rsgi"
_FILE = re.compile(r"cg\.(\d+)\.\d+-(\d+)$")


@dataclass(frozen=True)
class Count:
    """One peer on one workload: instructions per request by thread of its worker."""

    peer: str
    workload: str
    requests: int
    threads: dict[int, float]  # thread number (1 is the main thread) -> instructions/request

    @property
    def main(self) -> float:
        return self.threads.get(1, 0.0)

    @property
    def others(self) -> float:
        return sum(count for thread, count in self.threads.items() if thread != 1)


def under_callgrind(peer: Peer, out_dir: Path) -> Peer:
    """`peer` with its server command run under callgrind, one file per process and thread."""
    wrapper = [
        "valgrind", "--tool=callgrind", "--trace-children=yes", "--separate-threads=yes",
        f"--callgrind-out-file={out_dir}/cg.%p", "--dump-line=no",
    ]  # fmt: skip

    def command(bin_dir: Path, port: int, workers: int) -> list[str]:
        return [*wrapper, *peer.command(bin_dir, port, workers)]

    return dataclasses.replace(peer, command=command)


def read_dumps(out_dir: Path) -> dict[int, dict[int, int]]:
    """Instructions by process id and thread number, from the dump files in `out_dir`."""
    found: dict[int, dict[int, int]] = {}
    for path in out_dir.iterdir():
        match = _FILE.search(path.name)
        if match is None:
            continue
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                pid, thread = int(match[1]), int(match[2])
                found.setdefault(pid, {})[thread] = int(line.split()[1])
                break
    return found


def _control(option: str, pids: Sequence[int]) -> None:
    for pid in pids:
        subprocess.run(["callgrind_control", option, str(pid)], capture_output=True, check=False)


def measure(
    peer: Peer,
    workload: str,
    bin_dir: Path,
    seconds: float,
    connections: int,
    work: Path,
    env: dict[str, str] | None = None,
) -> Count:
    """Count `peer`'s instructions per request on `workload` over `seconds` of wrk load.

    `env` adds to the server's environment (a database's `DATABASE_URL`).
    """
    out_dir = work / f"{peer.name}-{workload}"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    lua = script(work, 1)
    path = WORKLOADS[workload].path
    wrapped = under_callgrind(peer, out_dir)
    with running(wrapped, bin_dir, timeout=300, log_dir=work, env=env) as server:
        url = f"http://127.0.0.1:{server.port}{path}"
        run_wrk(url, 2, connections, lua)  # warm-up: imports, caches, specialised bytecode
        pids = session_pids(server.process.pid)
        _control("-z", pids)
        load = run_wrk(url, seconds, connections, lua)
        _control("-d", pids)
        deadline = time.monotonic() + 30
        while not read_dumps(out_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
    if load.errors or not load.requests:
        raise SystemExit(f"{peer.name} {workload}: {load.requests} requests, {load.errors} errors")
    dumps = read_dumps(out_dir)
    if not dumps:
        raise SystemExit(f"{peer.name} {workload}: callgrind wrote no dump into {out_dir}")
    worker = max(dumps.values(), key=lambda threads: sum(threads.values()))
    per_request = {thread: count / load.requests for thread, count in sorted(worker.items())}
    return Count(peer.name, workload, load.requests, per_request)


def table(counts: Sequence[Count]) -> list[str]:
    """The markdown table: instructions per request, main thread and the others."""
    lines = [
        "| workload | peer | main thread (Python) | other threads | requests counted |",
        "|---|---|---:|---:|---:|",
    ]
    for c in counts:
        lines.append(
            f"| {c.workload} | {PEERS[c.peer].label} | {c.main:,.0f} | {c.others:,.0f} | "
            f"{c.requests:,} |"
        )
    return lines


def differences(counts: Sequence[Count]) -> list[str]:
    """Each peer's main-thread count against the first peer's, per workload.

    Differences, not throughput ratios: callgrind counts neither the kernel's
    work (socket I/O, wake-ups) nor how fast each instruction runs, so a ratio
    of counts is not a ratio of req/s (bare granian's main thread runs 0.39x
    shoal's instructions and serves 1.25-1.45x its requests).
    """
    lines = []
    for workload in dict.fromkeys(c.workload for c in counts):
        rows = [c for c in counts if c.workload == workload]
        first = rows[0]
        for other in rows[1:]:
            if first.main and other.main:
                lines.append(
                    f"- {workload}: {PEERS[first.peer].label} runs "
                    f"{first.main - other.main:+,.0f} main-thread instructions a request "
                    f"({first.main / other.main - 1:+.0%}) against {PEERS[other.peer].label}"
                )
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workloads", default="json", help="comma-separated (default json)")
    parser.add_argument("--peers", default=DEFAULT_PEERS,
                        help=f"comma-separated; the first is compared with each other (default "
                             f"{DEFAULT_PEERS})")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0, help="load per peer (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--bin", type=Path, default=None,
                        help="the servers' bin/ (default: the bench venv's)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {OUT})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from .environment import ensure_apt, ensure_tools, ensure_venv, machine, say

    ensure_tools(need_go=False)
    ensure_apt(*([] if shutil.which("valgrind") else ["valgrind"]))
    bin_dir = args.bin or ensure_venv()
    peers = [PEERS[name] for name in args.peers.split(",")]
    backends = sorted({peer.database for peer in peers if peer.database is not None})
    counts = []
    with databases(bin_dir, backends) as urls:
        for workload in args.workloads.split(","):
            for peer in peers:
                say(f"instructions: {peer.name} on {workload} under callgrind")
                env = {"DATABASE_URL": urls[peer.database]} if peer.database else None
                counts.append(measure(peer, workload, bin_dir, args.seconds, args.connections,
                                      args.out, env))  # fmt: skip
    facts = machine()
    command = "python -m bench.instructions" + ("" if not argv else " " + " ".join(argv))
    page = [
        f"Instructions per request (callgrind), `{command}`, Python {facts['python']}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}:",
        "",
        *table(counts),
        "",
        *differences(counts),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({
        "command": command, "machine": facts,
        "counts": [dataclasses.asdict(c) for c in counts],
    }, indent=1))  # fmt: skip
    (args.out / "instructions.md").write_text("\n".join(page) + "\n")
    print("\n".join(page))
    return 0


if __name__ == "__main__":
    sys.exit(main())
