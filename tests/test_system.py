"""`shoal up`'s manifest: parsing, every mistake named, ports overridden; `shoal up --check`."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from shoal import ConfigurationError
from shoal.system import Supervisor, check_targets, load_manifest
from tests.servers import BIN, ROOT, free_port

GOOD = """
[system]
name = "demo"
env = { SHARED = "1", FROM_ENV = "${SHOAL_TEST_VALUE:-fallback}" }

[services.api]
app = "examples.hello:app"
port = 7000
after = ["db-view"]
env = { SHARED = "2", DEBUG = true }

[services.db-view]
app = "examples.time_service:app"
port = 7001
ready = "/readyz"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "shoal.toml").write_text(text)
    return tmp_path


def test_a_manifest_is_read_in_start_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOAL_TEST_VALUE", raising=False)
    manifest = load_manifest(write(tmp_path, GOOD))
    assert manifest.name == "demo" and manifest.root == tmp_path
    first, second = manifest.services
    assert (first.name, second.name) == ("db-view", "api")  # `after` decides the order
    assert second.env == {"SHARED": "2", "DEBUG": "true", "FROM_ENV": "fallback"}
    assert (first.ready, second.ready, first.url) == ("/readyz", "port", "http://127.0.0.1:7001")
    assert first.url_variable == "DB_VIEW_URL"
    monkeypatch.setenv("SHOAL_TEST_VALUE", "given")
    assert load_manifest(tmp_path / "shoal.toml").services[1].env["FROM_ENV"] == "given"


def test_ports_can_be_overridden(tmp_path: Path) -> None:
    manifest = load_manifest(write(tmp_path, GOOD), ports={"api": 9999}, port_offset=10)
    assert {s.name: s.port for s in manifest.services} == {"api": 10009, "db-view": 7011}
    with pytest.raises(ConfigurationError, match="names no service"):
        load_manifest(tmp_path, ports={"nope": 1})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[services]", "lists no"),
        ("[other]\n[services.a]\napp='m:a'\nport=1", "unknown section"),
        ("[services.a]\napp='m'\nport=1", "module:attribute"),
        ("[services.a]\napp='m:a'\nport='80'", "port must be a number"),
        ("[services.a]\napp='m:a'\nport=70000", "not a TCP port"),
        ("[services.a]\napp='m:a'\nport=1\ncolour='red'", "unknown key"),
        ("[services.A]\napp='m:a'\nport=1", "lower-case"),
        ("[services.a]\napp='m:a'\nport=1\n[services.b]\napp='m:b'\nport=1", "share port"),
        ("[services.a]\napp='m:a'\nport=1\nafter=['b']", "names no service"),
        ("[services.a]\napp='m:a'\nport=1\nafter=['b']\n[services.b]\napp='m:b'\nport=2\n"
         "after=['a']", "cycle"),
        ("[services.a]\napp='m:a'\nport=1\nready='soon'", "ready must be"),
        ("[services.a]\napp='m:a'\nport=1\nenv={A=[1]}", "env must be"),
        ("[services.a]\napp='m:a'\nport=1\nworkers=0", "workers"),
        ("[system]\nstop_timeout=-1\n[services.a]\napp='m:a'\nport=1", "stop_timeout"),
        ("[system]\nroot='nowhere'\n[services.a]\napp='m:a'\nport=1", "not a folder"),
        ("this is not toml", "cannot read"),
    ],
)  # fmt: skip
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_manifest(write(tmp_path, text))


def test_a_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such manifest"):
        load_manifest(tmp_path)


def test_targets_are_checked_without_importing(tmp_path: Path) -> None:
    text = "[system]\nroot='{root}'\n[services.a]\napp='examples.nope:app'\nport=1\n"
    manifest = load_manifest(write(tmp_path, text.format(root=ROOT)))
    assert check_targets(manifest) == ["services.a.app: no module 'examples.nope'"]


def test_lines_are_prefixed_and_coloured_per_service(tmp_path: Path) -> None:
    out = io.StringIO()
    supervisor = Supervisor(load_manifest(write(tmp_path, GOOD)), out=out, colour=True)
    supervisor.say("api", "hello", 0)
    supervisor.say("db-view", "there", 1)
    assert out.getvalue() == "\x1b[36mapi     |\x1b[0m hello\n\x1b[35mdb-view |\x1b[0m there\n"


def test_shoal_up_check() -> None:
    done = subprocess.run(
        [str(BIN / "shoal"), "up", "examples/runnerly", "--check", "--port", "gateway=9000"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "runnerly, 5 services, valid" in done.stdout
    assert "nats: nats-server on nats://127.0.0.1:4222" in done.stdout
    assert (
        "examples.runnerly.gateway:app on http://127.0.0.1:9000 (after nats, users, runs, stats)"
        in done.stdout
    )
    bad = subprocess.run(
        [str(BIN / "shoal"), "up", "examples", "--check"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "no such manifest" in bad.stderr
    wrong = subprocess.run(
        [str(BIN / "shoal"), "up", "examples/runnerly", "--port", "gateway"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert wrong.returncode == 2 and "NAME=PORT" in wrong.stderr


def test_services_do_not_outlive_a_killed_shoal_up(tmp_path: Path) -> None:
    port = free_port()
    text = (
        f"[system]\nroot='{ROOT}'\n[services.hello]\napp='examples.hello:app'\nport={port}\n"
        "ready='/json'\n"  # ready once GET /json answers 200
    )
    write(tmp_path, text)
    up = subprocess.Popen(
        [str(BIN / "shoal"), "up", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        assert up.stdout is not None
        for line in up.stdout:
            if b"hello is ready" in line:
                break
        else:
            raise AssertionError("hello never became ready")
        pid = int(line.rsplit(b"pid ", 1)[1].rstrip(b")\n"))
        os.kill(up.pid, signal.SIGKILL)  # no chance to clean up
        up.wait()
        end = time.monotonic() + 15
        while time.monotonic() < end and alive(pid):
            time.sleep(0.1)
        assert not alive(pid), "the service outlived its supervisor"
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        if up.stdout is not None:
            up.stdout.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_port_offset_comes_from_the_environment_too() -> None:
    env = {**os.environ, "SHOAL_PORT_OFFSET": "5"}
    done = subprocess.run(
        [str(BIN / "shoal"), "up", "examples/runnerly", "--check"],
        cwd=ROOT, capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0 and "http://127.0.0.1:8005" in done.stdout
    env["SHOAL_PORT_OFFSET"] = "five"
    done = subprocess.run(
        [str(BIN / "shoal"), "up", "examples/runnerly", "--check"],
        cwd=ROOT, capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 2 and "whole number" in done.stderr


def test_a_crashing_service_is_restarted_with_growing_back_off(tmp_path: Path) -> None:
    port = free_port()
    text = f"[system]\nroot='{ROOT}'\n[services.broken]\napp='examples.hello:nope'\nport={port}\n"
    write(tmp_path, text)
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        up = subprocess.Popen(
            [str(BIN / "shoal"), "up", str(tmp_path)], cwd=ROOT, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        end = time.monotonic() + 30
        while "restarting in 1 s" not in log.read_text() and time.monotonic() < end:
            time.sleep(0.1)
        up.send_signal(signal.SIGTERM)
        assert up.wait(20) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    output = log.read_text()
    first = output.index("broken exited with code 2; restarting in 0.5 s")
    assert output.index("broken exited with code 2; restarting in 1 s") > first
    assert "has no attribute 'nope'" in output  # the service's own words, prefixed
    assert output.rstrip().endswith("stopped")


def test_a_nats_section_runs_the_broker_first(tmp_path: Path) -> None:
    (tmp_path / "shoal.toml").write_text(
        '[services.a]\napp = "m:app"\nport = 7001\n\n[nats]\nport = 7222\nstore = "${X:-d}/n"\n'
    )
    manifest = load_manifest(tmp_path, ports={"nats": 7333}, port_offset=1)
    nats, a = manifest.services
    assert (nats.name, nats.url, a.after) == ("nats", "nats://127.0.0.1:7334", ("nats",))
    assert nats.command[1:] == ("-js", "-a", "127.0.0.1", "-p", "7334", "-sd", "d/n")
    (tmp_path / "shoal.toml").write_text('[services.a]\napp = "m:app"\nport = 1\n[nats]\nx = 1\n')
    with pytest.raises(ConfigurationError, match="unknown key"):
        load_manifest(tmp_path)
