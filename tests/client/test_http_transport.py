"""HttpTransport, the default transport, against scripted HTTP servers on loopback sockets.

The real shoal upstream (tests/client/test_client.py) covers the ordinary
answers; these servers answer what a shoal service never sends but an
upstream may: chunks, a body ended by closing, `Connection: close`, garbage.
Also AiohttpTransport, the other transport, through the whole client.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from shoal.client import (
    AiohttpTransport,
    HttpTransport,
    Retry,
    ServiceClient,
    TransportError,
    UpstreamError,
    UpstreamUnavailable,
)
from tests.client.upstream import User
from tests.servers import Server
from tests.test_cli_transport import certificate  # noqa: F401  (a fixture)

Answer = Callable[[bytes], bytes]
Start = Callable[..., Awaitable["Scripted"]]


class Scripted:
    """A loopback server answering each request head with `answer(head)`; counts connections."""

    def __init__(self, answer: Answer, *, close: bool = False, delay: float = 0.0) -> None:
        self.answer, self.close, self.delay = answer, close, delay
        self.connections = 0
        self.heads: list[bytes] = []
        self.busy = self.most_busy = 0
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = [
                    int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                ]  # fmt: skip
                if length:
                    await reader.readexactly(length[0])
                self.heads.append(head)
                self.busy += 1
                self.most_busy = max(self.most_busy, self.busy)
                await asyncio.sleep(self.delay)
                self.busy -= 1
                writer.write(self.answer(head))
                await writer.drain()
                if self.close:
                    return
        finally:
            writer.close()


@pytest.fixture
async def scripted() -> AsyncIterator[Start]:
    servers: list[asyncio.Server] = []

    async def start(
        answer: Answer, tls: ssl.SSLContext | None = None, **options: float | bool
    ) -> Scripted:
        script = Scripted(answer, **options)  # type: ignore[arg-type]
        server = await asyncio.start_server(script.handle, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        scheme = "https" if tls else "http"
        script.url = f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return script

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def ok(body: bytes, *extra: bytes) -> Answer:
    def answer(head: bytes) -> bytes:
        lines = [b"HTTP/1.1 200 OK", b"content-length: %d" % len(body), *extra]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    return answer


async def test_chunks_repeated_headers_and_any_case(scripted: Start) -> None:
    def chunked(head: bytes) -> bytes:
        return (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nX-Tag: a\r\nx-tag: b\r\n"
                b"content-type: application/json\r\n\r\n"
                b"5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n")  # fmt: skip

    server = await scripted(chunked)
    async with ServiceClient(server.url) as client:
        for _ in range(3):
            response = await client.get("/")
            assert response.json() == {"a": 1}
            assert response.headers["X-TAG"] == "a, b" and "Content-Type" in response.headers
            assert response.headers.get("missing") is None
    assert server.connections == 1  # chunked answers keep the connection


async def test_a_body_ended_by_closing_and_connection_close(
    scripted: Start,
) -> None:
    def unsized(head: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{\"whole\": true}"

    server = await scripted(unsized, close=True)
    async with ServiceClient(server.url) as client:
        assert (await client.get("/")).json() == {"whole": True}
        assert (await client.get("/")).json() == {"whole": True}
    assert server.connections == 2  # "connection: close" is heeded


async def test_head_answers_have_no_body(scripted: Start) -> None:
    server = await scripted(ok(b"x" * 10))
    async with ServiceClient(server.url) as client:
        response = await client.request("HEAD", "/")
        assert response.status == 200 and response.content == b""
        assert (await client.get("/")).content == b"x" * 10


async def test_requests_are_written_as_sent_and_cannot_be_split(
    scripted: Start,
) -> None:
    server = await scripted(ok(b"{}"))
    async with ServiceClient(server.url + "/api/", headers={"X-Client": "t"}) as client:
        await client.post("/users/a b\r\nx-evil: 1", json={"n": 1})
        head = server.heads[-1].decode()
        assert head.startswith("POST /api/users/a%20b%0D%0Ax-evil:%201 HTTP/1.1\r\n")
        assert "\r\nx-client: t\r\n" in head and "\r\ncontent-length: 7\r\n" in head
        assert "\r\nx-evil" not in head
        with pytest.raises(ValueError, match="line break"):
            await client.get("/", headers={"x-custom": "a\r\nx-evil: 1"})
        assert len(server.heads) == 1  # refused before anything was sent


async def test_at_most_limit_connections_and_the_rest_wait(
    scripted: Start,
) -> None:
    server = await scripted(ok(b"{}"), delay=0.05)
    transport = HttpTransport(limit=2)
    async with ServiceClient(server.url, transport=transport) as client:
        answers = await asyncio.gather(*(client.get("/") for _ in range(8)))
        assert all(a.ok for a in answers)
        # a caller that gives up while waiting for a connection frees its place
        waiting = [asyncio.ensure_future(client.get("/")) for _ in range(4)]
        await asyncio.sleep(0.01)
        waiting[-1].cancel()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert isinstance(results[-1], asyncio.CancelledError)
        assert all(r.ok for r in results[:-1])  # type: ignore[union-attr]
        assert (await client.get("/")).ok
    assert server.connections == 2 and server.most_busy == 2
    assert transport._count == 0 and transport._idle == []


async def test_a_malformed_answer_is_a_lost_connection(scripted: Start) -> None:
    server = await scripted(lambda head: b"HTTP/1.1 abc nonsense\r\n\r\n")
    async with ServiceClient(server.url, retry=Retry(attempts=1)) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get("/")
        assert isinstance(caught.value.__cause__, TransportError)
        assert caught.value.__cause__.sent is True


async def test_a_refused_connection_was_never_sent() -> None:
    transport = HttpTransport()
    await transport.open("http://127.0.0.1:1")
    with pytest.raises(TransportError) as caught:
        await transport.send("GET", "/", [], b"", 1.0)
    assert caught.value.sent is False and transport._count == 0
    await transport.aclose()
    with pytest.raises(ValueError, match="http"):
        await HttpTransport().open("ftp://example.com")


async def test_aiohttp_transport_goes_through_the_whole_client(upstream: Server) -> None:
    async with ServiceClient(upstream.url, transport=AiohttpTransport(limit=4)) as client:
        assert (await client.get("/users/7")).json(type=User) == User(7, "user 7")
        with pytest.raises(UpstreamError) as caught:
            await client.get("/users/404")
        assert caught.value.upstream_status == 404
        answers = await asyncio.gather(*(client.get("/echo/aiohttp") for _ in range(6)))
        assert len({a.json()["port"] for a in answers}) <= 4


async def test_https_with_the_given_certificates(
    scripted: Start,
    certificate: tuple[Path, Path],  # noqa: F811  (the fixture imported above)
) -> None:
    certfile, keyfile = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(certfile, keyfile)
    server = await scripted(ok(b'{"tls": true}'), tls=served)
    trusted = ssl.create_default_context(cafile=str(certfile))
    async with ServiceClient(server.url, transport=HttpTransport(ssl=trusted)) as client:
        assert (await client.get("/")).json() == {"tls": True}
        assert (await client.get("/")).ok
    assert server.connections == 1
    # the system's certificates do not vouch for this one: no connection
    async with ServiceClient(server.url, retry=Retry(attempts=1)) as client:
        with pytest.raises(UpstreamUnavailable):
            await client.get("/")


async def test_a_connection_closed_while_handed_over_is_not_waited_on(scripted: Start) -> None:
    server = await scripted(ok(b"{}"))
    transport = HttpTransport(limit=1)
    await transport.open(server.url)
    assert (await transport.send("GET", "/", [], b"", 1.0)).status == 200
    connection = transport._idle[-1]
    connection.close()  # as if the server closed it just now
    connection.closed = False  # ... and the pool had not heard yet
    answer = await asyncio.wait_for(transport.send("GET", "/", [], b"", 1.0), 2.0)
    assert answer.status == 200  # sent again, at once, on a new connection
    busy = asyncio.ensure_future(transport.send("GET", "/", [], b"", 1.0))
    await asyncio.sleep(0)
    await transport.aclose()  # closing while a call is in flight
    assert (await busy).status == 200
    assert transport._idle == [] and transport._count == 0  # nothing kept after close


async def test_informational_answers_are_skipped_and_sizes_are_bounded(scripted: Start) -> None:
    def early_hints(head: bytes) -> bytes:
        return b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + ok(b'{"n": 1}')(head)

    server = await scripted(early_hints)
    async with ServiceClient(server.url) as client:
        response = await client.get("/")
        assert response.status == 200 and response.json() == {"n": 1}
        assert "link" not in response.headers
        assert (await client.request("HEAD", "/")).status == 200

    big = await scripted(ok(b"x" * 2000))
    many = await scripted(ok(b"{}", *[b"x-h%d: 1" % i for i in range(300)]))
    for server, reason in ((big, "larger than 1000 bytes"), (many, "headers are too large")):
        transport = HttpTransport(max_size=1000)
        once = Retry(attempts=1)
        async with ServiceClient(server.url, transport=transport, retry=once) as client:
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.get("/")
            assert reason in str(caught.value.__cause__)


async def test_closing_fails_the_calls_waiting_for_a_connection(scripted: Start) -> None:
    server = await scripted(ok(b"{}"), delay=0.2)
    transport = HttpTransport(limit=1)
    await transport.open(server.url)
    busy = asyncio.ensure_future(transport.send("GET", "/", [], b"", 1.0))
    waiting = asyncio.ensure_future(transport.send("GET", "/", [], b"", 1.0))
    await asyncio.sleep(0.05)
    await transport.aclose()
    with pytest.raises(TransportError) as caught:
        await waiting  # a failure the client can handle, not a cancellation
    assert caught.value.sent is False
    assert (await busy).status == 200 and transport._count == 0
