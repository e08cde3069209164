"""The `shoal` command, in-process for argument handling and as a real process for serving."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from shoal.cli import TargetError, load_app, main
from tests.servers import BIN, ROOT, free_port, running_server, wait_for_port


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("examples.hello", "expected 'module:attribute'"),
        ("nonexistent_module:app", "module 'nonexistent_module' not found"),
        ("examples.nonexistent:app", "module 'examples.nonexistent' not found"),
        ("examples.hello:nope", "module 'examples.hello' has no attribute 'nope'"),
        ("examples.hello:app.nope", "has no attribute 'app.nope'"),
    ],
)
def test_bad_targets(target: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        load_app(target)


def test_target_that_is_not_an_app(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "tests.apps.lifecycle:not_an_app"]) == 2
    assert capsys.readouterr().err == (
        "shoal: error: 'tests.apps.lifecycle:not_an_app' is a dict, not a shoal App\n"
    )


def test_bad_target_is_one_line_from_the_command() -> None:
    result = subprocess.run(
        [str(BIN / "shoal"), "run", "examples.hello:nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "shoal: error: module 'examples.hello' has no attribute 'nope' "
        "(from 'examples.hello:nope')\n"
    )


def test_routes_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "tests.apps.e2e:app"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["METHODS", "PATH", "HANDLER"]
    assert ["GET", "/items/{item_id:int}", "item"] in [line.split() for line in lines]
    assert any(line.split() == ["GET,", "POST", "/things", "things"] for line in lines)


@pytest.mark.parametrize("value", ["0", "many"])
def test_bad_worker_counts(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "examples.hello:app", "--workers", value])
    assert "--workers" in capsys.readouterr().err


def test_failing_startup_stops_the_server_with_the_error() -> None:
    port = free_port()
    result = subprocess.run(
        [str(BIN / "shoal"), "run", "tests.apps.lifecycle:failing", "--port", str(port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "startup failed" in output
    assert "ConnectionRefusedError: the settings service at 127.0.0.1:1 refused" in output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_cleanly_and_run_shutdown(tmp_path: Path, sig: signal.Signals) -> None:
    marker = tmp_path / "marker"
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "shoal"), "run", "tests.apps.lifecycle:recording", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "SHOAL_TEST_MARKER": str(marker)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for_port(port, process)
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        process.send_signal(sig)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert marker.read_text() == "stopped cleanly"


def test_several_workers_serve_from_several_processes() -> None:
    with running_server("granian-rsgi", "tests.apps.lifecycle:recording", ["--workers", "2"]) as s:
        pids = set()
        for _ in range(200):
            with httpx.Client(base_url=s.url) as client:  # a new connection each time
                pids.add(client.get("/").json()["pid"])
            if len(pids) == 2:
                break
    assert len(pids) == 2


def test_reload_serves_the_changed_code(tmp_path: Path) -> None:
    module = tmp_path / "reloadable.py"
    template = (
        "from shoal import App\napp = App()\n\n"
        "@app.get('/')\nasync def version() -> dict[str, str]:\n    return {{'version': '{}'}}\n"
    )
    module.write_text(template.format("one"))
    (tmp_path / "server.log").write_text("")  # written files that are not code never reload
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "shoal"), "run", "reloadable:app", "--port", str(port), "--reload"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert wait_for_port(port, process)
        url = f"http://127.0.0.1:{port}/"
        assert httpx.get(url).json() == {"version": "one"}
        module.write_text(template.format("two, longer"))
        seen = None
        for _ in range(100):  # bounded: at most ~20 s
            try:
                seen = httpx.get(url, timeout=2).json()
            except httpx.TransportError:
                seen = None  # the worker is restarting
            if seen == {"version": "two, longer"}:
                break
            time.sleep(0.2)
        assert seen == {"version": "two, longer"}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)


def test_forgetting_the_target_keeps_packages_with_compiled_modules() -> None:
    # in a fresh interpreter: what the target's import brought in is forgotten,
    # except a package holding an extension module (asyncpg: its protocol is compiled)
    script = (
        "import sys\n"
        "from shoal.cli import _forget_imports\n"
        "before = set(sys.modules)\n"
        "import asyncpg, tests.apps.lifecycle\n"
        "_forget_imports(before)\n"
        "print(sorted({n.partition('.')[0] for n in set(sys.modules) - before}))\n"
        "print('tests.apps.lifecycle' in sys.modules)\n"
    )
    done = subprocess.run(
        [str(BIN / "python"), "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    kept, app_kept = done.stdout.splitlines()
    assert "asyncpg" in kept and "tests" not in kept, kept
    assert app_kept == "False"


def test_a_target_that_imports_a_compiled_package_serves(tmp_path: Path) -> None:
    # asyncpg imported by the target in the supervisor, then again in a forked
    # worker, crashed the worker (SIGSEGV) as soon as it made a connection's protocol
    (tmp_path / "native_app.py").write_text(
        "import asyncpg\nfrom shoal import App\napp = App()\n\n"
        "@app.get('/{port:int}')\nasync def connect(port: int) -> dict[str, str]:\n"
        "    try:\n"
        "        url = f'postgresql://u@127.0.0.1:{port}/d'\n"
        "        await asyncpg.connect(url, ssl=False, timeout=1)\n"
        "    except Exception as exc:\n"
        "        return {'error': type(exc).__name__}\n"
        "    return {'error': ''}\n"
    )
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as output, socket.create_server(("127.0.0.1", 0)) as silent:
        process = subprocess.Popen(
            [str(BIN / "shoal"), "run", "native_app:app", "--port", str(port)],
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            assert wait_for_port(port, process), log.read_text()
            # a listener that never answers: asyncpg connects, sends, times out
            answer = httpx.get(f"http://127.0.0.1:{port}/{silent.getsockname()[1]}", timeout=10)
            assert answer.status_code == 200, log.read_text()
            assert answer.json() == {"error": "TimeoutError"}
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(20)
