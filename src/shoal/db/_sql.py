"""SQL text helpers for SQLite: `$n` placeholders to `?n`, and scripts to statements.

shoal's SQL uses PostgreSQL's numbered placeholders on both backends. SQLite
understands numbered placeholders too, spelled `?NNN`, and binds argument
`n` to every `?n`, so `$1` used twice needs no reordering: only the spelling
changes. What must not change is text that merely looks like a placeholder:
inside a string literal (`'$1'`), a quoted identifier (`"a$1"`, `` `a$1` ``,
`[a$1]`), a comment (`-- $1`, `/* $1 */`), or the tail of an identifier
(`price$1`).
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache

__all__ = ["split_script", "to_sqlite"]

# An opening quote and the character that closes it. A doubled closing quote
# ('it''s', "a""b") is an escaped quote: scanning on past it is the same as
# leaving the literal and entering a new one at once.
_QUOTES = {"'": "'", '"': '"', "`": "`", "[": "]"}
_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")


@lru_cache(maxsize=1024)
def to_sqlite(sql: str) -> str:
    """`sql` with each `$n` placeholder written `?n` (cached: statements repeat)."""
    if "$" not in sql:
        return sql
    out: list[str] = []
    i, n = 0, len(sql)
    start = 0  # start of the text not yet copied to `out`
    while i < n:
        c = sql[i]
        if c in _QUOTES:
            end = sql.find(_QUOTES[c], i + 1)
            i = n if end < 0 else end + 1
        elif c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c == "$" and i + 1 < n and sql[i + 1].isdigit():
            if i > 0 and sql[i - 1] in _IDENTIFIER_CHARS:
                i += 1
                continue
            j = i + 1
            while j < n and sql[j].isdigit():
                j += 1
            out.append(sql[start:i])
            out.append("?" + sql[i + 1 : j])
            start = i = j
        else:
            i += 1
    out.append(sql[start:])
    return "".join(out)


def split_script(script: str) -> list[str]:
    """Split a script of `;`-separated statements into complete statements.

    SQLite's own `complete_statement` decides where a statement ends, so a `;`
    inside a literal, a comment or a `CREATE TRIGGER ... BEGIN ...; END;` body
    does not split it. Blank or comment-only pieces are dropped; an unfinished
    last statement is kept, for the database to reject with its own error.
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if _has_code(buffer):
                statements.append(buffer.strip())
            buffer = ""
    buffer = buffer[:-1]  # the ";" added after the last piece
    if _has_code(buffer):
        statements.append(buffer.strip())
    return statements


def _has_code(sql: str) -> bool:
    """True unless `sql` is only whitespace, semicolons and comments."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace() or c == ";":
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            return True
    return False
