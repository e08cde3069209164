"""Untrusted text made safe for a log line.

A path, a header or a method comes from the client: written into a log as it
is, a `%0a` in it forges a second log line, and other control characters can
rewrite a terminal. Every untrusted value that shoal logs goes through
`printable` first.
"""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: object) -> str:
    """`text` as a str with control characters (CR, LF, NUL, ESC...) escaped as `\\xNN`."""
    value = text if isinstance(text, str) else str(text)
    if value.isprintable():  # the common case: one C-level scan
        return value
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
