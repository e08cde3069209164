"""The in-process scaling script runs, and its apps are what it says (no timings asserted)."""

from __future__ import annotations

import pytest

from bench.scaling_inprocess import SIZES, main, middleware_app, providers_app, routes_app
from shoal.testing import TestClient


@pytest.mark.parametrize("chain", [False, True])
def test_provider_apps_resolve_every_provider(chain: bool) -> None:
    app, path = providers_app(10, chain=chain)
    with TestClient(app) as client:
        assert client.get(path).json() == {"n": 10}
    # a handler taking all ten, or the last of a chain of ten: ten providers either way
    assert len(app.container.providers) == 10


def test_routes_and_middleware_apps_answer() -> None:
    app, path = routes_app(100)
    with TestClient(app) as client:
        assert client.get(path).json() == {"id": 5}
    app, path = middleware_app(3)
    with TestClient(app) as client:
        assert client.get(path).json() == {"message": "Hello, World!"}


def test_quick_run_prints_every_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "| 1000 |" in out
    for row in ("request-scoped providers", "chain of N providers", "N middleware"):
        line = next(line for line in out.splitlines() if row in line)
        assert line.count("µs") == len(SIZES) + 1, line
    assert "`GET /svc{N-1}/items/5`" in out
