"""Apps for the CLI tests: one whose startup fails, one that records its shutdown."""

from __future__ import annotations

import os
from pathlib import Path

from shoal import App

failing = App()


@failing.on_startup
async def connect() -> None:
    raise ConnectionRefusedError("the settings service at 127.0.0.1:1 refused the connection")


recording = App()
MARKER = Path(os.environ.get("SHOAL_TEST_MARKER", "/nonexistent/marker"))


@recording.get("/")
async def index() -> dict[str, int]:
    return {"pid": os.getpid()}


@recording.on_shutdown
def write_marker() -> None:
    MARKER.write_text("stopped cleanly")


not_an_app = {"just": "a dict"}
