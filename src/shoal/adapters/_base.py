"""What every adapter shares: its app, and the app's entry handler fetched once."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..app import App, Handler


class Adapter:
    """Base of the protocol adapters: `_handle` is the app's composed entry handler."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._handle: Handler | None = None

    def _compose(self) -> Handler:
        # fetched on first use, not at construction: composing freezes the app
        self._handle = self.app.compose()
        return self._handle
