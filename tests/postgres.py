"""A real, throwaway PostgreSQL server for tests (and benchmarks).

`PostgresServer()` finds Debian's PostgreSQL binaries, `start()` creates a data
directory in a temporary folder (the first time) and starts the server on a
free loopback port, with its socket in that folder and trust authentication;
`stop()` stops it (the data stays, so `start()` again brings the same database
back), `cleanup()` stops it and deletes everything. As root (CI), the server
runs as the `postgres` system user (else `nobody`) through `runuser`, since
PostgreSQL refuses to run as root.

`make deps` (`scripts/postgres.sh`) installs the binaries when they are
missing. If they cannot be found, `start()` raises: the database tests fail,
they are never skipped.

`python -m tests.postgres` starts one and prints its `DATABASE_URL` until
interrupted (for trying the examples or benchmarking by hand).
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.servers import free_port

__all__ = ["PostgresServer", "find_bindir"]


def find_bindir() -> Path:
    """The folder holding `initdb`, `pg_ctl` and `postgres` (newest version first)."""
    candidates = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    candidates.extend(reversed(versions))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    raise RuntimeError(
        "PostgreSQL's initdb was not found: run `make deps` (as root it installs Debian's "
        "postgresql package) or set PG_BINDIR to the folder that holds initdb and pg_ctl"
    )


class PostgresServer:
    """One PostgreSQL server in a temporary folder, on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="shoal-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = _system_user()
            entry = pwd.getpwnam(self.user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        os.chmod(self.base, 0o700)

    @property
    def url(self) -> str:
        """The `postgresql://` URL of the `postgres` database, as superuser `postgres`."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(
            command, cwd=self.base, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:1])} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{log}"
            )

    def start(self) -> None:
        """Create the cluster (first time only), start the server, wait until it answers."""
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")  # fmt: skip
        self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until a connection and a query succeed (bounded by `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.execute("SELECT 1")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (fast: connections are terminated); the data is kept."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def cleanup(self) -> None:
        """Stop the server and delete its folder."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def execute(self, sql: str) -> None:
        """Run `sql` (no arguments) on the `postgres` database, on a loop of its own."""
        import asyncpg

        async def run() -> None:
            connection = await asyncpg.connect(self.url, timeout=5)
            try:
                await connection.execute(sql)
            finally:
                await connection.close()

        # A thread of its own, so this works inside a running event loop too.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, run()).result()

    def reset(self) -> None:
        """Drop everything in the `public` schema: each test starts from an empty database."""
        self.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def _system_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, but there is no postgres or nobody user to run as")


if __name__ == "__main__":  # pragma: no cover - a manual tool
    server = PostgresServer()
    server.start()
    print(f"DATABASE_URL={server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.cleanup()
