"""Multi-valued, read-only mappings for headers and query strings, and `State`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl

__all__ = ["Headers", "QueryParams", "State"]

_T = TypeVar("_T")


class _MultiMapping(Mapping[str, str]):
    """A read-only mapping where a key may hold several values.

    `m[key]` and `m.get(key)` give the first value; `m.getall(key)` gives all.
    """

    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)
        index: dict[str, list[str]] = {}
        for key, value in self._items:
            index.setdefault(self._norm(key), []).append(value)
        self._index = index

    @staticmethod
    def _norm(key: str) -> str:
        return key

    def __getitem__(self, key: str) -> str:
        return self._index[self._norm(key)][0]

    @overload
    def get(self, key: str, default: None = None) -> str | None: ...

    @overload
    def get(self, key: str, default: str | _T) -> str | _T: ...

    def get(self, key: str, default: Any = None) -> Any:
        """The first value of `key`, or `default` (no exception raised inside: a hot path)."""
        values = self._index.get(self._norm(key))
        return values[0] if values is not None else default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._norm(key) in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def getall(self, key: str, default: _T | None = None) -> list[str] | _T | None:
        """Every value of `key`, in order; `default` when there is none."""
        values = self._index.get(self._norm(key))
        return list(values) if values is not None else default

    def values_of(self, key: str) -> list[str] | None:
        """Every value of `key` as the mapping holds them (read-only, not a copy), or None.

        The cheap form of `getall` for code that only reads: typed parameters
        look their values up with it on every request.
        """
        return self._index.get(self._norm(key))

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (key, value) pair in the original order, repeats included."""
        return list(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _MultiMapping):
            return sorted(self._items) == sorted(other._items)
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"


class Headers(_MultiMapping):
    """HTTP headers: case-insensitive keys, several values per key allowed."""

    __slots__ = ()

    @staticmethod
    def _norm(key: str) -> str:
        return key.lower()


class QueryParams(_MultiMapping):
    """The parsed query string: `?tag=a&tag=b` gives `getall("tag") == ["a", "b"]`."""

    __slots__ = ()

    # Keys are taken as they are: the lookups below skip `_norm` (a call each).

    def get(self, key: str, default: Any = None) -> Any:
        """The first value of `key`, or `default`."""
        values = self._index.get(key)
        return values[0] if values is not None else default

    def values_of(self, key: str) -> list[str] | None:
        """Every value of `key` as the mapping holds them (read-only, not a copy), or None."""
        return self._index.get(key)

    @classmethod
    def parse(cls, query_string: str) -> QueryParams:
        """Parse `a=1&b=2` (percent-decoding, `+` as space, blanks kept)."""
        if "%" in query_string or "+" in query_string or ";" in query_string:
            pairs = parse_qsl(query_string, keep_blank_values=True)
        elif "&" not in query_string:  # one parameter, or none: no loops
            params = cls.__new__(cls)
            if query_string:
                key, _, value = query_string.partition("=")
                params._items, params._index = [(key, value)], {key: [value]}
            else:
                params._items, params._index = [], {}
            return params
        else:
            # nothing to decode (the usual case): a plain split is several
            # times faster than parse_qsl and gives the same pairs
            pairs = []
            for part in query_string.split("&"):
                if part:
                    key, _, value = part.partition("=")
                    pairs.append((key, value))
        # built here rather than by __init__: one pass, no generator, no _norm
        params = cls.__new__(cls)
        params._items = pairs
        index: dict[str, list[str]] = {}
        for key, value in pairs:
            values = index.get(key)
            if values is None:
                index[key] = [value]
            else:
                values.append(value)
        params._index = index
        return params


class State:
    """A plain attribute bag: `request.state.user = ...`, `app.state.cache = ...`."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # only called for missing attributes
        raise AttributeError(f"state has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def __repr__(self) -> str:
        return f"State({self.__dict__!r})"
