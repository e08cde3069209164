"""`Settings`: typed configuration from environment variables and a `.env` file.

```python
from shoal import Secret, Settings

class Config(Settings):
    env_prefix = "NOTES_"              # NOTES_DATABASE_URL, NOTES_PAGE_SIZE, ...
    env_file = ".env"                  # optional; the real environment wins over it
    database_url: Secret[str]          # required; never printed
    page_size: int = 20
    debug: bool = False

config = Config.load()                 # SettingsError, one line, if anything is wrong
db = Database(config.database_url.reveal())
```

A subclass declares typed fields as on any `msgspec.Struct` (it is one,
frozen). `load()` reads each field from the variable `env_prefix + NAME`
(the field's name upper-cased), converts the text to the field's type and
validates it. Every variable that is missing or wrong is collected into one
`SettingsError` whose message is one line, naming each variable and what was
expected; the value is quoted back unless the field is a `Secret`.

Text to type (the rules are in `_convert`):

- `bool`: `true/false`, `yes/no`, `on/off`, `1/0`, any case.
- `int`, `float`, `Decimal`, `datetime`, `UUID`, enums, `Literal[...]`: as
  msgspec converts them from strings; `Annotated[int, Meta(ge=1)]`
  constraints are checked.
- `timedelta`: `30s`, `500ms`, `5m`, `1h30m`, `2d`, a plain number of
  seconds, or ISO 8601 (`PT30S`).
- `list[X]`, `set[X]`, `tuple[X, ...]`: comma-separated (`a, b, c`) or a JSON
  array; each item converted as an `X`.
- `dict`, a `Struct` or a dataclass: a JSON object. A nested `Struct` may also
  be given field by field: `NOTES_DB__POOL_SIZE=10` sets `db.pool_size`.
- `X | None`: an empty value is `None`.
- `Secret[X]`: converted as an `X`, then wrapped so that `repr`, `str`, logs
  and error messages show `**********`; `.reveal()` returns the value.

Precedence: the process environment, then the `.env` file, then the field's
default. The `.env` file is read only if it exists (see `read_env_file` for
its syntax). A variable with the prefix that names no field but is close to
one (`NOTES_DATABSE_URL`) is logged as a warning, by name only.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import logging
import os
import re
import types
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Final,
    Generic,
    Literal,
    Self,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)
from uuid import UUID

import msgspec

from ._dotenv import read_env_file
from .errors import SettingsError

__all__ = ["Secret", "Settings", "SettingsError", "read_env_file"]

logger = logging.getLogger("shoal.settings")

T = TypeVar("T")

MASK: Final = "**********"
"""What a `Secret` shows instead of its value."""


class Secret(Generic[T]):
    """A value that is never printed: `repr`, `str` and f-strings show `**********`.

    `reveal()` returns the value, so the one place a secret leaves its wrapper
    is easy to find in a review. msgspec refuses to encode a `Secret`, so a
    `Settings` object holding one cannot be sent as JSON by mistake.
    """

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        """The secret value itself."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


_FROM_CLASS: Any = object()  # load(env_file=...) not given: use the class's env_file


if TYPE_CHECKING:
    # mypy would make every subclass spell out `frozen=True` (a non-frozen
    # dataclass may not inherit from a frozen one); at run time msgspec
    # inherits it, so subclasses are frozen without saying so.
    _Frozen = msgspec.Struct
else:

    class _Frozen(msgspec.Struct, frozen=True):
        pass


class Settings(_Frozen):
    """Base class of a service's typed settings; see the module docstring.

    Class options (plain class attributes, not fields):

    - `env_prefix`: prepended to each upper-cased field name (default none).
    - `env_file`: a `.env` file read when it exists (default none).

    Declare required fields before fields with defaults, or define the
    subclass with `kw_only=True`, as with any `msgspec.Struct`.
    """

    env_prefix: ClassVar[str] = ""
    env_file: ClassVar[str | os.PathLike[str] | None] = None

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        env_file: str | os.PathLike[str] | None = _FROM_CLASS,
    ) -> Self:
        """Read, convert and validate every field; raise `SettingsError` if any is wrong.

        `environ` defaults to `os.environ`; `env_file` to the class's. Values
        in `environ` win over the file's.
        """
        path = cls.env_file if env_file is _FROM_CLASS else env_file
        variables: dict[str, str] = {}
        if path is not None and Path(path).is_file():
            variables.update(read_env_file(path))
        variables.update(os.environ if environ is None else environ)
        problems: list[tuple[str, str]] = []
        values = _gather(cls, cls.env_prefix, variables, problems)
        _warn_about_typos(cls, variables)
        if problems:
            raise SettingsError(problems)
        return cls(**values)

    @classmethod
    def variables(cls) -> list[tuple[str, str]]:
        """Each variable this class reads, with what it expects (for docs and `--help`)."""
        rows: list[tuple[str, str]] = []
        _describe_fields(cls, cls.env_prefix, rows)
        return rows


# -- reading fields -------------------------------------------------------------------


def _gather(
    struct: type[msgspec.Struct],
    prefix: str,
    variables: Mapping[str, str],
    problems: list[tuple[str, str]],
) -> dict[str, Any]:
    """The converted value of each field of `struct` that has a variable."""
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(struct):
        name = prefix + field.name.upper()
        raw = variables.get(name)
        nested = _nested_struct(field.type)
        if raw is None and nested is not None:
            sub_prefix = name + "__"
            if field.required or any(key.startswith(sub_prefix) for key in variables):
                before = len(problems)
                sub_values = _gather(nested, sub_prefix, variables, problems)
                if len(problems) == before:
                    values[field.name] = nested(**sub_values)
            continue
        if raw is None:
            if field.required:
                problems.append((name, f"required, not set (expected {_expected(field.type)})"))
            continue
        try:
            values[field.name] = _convert(raw, field.type)
        except _Invalid as exc:
            problems.append((name, _complaint(raw, field.type, exc.detail)))
    return values


def _nested_struct(annotation: Any) -> type[msgspec.Struct] | None:
    """The Struct type a field holds (possibly inside `| None`), else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        annotation = members[0] if len(members) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    return None


def _complaint(raw: str, annotation: Any, detail: str | None) -> str:
    expected = _expected(annotation)
    if _is_secret(annotation):  # neither the value nor msgspec's detail, which may quote it
        return f"expected {expected}, got a value not shown (secret)"
    shown = raw if len(raw) <= 60 else raw[:57] + "..."
    return f"expected {expected}, got {shown!r}" + (f" ({detail})" if detail else "")


def _is_secret(annotation: Any, seen: frozenset[Any] = frozenset()) -> bool:
    """Whether a value of `annotation` may hold a `Secret` anywhere inside it."""
    if get_origin(annotation) is Secret:
        return True
    if annotation in seen:  # a recursive type
        return False
    seen = seen | {annotation}
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return any(_is_secret(field.type, seen) for field in msgspec.structs.fields(annotation))
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        hints = get_type_hints(annotation)
        return any(_is_secret(hints[field.name], seen) for field in dataclasses.fields(annotation))
    if get_origin(annotation) is Literal:
        return False
    return any(_is_secret(arg, seen) for arg in get_args(annotation))


def _warn_about_typos(cls: type[Settings], variables: Mapping[str, str]) -> None:
    if not cls.env_prefix:
        return  # without a prefix every variable of the process would be a suspect
    known = [name for name, _ in cls.variables()]
    for name in variables:
        if name.startswith(cls.env_prefix) and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if close:
                logger.warning(
                    "%s names no setting of %s; did you mean %s?", name, cls.__name__, close[0]
                )


def _describe_fields(
    struct: type[msgspec.Struct], prefix: str, rows: list[tuple[str, str]]
) -> None:
    for field in msgspec.structs.fields(struct):
        name = prefix + field.name.upper()
        secret = " (secret)" if _is_secret(field.type) else ""
        rows.append((name, _expected(field.type) + secret))
        nested = _nested_struct(field.type)
        if nested is not None:
            _describe_fields(nested, name + "__", rows)


# -- converting text --------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail


_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SEQUENCES: dict[Any, Callable[[list[Any]], Any]] = {
    list: list,
    set: set,
    frozenset: frozenset,
    tuple: tuple,
}


def _convert(raw: str, annotation: Any) -> Any:
    """`raw` as an `annotation`; `_Invalid` if it is not one."""
    origin = get_origin(annotation)
    if origin is Annotated:
        value = _convert(raw, get_args(annotation)[0])
        try:  # the constraints (Meta(ge=1), ...) on the converted value
            return msgspec.convert(value, annotation, strict=False)
        except msgspec.ValidationError as exc:
            raise _Invalid() from exc
    if origin is Secret:
        return Secret(_convert(raw, get_args(annotation)[0]))
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) < len(get_args(annotation)) and not raw.strip():
            return None
        if len(members) == 1:
            return _convert(raw, members[0])
        return _msgspec(raw, annotation)
    if annotation is str or annotation is Any:
        return raw
    if annotation is bool:
        word = raw.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise _Invalid()
    if annotation is timedelta:
        return _duration(raw)
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return annotation(raw)
    if origin in _SEQUENCES:
        return _sequence(raw, annotation, origin)
    if _is_json_object(annotation):
        return _msgspec_json(raw, annotation)
    return _msgspec(raw, annotation)


def _msgspec(raw: str, annotation: Any) -> Any:
    try:
        return msgspec.convert(raw.strip(), annotation, strict=False)
    except msgspec.ValidationError as exc:
        raise _Invalid() from exc


def _duration(raw: str) -> timedelta:
    text = raw.strip().lower().replace(" ", "")
    try:
        return timedelta(seconds=float(text))
    except (ValueError, OverflowError):
        pass
    if text and _DURATION.sub("", text) == "":
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(text))
        try:
            return timedelta(seconds=seconds)
        except OverflowError as exc:
            raise _Invalid() from exc
    try:  # ISO 8601: PT30S, P1DT2H
        return msgspec.convert(raw.strip().upper(), timedelta)
    except msgspec.ValidationError as exc:
        raise _Invalid() from exc


def _sequence(raw: str, annotation: Any, origin: Any) -> Any:
    args = get_args(annotation)
    item_type: Any = Any if not args else args[0]
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return _msgspec_json(raw, annotation)  # a fixed-length tuple: JSON only
    text = raw.strip()
    if text.startswith("["):
        try:
            items: list[Any] = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            raise _Invalid(str(exc)) from exc
        if not isinstance(items, list):
            raise _Invalid()
        items = [
            item if isinstance(item, str) else msgspec.json.encode(item).decode() for item in items
        ]
    else:
        items = [item.strip() for item in text.split(",") if item.strip()]
    converted = []
    for position, item in enumerate(items, 1):
        try:
            converted.append(_convert(item, item_type))
        except _Invalid as exc:
            raise _Invalid(f"item {position}") from exc
    return _SEQUENCES[origin](converted)


def _msgspec_json(raw: str, annotation: Any) -> Any:
    try:
        return msgspec.json.decode(raw, type=annotation, strict=False, dec_hook=_secret_hook)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _Invalid(str(exc)) from exc


def _secret_hook(annotation: Any, value: Any) -> Any:
    """msgspec's hook for a `Secret[X]` inside JSON (a Struct field, a list item)."""
    if get_origin(annotation) is Secret:
        return Secret(msgspec.convert(value, get_args(annotation)[0], strict=False))
    raise NotImplementedError(f"{annotation!r} cannot be read from JSON")


def _is_json_object(annotation: Any) -> bool:
    origin = get_origin(annotation) or annotation
    if origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return True
    return isinstance(annotation, type) and (
        issubclass(annotation, msgspec.Struct) or dataclasses.is_dataclass(annotation)
    )


# -- saying what is expected ------------------------------------------------------------

_NAMES: dict[Any, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean (true/false, yes/no, on/off, 1/0)",
    Decimal: "a decimal number",
    timedelta: "a duration (30s, 500ms, 5m, 1h, or seconds)",
    datetime: "an ISO 8601 date and time",
    date: "an ISO 8601 date",
    time: "an ISO 8601 time",
    UUID: "a UUID",
}
_CONSTRAINTS = (
    ("gt", ">"),
    ("ge", ">="),
    ("lt", "<"),
    ("le", "<="),
    ("min_length", "of length >="),
    ("max_length", "of length <="),
    ("pattern", "matching"),
)


def _expected(annotation: Any) -> str:
    """What a value of `annotation` looks like, in words."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extras = get_args(annotation)
        words = [_expected(base)]
        for meta in extras:
            if isinstance(meta, msgspec.Meta):
                words += [
                    f"{op} {getattr(meta, attr)!r}"
                    for attr, op in _CONSTRAINTS
                    if getattr(meta, attr) is not None
                ]
        return " ".join(words)
    if origin is Secret:
        return _expected(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        text = " or ".join(_expected(arg) for arg in members)
        return text + (" (empty for none)" if len(members) < len(get_args(annotation)) else "")
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in get_args(annotation))
    if origin in _SEQUENCES:
        args = get_args(annotation)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return "a JSON array"
        item = _expected(args[0]) if args else "a value"
        return f"a comma-separated or JSON list, each {item}"
    if annotation in _NAMES:
        return _NAMES[annotation]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(repr(member.value) for member in annotation)
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "a path"
    if _is_json_object(annotation):
        name = getattr(annotation, "__name__", "object")
        return "a JSON object" + ("" if name == "dict" else f" ({name})")
    return f"a {getattr(annotation, '__name__', annotation)}"
