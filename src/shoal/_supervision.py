"""What `shoal run` and its worker processes agree on.

The main process (cli) raises the file-descriptor limit, passes limit
overrides (`--body-timeout`...) to the workers in `SHOAL_LIMITS`, and names
itself in `SHOAL_SUPERVISOR`. A worker (`supervise()`, from the adapters'
startup) applies the overrides to its app and asks the kernel to kill it
if the main process dies: a worker whose supervisor was SIGKILLed must not
keep serving, unsupervised and never drained.
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import signal
import sys
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from .app import App

__all__ = ["LIMITS_ENV", "SUPERVISOR_ENV", "apply_limit_overrides", "raise_fd_limit", "supervise"]

logger = logging.getLogger("shoal")

SUPERVISOR_ENV = "SHOAL_SUPERVISOR"
LIMITS_ENV = "SHOAL_LIMITS"
_PR_SET_PDEATHSIG = 1


def raise_fd_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20) if soft != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return int(hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return int(soft)
    return int(hard)


def supervise() -> None:
    """In a worker of `shoal run`: die with the main process. Elsewhere: nothing."""
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if supervisor is None or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != supervisor:  # it died before the request took hold
        os._exit(1)


def apply_limit_overrides(app: App) -> None:
    """Apply the limits `shoal run` gave on its command line to `app`, then its memory limit."""
    raw = os.environ.get(LIMITS_ENV)
    if raw:
        overrides: dict[str, Any] = msgspec.json.decode(raw)
        app.set_limits(**overrides)
    limit = app.limits.memory_limit
    if limit is not None:
        # RLIMIT_DATA bounds the process's private writable memory: an
        # allocation past it raises MemoryError in the code that asked, which
        # fails that request (a 500) and leaves the worker serving the others
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
