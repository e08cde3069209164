"""Trusted proxies: believe `Forwarded` / `X-Forwarded-*` only from proxies you run.

```python
app.add_middleware(TrustedProxies(["10.0.0.0/8", "127.0.0.1"]))
```

A request whose peer is not in `trusted` is left as it is: whatever
forwarding headers it carries are ignored (anyone can send them). From a
trusted peer, the client is found by walking the forwarded chain from the
right (the hop closest to us) past every trusted address: the first address
that is not a trusted proxy is the client (a client cannot forge the hops that
your proxies appended after it). `request.client`, `request.scheme` and
`request.host` are set from it; the scheme and host come from the nearest
proxy's values. `Forwarded` (RFC 7239) is used when present, else
`X-Forwarded-For`, `-Proto` and `-Host`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ..requests import Request
from ..responses import Response

if TYPE_CHECKING:
    from ..app import Handler

__all__ = ["TrustedProxies", "parse_forwarded"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_HOST = re.compile(r"^[A-Za-z0-9.\-_\[\]:]{1,255}$")
_PAIR = re.compile(r'\s*([A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')


def parse_forwarded(values: Iterable[str]) -> list[dict[str, str]]:
    """The elements of `Forwarded` headers (RFC 7239), left to right, keys lowercased."""
    elements: list[dict[str, str]] = []
    for value in values:
        for part in value.split(","):
            element: dict[str, str] = {}
            for pair in part.split(";"):
                match = _PAIR.fullmatch(pair)
                if match:
                    raw = match.group(2)
                    if raw.startswith('"'):
                        raw = raw[1:-1].replace('\\"', '"')
                    element[match.group(1).lower()] = raw
            elements.append(element)
    return elements


def _node(value: str) -> tuple[str, int]:
    """`192.0.2.1`, `"[2001:db8::1]:4711"`, `unknown`, `_hidden` -> (host, port)."""
    value = value.strip()
    port = 0
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        return host, port
    if value.count(":") == 1:
        host, _, tail = value.partition(":")
        return host, int(tail) if tail.isdigit() else 0
    return value, port


class TrustedProxies:
    """Middleware: forwarding headers from the `trusted` addresses or networks only.

    `depth`-free: the chain is walked past trusted hops, so any number of your
    proxies may sit in front. `use_forwarded` / `use_x_forwarded` choose the
    headers honoured.
    """

    def __init__(
        self,
        trusted: Iterable[str],
        *,
        use_forwarded: bool = True,
        use_x_forwarded: bool = True,
    ) -> None:
        networks: list[Network] = []
        for item in trusted:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ConfigurationError(f"not an address or network: {item!r}") from exc
        self.networks = tuple(networks)
        self.use_forwarded = use_forwarded
        self.use_x_forwarded = use_x_forwarded

    def is_trusted(self, host: str) -> bool:
        """Whether `host` (an IP address) is one of the trusted proxies."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def apply(self, request: Request) -> None:
        """Set `request.client`, `.scheme`, `.host` from a trusted proxy's headers."""
        peer = request.client
        if peer is None or not self.is_trusted(peer[0]):
            return
        headers = request.headers
        hops: list[tuple[str, int]] = []
        proto = host = None
        forwarded = (headers.getall("forwarded") or []) if self.use_forwarded else []
        if forwarded:
            elements = parse_forwarded(forwarded)
            hops = [_node(e["for"]) for e in elements if "for" in e]
            proto = next((e["proto"] for e in reversed(elements) if "proto" in e), None)
            host = next((e["host"] for e in reversed(elements) if "host" in e), None)
        elif self.use_x_forwarded:
            for value in headers.getall("x-forwarded-for") or []:
                hops.extend(_node(v) for v in value.split(",") if v.strip())
            protos = ",".join(headers.getall("x-forwarded-proto") or []).split(",")
            hosts = ",".join(headers.getall("x-forwarded-host") or []).split(",")
            proto = protos[-1].strip() or None
            host = hosts[-1].strip() or None
        client = None
        for hop in reversed(hops):
            client = hop
            if not self.is_trusted(hop[0]):
                break
        if client is not None and _is_address(client[0]):
            request.client = client
        if proto is not None and proto.lower() in ("http", "https"):
            request.scheme = proto.lower()
        if host is not None and _HOST.match(host):
            request.host = host

    def __call__(self, call_next: Handler) -> Handler:
        """Wrap `call_next`: fix the request up, then pass it on."""

        async def proxied(request: Request) -> Response:
            self.apply(request)
            return await call_next(request)

        return proxied


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
