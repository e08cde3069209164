"""The `shoal` command: `shoal run`, `routes`, `openapi`, `db migrate` and `up`."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.machinery
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._supervision import LIMITS_ENV, SUPERVISOR_ENV, raise_fd_limit
from .app import App
from .errors import ConfigurationError
from .limits import Limits
from .logs import logging_config

__all__ = ["load_app", "main"]

INTERFACES = ("rsgi", "asgi", "wsgi")


class TargetError(Exception):
    """The `module:attribute` target could not be loaded; the message is one line."""


def load_app(target: str) -> Any:
    """Import `module:attribute` (dotted attribute allowed) with the cwd on sys.path."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise TargetError(f"expected 'module:attribute', got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise TargetError(f"module {module_name!r} not found (from {target!r})") from exc
        raise
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(
                f"module {module_name!r} has no attribute {attribute!r} (from {target!r})"
            ) from None
    return obj


def _workers(value: str) -> int:
    if value == "auto":
        return os.cpu_count() or 1
    try:
        workers = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {value!r}") from None
    if workers < 1:
        raise argparse.ArgumentTypeError("--workers must be at least 1")
    return workers


def _drain_grace(value: str | None) -> float:
    if value is None:  # on Kubernetes, endpoints take a few seconds to forget a pod
        return 5.0 if os.environ.get("KUBERNETES_SERVICE_HOST") else 0.0
    try:
        grace = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if grace < 0:
        raise argparse.ArgumentTypeError("--drain-grace cannot be negative")
    return grace


def _server_class() -> type[Any]:
    """granian's server, with shoal's drain: readiness first, then the grace, then the stop."""
    from granian import Granian

    class Server(Granian):  # type: ignore[misc,valid-type]
        drain_grace = 0.0
        drain_marker = ""

        def signal_handler_interrupt(self, *args: Any, **kwargs: Any) -> None:
            if self.drain_grace <= 0 or os.path.exists(self.drain_marker):
                super().signal_handler_interrupt(*args, **kwargs)  # a second signal: stop now
                return
            # every worker's /readyz answers 503 from now on; they keep serving
            # for the grace period, while load balancers stop sending traffic
            with open(self.drain_marker, "w"):
                pass
            logging.getLogger("shoal").info(
                "draining: /readyz answers 503; stopping in %.1f s", self.drain_grace
            )
            timer = threading.Timer(self.drain_grace, super().signal_handler_interrupt)
            timer.daemon = True
            timer.start()

    return Server


def _python_files() -> Any:
    # reload on source changes only: a log file written in the project folder
    # must not restart the server in a loop
    from watchfiles import PythonFilter

    return PythonFilter


# `shoal run` options for the fields of `Limits` (`--body-timeout`...): (type, help)
_LIMIT_OPTIONS: dict[str, tuple[Callable[[str], Any], str]] = {
    "max_body_size": (int, "largest request body, bytes (413 past it)"),
    "max_header_size": (int, "largest request head, bytes (431 past it)"),
    "max_request_line": (int, "longest path or query string, bytes (414 past it)"),
    "header_timeout": (float, "seconds to receive a request head; also the keep-alive idle time"),
    "body_timeout": (float, "seconds to receive a whole body (408 past it)"),
    "max_connections": (int, "connections a worker serves at once"),
    "backlog": (int, "connections the kernel queues before they are accepted"),
    "handler_timeout": (float, "seconds a handler may run (504 past it; default: no limit)"),
    "drain_timeout": (float, "seconds a worker may drain after SIGTERM before it is killed"),
    "stream_buffer": (int, "bytes a streamed response may run ahead of its client"),
    "memory_limit": (int, "bytes of data a worker may hold (RLIMIT_DATA; default: no limit)"),
}


def _limits(declared: Limits, args: argparse.Namespace) -> tuple[Limits, dict[str, Any]]:
    """The app's limits with the command line's over them, and those overrides alone."""
    overrides = {
        name: getattr(args, name)
        for name in _LIMIT_OPTIONS
        if getattr(args, name, None) is not None
    }
    if args.no_keep_alive:
        overrides["keep_alive"] = False
    try:
        return dataclasses.replace(declared, **overrides), overrides
    except ValueError as exc:
        raise TargetError(str(exc)) from None


def _octal(value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected octal permissions, got {value!r}") from None
    if not 0 <= mode <= 0o777:
        raise argparse.ArgumentTypeError(f"expected permissions from 000 to 777, got {value!r}")
    return mode


def _check_tls(certfile: Path, keyfile: Path) -> None:
    """Load the pair once here, so that a bad file is one line, not a trace per worker."""
    import ssl

    for flag, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not path.is_file():
            raise TargetError(f"{flag}: no such file {str(path)!r}")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        raise TargetError(
            f"--ssl-certfile/--ssl-keyfile: cannot load {str(certfile)!r} with "
            f"{str(keyfile)!r} (a PEM certificate and its unencrypted key): {exc}"
        ) from None


def _check_uds(path: Path) -> None:
    """Refuse a path that is taken; remove a socket that no server listens on any more."""
    import socket
    import stat

    if not path.parent.is_dir():
        raise TargetError(f"--uds: no such folder {str(path.parent)!r}")
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise TargetError(f"--uds: {str(path)!r} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:  # left behind by a server that died
            path.unlink(missing_ok=True)
            return
        except OSError:
            pass
    raise TargetError(f"--uds: a server already listens on {str(path)!r}")


def _transport(args: argparse.Namespace) -> dict[str, Any]:
    """granian's options for TLS, a Unix socket and the HTTP versions, checked."""
    from granian.constants import HTTPModes

    options: dict[str, Any] = {"http": HTTPModes(args.http)}
    if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
        raise TargetError("--ssl-certfile and --ssl-keyfile go together: give both or neither")
    if args.ssl_certfile is not None:
        _check_tls(args.ssl_certfile, args.ssl_keyfile)
        options.update(ssl_cert=args.ssl_certfile.resolve(), ssl_key=args.ssl_keyfile.resolve())
    if args.uds is not None:
        _check_uds(args.uds)
        options.update(uds=args.uds, uds_permissions=args.uds_permissions)
    elif args.uds_permissions is not None:
        raise TargetError("--uds-permissions needs --uds")
    return options


def _native_static(app: App) -> dict[str, Any]:
    """granian's static-file options for the app's `native=True` directories, checked."""
    mounts = [(prefix, files) for prefix, files in app.static_files if files.native]
    if not mounts:
        return {}
    if len({(files.index, files.max_age) for _, files in mounts}) > 1:
        raise TargetError(
            "native static files share granian's options: give every native=True "
            "directory the same index and cache_control"
        )
    static_templates = {prefix + "/{path:path}" for prefix, _ in mounts}
    for prefix, files in mounts:
        hidden = [] if files.hidden else files.hidden_entries()
        if hidden:
            raise TargetError(
                f"static files at {prefix!r}: granian's native handler would serve hidden "
                f"entries ({', '.join(hidden[:3])}); remove them, pass hidden=True, or native=False"
            )
        for endpoint in app.endpoints:
            template = endpoint.template
            if template.startswith(prefix + "/") and template not in static_templates:
                raise TargetError(
                    f"static files at {prefix!r}: granian's native handler would shadow "
                    f"the route {template!r}; move one of them, or native=False"
                )
    return {
        "static_path_route": [prefix for prefix, _ in mounts],
        "static_path_mount": [Path(files.root) for _, files in mounts],
        "static_path_dir_to_file": "index.html" if mounts[0][1].index else None,
        "static_path_expires": mounts[0][1].max_age,
    }


def _is_extension(module: object) -> bool:
    spec = getattr(module, "__spec__", None)
    return isinstance(getattr(spec, "loader", None), importlib.machinery.ExtensionFileLoader)


def _forget_imports(before: set[str]) -> None:
    """Forget the modules imported since `before`, so that forked workers import them afresh.

    A top-level package that holds a compiled extension module stays whole:
    an extension's module state cannot be made twice in one process (asyncpg's
    protocol, imported again in a forked worker, crashed it with a
    segmentation fault), and its Python modules must stay the ones it was
    built with (the exception classes it raises, say).
    """
    new = set(sys.modules) - before
    native = {name.partition(".")[0] for name in new if _is_extension(sys.modules.get(name))}
    for name in new:
        if name.partition(".")[0] not in native:
            del sys.modules[name]


def _run(args: argparse.Namespace) -> int:
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings, HTTP2Settings
    from granian.log import LogLevels

    # Import the target here to fail in one line rather than in every worker,
    # then forget it: workers are forked from this process and must import the
    # code afresh (for --reload to serve the new code, and so that nothing the
    # module created at import time is shared between processes), all but the
    # compiled packages it brought in (`_forget_imports`).
    before = set(sys.modules)
    app = load_app(args.target)
    is_app, is_callable, kind = isinstance(app, App), callable(app), type(app).__name__
    limits, overrides = _limits(app.limits if is_app else Limits(), args)
    transport = _transport(args)
    static = _native_static(app) if is_app and args.interface != "wsgi" else {}
    del app
    _forget_imports(before)
    if args.interface in ("rsgi", "asgi") and not is_app:
        raise TargetError(
            f"{args.target!r} is a {kind}, not a shoal App; "
            "serve a WSGI application(environ, start_response) with --interface wsgi"
        )
    if args.interface == "wsgi" and is_app:
        raise TargetError(
            f"{args.target!r} is a shoal App, not a WSGI application: serve it with "
            "--interface rsgi (the default), and mount WSGI apps in it with app.mount()"
        )
    if args.interface == "wsgi" and not is_callable:
        raise TargetError(
            f"{args.target!r} is a {kind}, not a WSGI application "
            "(a callable application(environ, start_response))"
        )
    # workers import the target themselves: make the cwd importable for them too
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])
    )
    # the supervisor's side of shoal._supervision: the workers inherit all three
    open_files = raise_fd_limit()
    os.environ[SUPERVISOR_ENV] = str(os.getpid())
    os.environ[LIMITS_ENV] = json.dumps(overrides)
    # a connection costs a descriptor; keep some for files, the database, clients
    connections = min(limits.max_connections, max(64, open_files - 256))
    # a folder shared with the workers: metrics snapshots and the drain marker
    run_folder = tempfile.mkdtemp(prefix="shoal-run-")
    os.environ["SHOAL_RUN_DIR"] = run_folder
    if args.access_log:
        os.environ["SHOAL_ACCESS_LOG"] = "1"
    os.environ["SHOAL_LOG_FORMAT"] = args.log_format
    server_class = _server_class()
    server_class.drain_grace = args.drain_grace
    server_class.drain_marker = os.path.join(run_folder, "draining")
    server = server_class(
        args.target,
        address=args.host,
        port=args.port,
        interface=Interfaces(args.interface),
        workers=args.workers,
        reload=args.reload,
        reload_filter=_python_files() if args.reload else None,
        log_level=LogLevels(args.log_level),
        log_dictconfig=logging_config(args.log_format, args.log_level),
        log_access=args.access_log and args.interface == "wsgi",  # shoal logs its own
        working_dir=Path.cwd(),
        backlog=limits.backlog,
        backpressure=connections,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(limits.header_timeout * 1000),
            keep_alive=limits.keep_alive,
            max_buffer_size=limits.max_header_size,
        ),
        # HTTP/2 (h2c prior knowledge, or TLS): the same header limit, not granian's 16 MiB
        http2_settings=HTTP2Settings(max_headers_size=limits.max_header_size),
        respawn_failed_workers=not args.reload,
        respawn_interval=0.5,
        workers_kill_timeout=max(1, math.ceil(limits.drain_timeout)),
        **transport,
        **static,
    )
    try:
        server.serve()
    finally:
        shutil.rmtree(run_folder, ignore_errors=True)
    return 0


def _routes(args: argparse.Namespace) -> int:
    app = load_app(args.target)
    if not isinstance(app, App):
        raise TargetError(f"{args.target!r} is a {type(app).__name__}, not a shoal App")
    rows = [(", ".join(e.methods), e.template, e.name) for e in app.endpoints]
    rows += [("*", (m.prefix or "") + "/...", f"WSGI {m.app!r}") for m in app.mounts]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(_HEADINGS)]
    for row in [_HEADINGS, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


_HEADINGS = ("METHODS", "PATH", "HANDLER")


def _openapi(args: argparse.Namespace) -> int:
    import msgspec

    app = load_app(args.target)
    if not isinstance(app, App):
        raise TargetError(f"{args.target!r} is a {type(app).__name__}, not a shoal App")
    document = msgspec.json.format(msgspec.json.encode(app.openapi()), indent=2)
    sys.stdout.write(document.decode() + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoal", description="Run and inspect shoal apps.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="serve an app on granian")
    run.add_argument("target", help="the app, as module:attribute (e.g. service:app)")
    run.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    run.add_argument(
        "--workers", type=_workers, default=1, help="worker processes, or 'auto' for one per core"
    )
    run.add_argument("--reload", action="store_true", help="restart when source files change")
    run.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="logging threshold (default info)",
    )
    run.add_argument("--access-log", action="store_true", help="log every request")
    run.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="text: readable, coloured on a terminal; json: one object a line (default text)",
    )
    run.add_argument(
        "--drain-grace",
        type=_drain_grace,
        default=_drain_grace(None),
        metavar="SECONDS",
        help="on SIGTERM, answer /readyz 503 and keep serving this long before stopping "
        "(default 5 on Kubernetes, else 0)",
    )
    run.add_argument(
        "--interface",
        default="rsgi",
        choices=INTERFACES,
        help="protocol (default rsgi; wsgi serves a plain WSGI application)",
    )
    transport = run.add_argument_group("transport: TLS, Unix socket, HTTP versions")
    transport.add_argument(
        "--ssl-certfile", type=Path, metavar="PATH",
        help="serve HTTPS with this PEM certificate (chain); needs --ssl-keyfile",
    )  # fmt: skip
    transport.add_argument(
        "--ssl-keyfile", type=Path, metavar="PATH",
        help="the PEM private key of --ssl-certfile (not encrypted)",
    )  # fmt: skip
    transport.add_argument(
        "--uds", type=Path, metavar="PATH",
        help="listen on this Unix socket instead of --host/--port",
    )  # fmt: skip
    transport.add_argument(
        "--uds-permissions", type=_octal, metavar="OCTAL",
        help="the socket's permissions, e.g. 660 for a proxy in the same group "
        "(default: from the umask)",
    )  # fmt: skip
    transport.add_argument(
        "--http", default="auto", choices=["auto", "1", "2"],
        help="HTTP versions: auto (HTTP/1.1 and HTTP/2: ALPN over TLS, prior knowledge "
        "in clear), 1 (HTTP/1.1 only) or 2 (HTTP/2 only) (default auto)",
    )  # fmt: skip
    limits = run.add_argument_group("limits (default: the app's own, see shoal.limits)")
    for name, (kind, help_text) in _LIMIT_OPTIONS.items():
        limits.add_argument("--" + name.replace("_", "-"), type=kind, help=help_text)
    limits.add_argument(
        "--no-keep-alive", action="store_true", help="close every connection after one response"
    )
    run.set_defaults(func=_run)

    routes = commands.add_parser("routes", help="print the route table")
    routes.add_argument("target", help="the app, as module:attribute")
    routes.set_defaults(func=_routes)

    openapi = commands.add_parser("openapi", help="print the OpenAPI 3.1 document as JSON")
    openapi.add_argument("target", help="the app, as module:attribute")
    openapi.set_defaults(func=_openapi)

    from .db.migrations import add_cli as add_db_commands

    add_db_commands(commands)
    from .events.cli import add_cli as add_events_command

    add_events_command(commands)

    up = commands.add_parser("up", help="run a system of services from its shoal.toml manifest")
    up.add_argument(
        "manifest", nargs="?", default=".", help="a folder with shoal.toml, or the file"
    )
    up.add_argument("--check", action="store_true", help="validate the manifest and exit")
    up.add_argument(
        "--port", action="append", default=[], type=_port_override, metavar="NAME=PORT",
        help="serve service NAME on PORT instead of the manifest's (repeatable)",
    )  # fmt: skip
    up.add_argument(
        "--port-offset", type=int, default=None,
        help="add this to every port (default $SHOAL_PORT_OFFSET or 0)",
    )  # fmt: skip
    up.set_defaults(func=_up)
    return parser


def _port_override(value: str) -> tuple[str, int]:
    name, sep, port = value.partition("=")
    if not sep or not name or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=PORT, got {value!r}")
    return name, int(port)


def _up(args: argparse.Namespace) -> int:
    from .system import up

    offset = args.port_offset
    if offset is None:
        try:
            offset = int(os.environ.get("SHOAL_PORT_OFFSET") or 0)
        except ValueError:
            raise TargetError("SHOAL_PORT_OFFSET must be a whole number") from None
    return up(args.manifest, ports=dict(args.port), port_offset=offset, check=args.check)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `shoal` command."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (TargetError, ConfigurationError) as exc:  # a SettingsError too: one line
        print(f"shoal: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `shoal routes app | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
