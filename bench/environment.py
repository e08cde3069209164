"""Everything the benchmark needs, installed idempotently: the peers' venv, wrk, Go.

The peers live in their own virtual environment, `.bench/venv`, with shoal
itself installed editable, so the dev environment never sees them. Debian's
`wrk` and `golang-go` are installed with apt-get when missing (as root, no
prompts); the Go reference server is built into `.bench/`.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from .peers import GO_SERVER, ROOT

BENCH_DIR = ROOT / ".bench"
VENV = BENCH_DIR / "venv"
BIN = VENV / "bin"
REQUIREMENTS = ROOT / "bench" / "requirements.txt"
NO_DEPS = ROOT / "bench" / "requirements-nodeps.txt"
"""Peers installed `--no-deps` (their pins clash with the bench's; their deps are pinned above)."""
GO_SOURCE = ROOT / "bench" / "apps" / "go" / "main.go"


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _run(command: list[str], **kwargs: object) -> None:
    subprocess.run(command, check=True, **kwargs)  # type: ignore[call-overload]


def _stamp(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv() -> Path:
    """Create `.bench/venv` and install the pinned peers and shoal; return its bin/."""
    stamp_file = VENV / ".installed"
    wanted = _stamp(REQUIREMENTS, NO_DEPS, ROOT / "pyproject.toml")
    if stamp_file.exists() and stamp_file.read_text() == wanted:
        return BIN
    say(f"installing the peers into {VENV.relative_to(ROOT)} (once)")
    if not (BIN / "python").exists():
        _run([sys.executable, "-m", "venv", str(VENV)])
    pip = [str(BIN / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*pip, "--upgrade", "pip"])
    _run([*pip, "-r", str(REQUIREMENTS)])
    _run([*pip, "--no-deps", "-r", str(NO_DEPS)])
    _run([*pip, "-e", str(ROOT)])
    stamp_file.write_text(wanted)
    return BIN


def ensure_apt(*packages: str) -> None:
    """Install Debian `packages` whose command is missing (keys: command, values: package)."""
    if not packages:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"bench: {', '.join(packages)} missing; install them (needs root)")
    say(f"installing {', '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    _run(["apt-get", *lock, "update", "-q"], env=env, stdout=subprocess.DEVNULL)
    _run(["apt-get", *lock, "install", "-y", "-q", *packages], env=env, stdout=subprocess.DEVNULL)


def ensure_tools(need_go: bool) -> None:
    """wrk (always) and golang-go (when the Go peer runs), from Debian, if missing."""
    missing = [] if shutil.which("wrk") else ["wrk"]
    if need_go and not shutil.which("go"):
        missing.append("golang-go")
    ensure_apt(*missing)


def ensure_go_server() -> Path:
    """Build the Go reference server into `.bench/` unless it is up to date."""
    stamp_file = GO_SERVER.with_suffix(".sha256")
    wanted = _stamp(GO_SOURCE)
    if GO_SERVER.exists() and stamp_file.exists() and stamp_file.read_text() == wanted:
        return GO_SERVER
    say("building the Go reference server")
    env = {
        **os.environ,
        "GOCACHE": str(BENCH_DIR / "go-cache"),
        "GOPATH": str(BENCH_DIR / "go-path"),
        "GO111MODULE": "off",
        "GOFLAGS": "",
    }
    _run(["go", "build", "-o", str(GO_SERVER), str(GO_SOURCE)], env=env)
    stamp_file.write_text(wanted)
    return GO_SERVER


def machine() -> dict[str, str]:
    """The facts about this machine that a reader needs to weigh the figures."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    # the peers' venv exists once `make bench` has made it (not in a fresh checkout's tests)
    version = subprocess.run(
        [str(BIN / "python"), "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True, text=True, check=False,
    ).stdout.strip() if (BIN / "python").exists() else ""  # fmt: skip
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    go_path = shutil.which("go")  # a run without the Go peer may have no Go at all
    go = subprocess.run([go_path or "false", "version"], capture_output=True, text=True,
                        check=False)  # fmt: skip
    return {
        "cores": str(os.cpu_count() or 1),
        "cpu": model,
        "memory": memory,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": version or platform.python_version(),
        "wrk": (wrk.stdout + wrk.stderr).split("\n", 1)[0].strip(),
        "go": go.stdout.strip() if go.returncode == 0 else "not installed",
    }
