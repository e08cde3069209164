""".env files: `KEY=VALUE` lines, read by `shoal.Settings` (see `read_env_file`)."""

from __future__ import annotations

import os
import re

from .errors import SettingsError

__all__ = ["read_env_file"]


class _BadValue(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """The variables a `.env` file sets; `SettingsError` naming the line if it is malformed.

    One `KEY=VALUE` a line; blank lines and lines starting with `#` are
    skipped; `export KEY=VALUE` is accepted. A value may be bare (trailing
    spaces and a ` # comment` are dropped), in single quotes (taken as is), or
    in double quotes (`\\n`, `\\t`, `\\"`, `\\\\` are escapes). No variable
    expansion, no multi-line values. A malformed line is reported by number,
    never by content, since it may hold a secret.
    """
    name = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as file:  # a BOM is not part of the first key
            lines = file.read().splitlines()
    except UnicodeDecodeError as exc:
        raise SettingsError([(name, f"not UTF-8 text (byte {exc.start})")]) from None
    except OSError as exc:
        raise SettingsError([(name, f"cannot be read ({exc.strerror})")]) from None
    variables: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        match = _LINE.fullmatch(text)
        if match is None:
            raise SettingsError([(f"{name}:{number}", "expected KEY=VALUE")])
        key, value = match.groups()
        try:
            variables[key] = _env_value(value)
        except _BadValue as exc:
            raise SettingsError([(f"{name}:{number}", exc.detail)]) from None
    return variables


def _env_value(value: str) -> str:
    if value[:1] == "'":
        end = value.find("'", 1)
        if end < 0:
            raise _BadValue("unterminated single quote")
        _only_comment_after(value[end + 1 :])
        return value[1:end]
    if value[:1] == '"':
        chars: list[str] = []
        index = 1
        while index < len(value):
            char = value[index]
            if char == "\\" and index + 1 < len(value):
                following = value[index + 1]
                chars.append(_ESCAPES.get(following, "\\" + following))
                index += 2
                continue
            if char == '"':
                _only_comment_after(value[index + 1 :])
                return "".join(chars)
            chars.append(char)
            index += 1
        raise _BadValue("unterminated double quote")
    comment = re.search(r"\s#", value)
    return (value[: comment.start()] if comment else value).strip()


def _only_comment_after(rest: str) -> None:
    rest = rest.strip()
    if rest and not rest.startswith("#"):
        raise _BadValue("text after the closing quote")
