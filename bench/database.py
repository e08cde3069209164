"""The databases of the database workloads: one PostgreSQL and one SQLite file, seeded once.

PostgreSQL is the throwaway server of the tests (`tests.postgres`: Debian's
binaries, a temporary data directory, a free loopback port, run as the
`postgres` user when root), started with the bench venv's Python so asyncpg
is at hand, and stopped (its folder deleted) when the run ends. Both
databases are filled once by `python -m examples.techempower_db seed`
(`world`: 10,000 rows, `fortune`: TechEmpower's 12) before any server starts.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from .environment import BENCH_DIR, say
from .peers import ROOT, python_path

SQLITE_FILE = BENCH_DIR / "db" / "techempower.sqlite3"


class DatabaseFailed(Exception):
    """A database could not be started or seeded; the message says why."""


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": python_path(), "DATABASE_URL": url}


def seed(bin_dir: Path, url: str) -> None:
    """Fill `world` and `fortune` at `url` (again, from scratch)."""
    done = subprocess.run(
        [str(bin_dir / "python"), "-m", "examples.techempower_db", "seed"],
        cwd=ROOT, env=_env(url), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise DatabaseFailed(f"seeding failed: {(done.stdout + done.stderr).strip()[-300:]}")


def _read_url(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line.strip())
            if line.startswith("DATABASE_URL="):
                return line.strip().partition("=")[2]
        elif process.poll() is not None:
            break
    raise DatabaseFailed(f"PostgreSQL did not start: {' / '.join(seen)[-300:] or 'no output'}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        with suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)  # tests.postgres stops the server and cleans up
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def postgres_version() -> str:
    """`postgres --version` of the binaries `tests.postgres` uses."""
    from tests.postgres import find_bindir

    try:
        done = subprocess.run(
            [str(find_bindir() / "postgres"), "--version"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    except (OSError, RuntimeError):
        return "not installed"
    return done.stdout.strip() or "unknown"


@contextmanager
def databases(bin_dir: Path, backends: Sequence[str]) -> Iterator[dict[str, str]]:
    """Start and seed the `backends` asked for; yield backend -> URL (or `!why` on failure)."""
    urls: dict[str, str] = {}
    process: subprocess.Popen[str] | None = None
    try:
        if "postgresql" in backends:
            say("starting PostgreSQL (tests.postgres) and seeding it")
            process = subprocess.Popen(
                [str(bin_dir / "python"), "-m", "tests.postgres"], cwd=ROOT,
                env={**os.environ, "PYTHONPATH": python_path()}, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                start_new_session=True,
            )  # fmt: skip
            try:
                url = _read_url(process, timeout=120)
                seed(bin_dir, url)
                urls["postgresql"] = url
            except DatabaseFailed as exc:
                say(str(exc))
                urls["postgresql"] = f"!{exc}"
        if "sqlite" in backends:
            SQLITE_FILE.parent.mkdir(parents=True, exist_ok=True)
            for stale in SQLITE_FILE.parent.glob(SQLITE_FILE.name + "*"):
                stale.unlink()
            url = f"sqlite:///{SQLITE_FILE}"  # an absolute path: sqlite:////...
            try:
                seed(bin_dir, url)
                urls["sqlite"] = url
            except DatabaseFailed as exc:
                say(str(exc))
                urls["sqlite"] = f"!{exc}"
        yield urls
    finally:
        if process is not None:
            _stop(process)
