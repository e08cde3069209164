"""RSGI adapter pieces that the end-to-end suite cannot reach directly."""

from __future__ import annotations

import asyncio

import pytest

from shoal import App


def test_init_runs_startup_and_exits_the_worker_on_failure() -> None:
    app = App()

    @app.on_startup
    def fail() -> None:
        raise RuntimeError("no config")

    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(SystemExit) as caught:
            app.__rsgi_init__(loop)
        assert caught.value.code == 3
    finally:
        loop.close()


def test_init_and_del_run_the_lifespan() -> None:
    events: list[str] = []
    app = App()
    app.on_startup(lambda: events.append("up"))
    app.on_shutdown(lambda: events.append("down"))
    loop = asyncio.new_event_loop()
    try:
        app.__rsgi_init__(loop)
        app.__rsgi_del__(loop)
    finally:
        loop.close()
    assert events == ["up", "down"]
