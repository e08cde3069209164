"""A service whose settings the tests break on purpose, served by a real `shoal run`."""

from __future__ import annotations

import logging

from shoal import App, Secret, Settings

logger = logging.getLogger("shoal.tests.settings_app")


class Config(Settings, kw_only=True):
    """Everything the app needs; `SETAPP_API_KEY` has no default."""

    env_prefix = "SETAPP_"
    api_key: Secret[str]
    pin: Secret[int] = Secret(0)
    workers: int = 1


config = Config.load()
app = App()


@app.on_startup
def log_settings() -> None:
    logger.warning("started with %r", config)  # what an operator would log


@app.get("/config")
async def show() -> dict[str, object]:
    return {"workers": config.workers, "api_key": str(config.api_key), "pin": f"{config.pin}"}
