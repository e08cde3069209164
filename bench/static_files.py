"""Static files per second: granian's native handler against shoal's Python path.

`python -m bench.static_files` (with a Python that has shoal, and wrk on the
PATH) serves one directory twice from one `shoal run` worker
(bench/apps/shoal_static.py: `/native` with `native=True`, `/python` without)
and loads one file at a time with wrk, the two paths interleaved round by
round, and prints files per second (the median over the rounds) and the
ratio native / Python, per file size. The results are in
docs/benchmarks.md, "Static files: native and Python".
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.loadgen import run_wrk, script

SIZES = {"1 KiB": 1024, "64 KiB": 64 * 1024, "1 MiB": 1024 * 1024}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(directory: Path, port: int) -> subprocess.Popen[bytes]:
    shoal = Path(sys.executable).parent / "shoal"
    process = subprocess.Popen(
        [str(shoal), "run", "bench.apps.shoal_static:app", "--port", str(port),
         "--log-level", "warning"],
        env={**os.environ, "SHOAL_BENCH_STATIC_DIR": str(directory)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("shoal run exited before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    raise RuntimeError("shoal run did not listen within 30 s")


def measure(seconds: float, rounds: int, connections: int) -> dict[str, dict[str, float]]:
    """Files per second, median over `rounds`, per size and path ("native", "python")."""
    results: dict[str, dict[str, list[float]]] = {
        size: {"native": [], "python": []} for size in SIZES
    }
    with tempfile.TemporaryDirectory(prefix="shoal-bench-static-") as folder:
        root = Path(folder) / "files"
        root.mkdir()
        for size, length in SIZES.items():
            (root / f"{size.replace(' ', '')}.bin").write_bytes(os.urandom(length))
        lua = script(Path(folder) / "lua", 1)
        port = _free_port()
        process = _serve(root, port)
        try:
            for _ in range(rounds):
                for size in SIZES:
                    for path in ("native", "python"):
                        url = f"http://127.0.0.1:{port}/{path}/{size.replace(' ', '')}.bin"
                        load = run_wrk(url, seconds, connections, lua)
                        if load.errors:
                            raise RuntimeError(f"{url}: {load.errors} errors under load")
                        results[size][path].append(load.rps)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
    return {
        size: {path: statistics.median(rps) for path, rps in paths.items()}
        for size, paths in results.items()
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.static_files")
    parser.add_argument("--seconds", type=float, default=5.0, help="each wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    args = parser.parse_args(argv)
    medians = measure(args.seconds, args.rounds, args.connections)
    print("| file | native files/s | Python files/s | native / Python |")
    print("|---|---:|---:|---:|")
    for size, paths in medians.items():
        native, python = paths["native"], paths["python"]
        print(f"| {size} | {native:,.0f} | {python:,.0f} | {native / python:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
