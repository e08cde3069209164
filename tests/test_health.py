"""`/livez` and `/readyz`: checks, timeouts, resources, the watchdog, and the drain on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

import shoal.health
from shoal import App
from shoal.testing import TestClient
from tests.apps.operations import app as operations_app
from tests.servers import ROOT, command, free_port, stop, wait_for_port


def test_readiness_is_ok_when_every_check_passes() -> None:
    with TestClient(operations_app) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    # the app's own check and the database's, each with its latency
    assert set(body["checks"]) == {"flag_file", "sqlite"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert all(check["latency_ms"] >= 0 for check in body["checks"].values())


def test_a_failing_check_makes_readiness_503_and_says_which(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    marker = tmp_path / "not-ready"
    marker.touch()
    monkeypatch.setenv("OPERATIONS_NOT_READY", str(marker))
    with TestClient(operations_app) as client:
        response = client.get("/readyz")
        marker.unlink()
        recovered = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["flag_file"] == {
        "status": "fail",
        "latency_ms": response.json()["checks"]["flag_file"]["latency_ms"],
        "detail": "the check returned False",
    }
    assert response.json()["checks"]["sqlite"]["status"] == "ok"
    assert recovered.status_code == 200


def test_checks_that_raise_or_hang_fail_within_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shoal.health, "CHECK_TIMEOUT", 0.2)
    app = App()

    @app.readiness_check
    async def broken() -> None:
        raise ConnectionError("cache at 10.0.0.9 refused")

    @app.readiness_check
    async def hanging() -> None:
        await __import__("asyncio").sleep(5)

    with TestClient(app) as client:
        started = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - started
    checks = response.json()["checks"]
    assert response.status_code == 503
    assert checks["broken"]["detail"] == "ConnectionError: cache at 10.0.0.9 refused"
    assert checks["hanging"]["detail"] == "no answer within 0.2 s"
    assert elapsed < 3  # the checks ran concurrently and were cut at the timeout


def test_probes_can_be_moved_or_turned_off_and_stay_out_of_openapi() -> None:
    app = App(livez_url="/health/live", readyz_url=None)
    with TestClient(app) as client:
        assert client.get("/health/live").json() == {"status": "ok"}
        assert client.get("/readyz").status_code == 404
        assert client.get("/livez").status_code == 404
        paths = client.get("/openapi.json").json()["paths"]
    assert "/health/live" not in paths


def test_liveness_fails_after_the_loop_was_held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shoal.health, "LIVENESS_STALL", 0.2)
    app = App(stall_threshold=0.1)

    @app.get("/wedge")
    async def wedge() -> dict[str, bool]:
        time.sleep(0.4)  # blocks the loop: the watchdog sees it
        return {"done": True}

    with TestClient(app) as client:
        assert client.get("/livez").status_code == 200
        client.get("/wedge")
        response = client.get("/livez")
    assert response.status_code == 503
    assert response.json()["status"] == "fail"
    assert "wedge" in response.json()["detail"]


def test_drain_on_sigterm_readiness_first_every_accepted_request_completes() -> None:
    """`shoal run --workers 2 --drain-grace 5` under a steady concurrent load."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        command(
            "granian-rsgi",
            "tests.apps.operations:app",
            port,
            # a grace long enough that the 503 (up to 2.5 s on a loaded machine, below)
            # and the request after it both fall inside it
            ["--workers", "2", "--drain-grace", "5"],
        ),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert wait_for_port(port, process)
        outcomes: list[str] = []
        stopping = threading.Event()

        def load() -> None:
            while not stopping.is_set():
                try:
                    response = httpx.get(f"{url}/slow?seconds=0.2", timeout=10)
                except httpx.ConnectError:
                    outcomes.append("refused")  # not accepted: the server had stopped
                    time.sleep(0.05)
                    continue
                except httpx.HTTPError as exc:
                    outcomes.append(f"broken: {exc!r}")  # accepted but not answered
                    continue
                ok = response.status_code == 200 and response.json() == {"slept": 0.2}
                outcomes.append("ok" if ok else f"bad: {response.status_code}")

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        assert httpx.get(f"{url}/readyz").status_code == 200
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)  # the server's main process only, as Kubernetes does
        during = httpx.get(f"{url}/readyz")
        while during.status_code == 200 and time.monotonic() - signalled < 2.5:
            time.sleep(0.05)  # the signal reaches the workers (a loaded machine may be slow)
            during = httpx.get(f"{url}/readyz")
        served = httpx.get(f"{url}/items/1")  # still serving during the grace period
        returncode = process.wait(timeout=40)
        stopped = time.monotonic() - signalled
        stopping.set()
        for thread in threads:
            thread.join()
    finally:
        stop(process)
    assert during.status_code == 503 and during.json()["status"] == "draining"
    assert served.status_code == 200
    assert returncode == 0
    assert 5 <= stopped < 5 + 30
    assert outcomes.count("ok") > 10
    assert [o for o in outcomes if o not in ("ok", "refused")] == []
