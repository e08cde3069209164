"""Measure: every peer on every workload with wrk, in interleaved rounds."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from .environment import BENCH_DIR, say
from .loadgen import LoadFailed, run_wrk, script
from .peers import Peer
from .server import PeakRSS, Server, ServerFailed, running
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
    worker_rss_mib: float = 0.0  # the largest one process's peak RSS (VmHWM) after the runs
    cpu_us: float | None = None  # server CPU time per request, in the best round
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
    repeat: int = 1


@dataclass(frozen=True)
class Pinning:
    """Which CPUs the server and wrk get; empty tuples mean no pinning."""

    server: tuple[int, ...]
    load: tuple[int, ...]
    note: str


def pinning(workers: int) -> Pinning:
    """Server and wrk on disjoint CPUs when there are enough; say so either way."""
    if os.environ.get("BENCH_NO_PIN"):  # a system of several servers may use every CPU
        return Pinning((), (), "no pinning (BENCH_NO_PIN set): servers and wrk share the CPUs")
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


def _measure_one(
    server: Server,
    workload: Workload,
    settings: Settings,
    pins: Pinning,
    result: Result,
    first_round: bool,
) -> None:
    """Load `server` with `workload` once; fold the figures into `result` (best run wins)."""
    if server.process.poll() is not None:
        result.na = f"server exited: {_first_line(server.output())}"
        return
    if first_round:
        try:
            check(workload, server.port)
        except (WrongAnswer, OSError) as exc:
            result.na = f"wrong answer: {exc}"
            return
    url = f"http://127.0.0.1:{server.port}{workload.path}"
    lua = script(BENCH_DIR / "lua", workload.pipeline)
    connections = workload.connections or settings.connections
    threads = max(1, len(pins.load))
    headers = workload.request_headers()
    try:
        if first_round and settings.warmup > 0:
            run_wrk(url, settings.warmup, connections, lua, workload.pipeline, threads, pins.load,
                    headers)  # fmt: skip
        with PeakRSS(server.process.pid) as rss:
            load = run_wrk(url, settings.duration, connections, lua, workload.pipeline,
                           threads, pins.load, headers)  # fmt: skip
    except LoadFailed as exc:
        result.na = f"load failed: {exc}"
        return
    say(
        f"{result.peer:<22} {workload.name:<20} w={result.workers} {load.rps:>10.0f} req/s  "
        f"p50 {_ms(load.p50_ms)}  p99 {_ms(load.p99_ms)}  errors {load.errors}  "
        f"cpu {rss.cpu / max(load.requests, 1) * 1e6:.1f} us/req"
    )
    result.rss_mib = max(result.rss_mib, rss.peak / 1024 / 1024)
    result.worker_rss_mib = max(result.worker_rss_mib, rss.worker / 1024 / 1024)
    result.errors += load.errors
    result.requests += load.requests
    if load.rps > result.rps:
        result.rps, result.p50_ms, result.p99_ms = load.rps, load.p50_ms, load.p99_ms
        result.cpu_us = rss.cpu / load.requests * 1e6 if load.requests else None


def _fail(
    results: dict[tuple[str, str], Result], peer: Peer, workloads: Sequence[Workload], why: str
) -> None:
    for workload in workloads:
        if peer.runs(workload.name):
            results[peer.name, workload.name].na = why


def measure(
    peers: Sequence[Peer],
    workloads: Sequence[Workload],
    settings: Settings,
    bin_dir: Path,
    workers: int = 1,
    databases: Mapping[str, str] | None = None,
    pins: Pinning | None = None,
) -> list[Result]:
    """Every peer on every workload it serves, `settings.repeat` rounds, the best kept.

    `databases` maps a backend (`postgresql`, `sqlite`) to the URL of its
    seeded database, or to `!reason` when it could not be had; a peer that
    needs one gets it as `DATABASE_URL`, or shows `n/a` with the reason.
    `pins` overrides `pinning(workers)` (the scaling script chooses its own).

    All the servers are started first and stay up, idle but for the one being
    loaded; each round loads every peer once, in turn (the order reversed on
    alternate rounds), so that whatever else the machine is doing falls on
    all of them alike rather than on whichever peer ran at that moment.
    """
    pins = pins or pinning(workers)
    databases = databases or {}
    peers = [p for p in peers if any(p.runs(w.name) for w in workloads)]
    results = {
        (p.name, w.name): Result(p.name, w.name, workers)
        for p in peers for w in workloads if p.runs(w.name)
    }  # fmt: skip
    with ExitStack() as stack:
        servers: dict[str, Server] = {}
        for peer in peers:
            env = {}
            if peer.database is not None:
                url = databases.get(peer.database, f"!no {peer.database} database was set up")
                if url.startswith("!"):
                    _fail(results, peer, workloads, url[1:])
                    continue
                env["DATABASE_URL"] = url
            try:
                servers[peer.name] = stack.enter_context(
                    running(peer, bin_dir, workers, pins.server, env=env)
                )
            except ServerFailed as exc:
                _fail(results, peer, workloads, f"server failed: {_first_line(str(exc))}")
        for workload in workloads:
            order = [p for p in peers if p.name in servers and p.runs(workload.name)]
            for round_ in range(settings.repeat):
                for peer in order if round_ % 2 == 0 else reversed(order):
                    result = results[peer.name, workload.name]
                    reason = peer.unsupported.get(workload.name)
                    if reason:
                        result.na = reason
                    elif result.na is None:
                        _measure_one(servers[peer.name], workload, settings, pins, result,
                                     first_round=round_ == 0)  # fmt: skip
    for result in results.values():
        if result.na is None and result.rps == 0:
            result.na = "no request answered"
    return list(results.values())
