"""Drive wrk and read its figures.

wrk runs a small Lua script whose `done` hook prints one JSON line with the
request count, error counts and latency percentiles, so nothing depends on
parsing wrk's human-readable report. With `pipeline` > 1 the script sends
that many requests in one write (HTTP/1.1 pipelining, TechEmpower style).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MARK = "BENCH_RESULT "

_REPORT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

_PIPELINE = r"""
init = function(args)
  local depth = tonumber(args[1]) or 1
  local batch = {}
  for i = 1, depth do batch[i] = wrk.format() end
  pipelined = table.concat(batch)
end

request = function()
  return pipelined
end
"""


class LoadFailed(Exception):
    """wrk failed or printed no result line."""


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    requests: int
    seconds: float
    p50_ms: float | None  # None with pipelining: wrk records no per-request latency then
    p99_ms: float | None
    socket_errors: int
    status_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors


def script(directory: Path, pipeline: int) -> Path:
    """Write (once) the Lua script for `pipeline` depth into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ("pipeline.lua" if pipeline > 1 else "report.lua")
    text = (_PIPELINE if pipeline > 1 else "") + _REPORT
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def parse(output: str, pipeline: int = 1) -> Load:
    """The `Load` from wrk's output (the script's result line)."""
    for line in output.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK) :])
            break
    else:
        raise LoadFailed(f"wrk printed no result: {output[-500:]}")
    return Load(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000 if pipeline == 1 else None,
        p99_ms=data["p99_us"] / 1000 if pipeline == 1 else None,
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        status_errors=data["status"],
    )


def run_wrk(
    url: str,
    seconds: float,
    connections: int,
    script_path: Path,
    pipeline: int = 1,
    threads: int = 1,
    cpus: Sequence[int] = (),
    headers: Mapping[str, str] | None = None,
) -> Load:
    """Load `url` for `seconds` with `connections` over `threads` wrk threads."""
    command = [
        "wrk", f"-t{threads}", f"-c{max(connections, threads)}", f"-d{max(seconds, 1):.0f}s",
        "--timeout", "5s", "--latency", "-s", str(script_path), url,
    ]  # fmt: skip
    for name, value in (headers or {}).items():
        command[1:1] = ["-H", f"{name}: {value}"]
    if pipeline > 1:
        command += ["--", str(pipeline)]
    if cpus:
        command = ["taskset", "-c", ",".join(map(str, cpus)), *command]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 30, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LoadFailed(f"wrk did not finish within {seconds + 30:.0f}s") from exc
    if done.returncode != 0:
        raise LoadFailed(f"wrk exited with {done.returncode}: {done.stderr[-500:]}")
    return parse(done.stdout, pipeline)
