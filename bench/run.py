"""Measure: each peer in turn, each workload on it, one wrk run per pair."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .environment import BENCH_DIR, say
from .loadgen import LoadFailed, run_wrk, script
from .peers import Peer
from .server import PeakRSS, ServerFailed, running
from .workloads import Workload, WrongAnswer, check


@dataclass
class Result:
    """One cell of the results: a peer on a workload at a worker count (or why not)."""

    peer: str
    workload: str
    workers: int
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    rss_mib: float = 0.0
    errors: int = 0
    requests: int = 0
    na: str | None = None  # the reason there is no figure

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Settings:
    """How long and how hard each run loads a server."""

    duration: float
    connections: int
    warmup: float


@dataclass(frozen=True)
class Pinning:
    """Which CPUs the server and wrk get; empty tuples mean no pinning."""

    server: tuple[int, ...]
    load: tuple[int, ...]
    note: str


def pinning(workers: int) -> Pinning:
    """Server and wrk on disjoint CPUs when there are enough; say so either way."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return Pinning((), (), "one CPU: server and wrk share it")
    load_count = max(1, len(cpus) // 4)
    server, load = tuple(cpus[:-load_count]), tuple(cpus[-load_count:])
    if workers > len(server):
        return Pinning((), (), f"{workers} workers > {len(server)} server CPUs: no pinning")
    return Pinning(server, load, f"server on CPU {_cpus(server)}, wrk on CPU {_cpus(load)}")


def _cpus(cpus: Sequence[int]) -> str:
    return ",".join(map(str, cpus))


def _ms(value: float | None) -> str:
    return "   -   " if value is None else f"{value:7.2f} ms"


def _first_line(text: str, limit: int = 160) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else "no output"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def measure_peer(
    peer: Peer,
    workloads: Sequence[Workload],
    settings: Settings,
    bin_dir: Path,
    workers: int = 1,
) -> list[Result]:
    """Start `peer` once and run every workload against it, in order."""
    results = {w.name: Result(peer.name, w.name, workers) for w in workloads}
    todo = []
    for workload in workloads:
        reason = peer.unsupported.get(workload.name)
        if reason:
            results[workload.name].na = reason
        else:
            todo.append(workload)
    if not todo:
        return list(results.values())
    pins = pinning(workers)
    scripts = BENCH_DIR / "lua"
    try:
        with running(peer, bin_dir, workers, pins.server) as server:
            for workload in todo:
                result = results[workload.name]
                if server.process.poll() is not None:
                    result.na = f"server exited: {_first_line(server.output())}"
                    continue
                try:
                    check(workload, server.port)
                except (WrongAnswer, OSError) as exc:
                    result.na = f"wrong answer: {exc}"
                    continue
                url = f"http://127.0.0.1:{server.port}{workload.path}"
                lua = script(scripts, workload.pipeline)
                connections = workload.connections or settings.connections
                threads = max(1, len(pins.load))
                try:
                    if settings.warmup > 0:
                        run_wrk(url, settings.warmup, connections, lua, workload.pipeline,
                                threads, pins.load)  # fmt: skip
                    with PeakRSS(server.process.pid) as rss:
                        load = run_wrk(url, settings.duration, connections, lua,
                                       workload.pipeline, threads, pins.load)  # fmt: skip
                except LoadFailed as exc:
                    result.na = f"load failed: {exc}"
                    continue
                result.rps = load.rps
                result.p50_ms = load.p50_ms
                result.p99_ms = load.p99_ms
                result.errors = load.errors
                result.requests = load.requests
                result.rss_mib = rss.peak / 1024 / 1024
                say(
                    f"{peer.name:<18} {workload.name:<20} w={workers} {load.rps:>10.0f} req/s  "
                    f"p50 {_ms(load.p50_ms)}  p99 {_ms(load.p99_ms)}  errors {load.errors}"
                )
    except ServerFailed as exc:
        for workload in todo:
            if results[workload.name].na is None and not results[workload.name].requests:
                results[workload.name].na = f"server failed: {_first_line(str(exc))}"
    return list(results.values())
