"""NATS JetStream through nats-py: the transport behind `EventBus("nats://...")`."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client, Server
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from ..errors import EventsError
from ._model import Stream
from ._transport import ConsumerInfo, Delivery, PullConsumer, StreamInfo, Transient, Transport

__all__ = ["NatsTransport"]

logger = logging.getLogger("shoal.events")

MAX_RECONNECT_WAIT = 5.0
"""The longest pause between two reconnection attempts (seconds)."""

# What may succeed when tried again: the connection is down or reconnecting,
# the server did not answer in time, or JetStream has no leader right now (a
# cluster electing one answers 503, or nobody answers the stream's subject).
_TRANSIENT: tuple[type[BaseException], ...] = (
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.NoRespondersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoServersError,
    nats.errors.FlushTimeoutError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.ServerError,
    TimeoutError,
    OSError,
)


def _translate(exc: BaseException, what: str) -> Exception:
    if isinstance(exc, _TRANSIENT):
        return Transient(f"{what}: {exc!r}")
    if isinstance(exc, nats.js.errors.APIError):
        return EventsError(f"{what}: the broker refused it ({exc.description or exc!r})")
    return EventsError(f"{what}: {exc!r}")


class _NatsDelivery(Delivery):
    __slots__ = ("_msg", "data", "delivered", "headers", "sequence", "subject")

    def __init__(self, msg: Msg) -> None:
        self._msg = msg
        self.subject = msg.subject
        self.data = msg.data
        self.headers: Mapping[str, str] = msg.headers or {}
        metadata = msg.metadata
        self.delivered = metadata.num_delivered or 1
        self.sequence = metadata.sequence.stream if metadata.sequence else 0

    async def ack(self) -> None:
        await self._msg.ack()

    async def nak(self, delay: float) -> None:
        await self._msg.nak(delay=delay)

    async def term(self) -> None:
        await self._msg.term()


class _NatsConsumer(PullConsumer):
    def __init__(self, subscription: JetStreamContext.PullSubscription) -> None:
        self._subscription = subscription

    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        try:
            msgs = await self._subscription.fetch(batch, timeout=timeout)
        except TimeoutError:  # nats-py raises its own or asyncio's: nothing came, no error
            return []
        except Exception as exc:
            raise _translate(exc, "fetch") from exc
        return [_NatsDelivery(msg) for msg in msgs]

    async def close(self) -> None:
        with suppress(Exception):  # the connection may be gone already; nothing to undo
            await self._subscription.unsubscribe()


class NatsTransport(Transport):
    """One nats-py connection (reconnecting forever) and its JetStream context."""

    def __init__(
        self,
        servers: list[str],
        *,
        name: str | None,
        connect_timeout: float,
        reconnect_wait: float,
        drain_timeout: float,
        api_timeout: float,
    ) -> None:
        self.servers = servers
        self.api_timeout = api_timeout
        self.name = name
        self.connect_timeout = connect_timeout
        self.reconnect_wait = reconnect_wait
        self.drain_timeout = drain_timeout
        self.reconnects = 0
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def connect(self) -> None:
        self._closing = False

        async def disconnected() -> None:
            if not self._closing:
                logger.warning("event broker disconnected; reconnecting")

        async def reconnected() -> None:
            self.reconnects += 1
            url = self._nc.connected_url if self._nc is not None else None
            logger.warning("event broker reconnected (%s)", url.netloc if url else "?")

        async def error(exc: Exception) -> None:
            logger.debug("event broker connection error: %r", exc)

        try:
            self._nc = await nats.connect(
                servers=self.servers,
                name=self.name,
                connect_timeout=max(1, round(self.connect_timeout)),
                allow_reconnect=True,
                # at start, give up after two tries per server (the bus retries with
                # backoff until its connect timeout); once connected, reconnect forever
                max_reconnect_attempts=1,
                reconnect_time_wait=self.reconnect_wait,
                reconnect_to_server_handler=self._next_server,
                drain_timeout=max(1, round(self.drain_timeout)),
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
            )
        except Exception as exc:
            raise _translate(exc, f"connecting to {', '.join(self.servers)}") from exc
        self._nc.options["max_reconnect_attempts"] = -1
        self._js = self._nc.jetstream(timeout=self.api_timeout)

    def _next_server(self, servers: list[Server], info: dict[str, Any]) -> tuple[Server, float]:
        """Reconnect to the server tried least, after an exponential, jittered back-off.

        A healthy node of a cluster (no failed attempt yet) is tried after
        `reconnect_wait / 2` or so; a broker that stays down is tried less
        and less often, up to every `MAX_RECONNECT_WAIT` seconds.
        """
        server = min(servers, key=lambda s: s.reconnects)
        delay = min(MAX_RECONNECT_WAIT, self.reconnect_wait * 2 ** min(server.reconnects, 10))
        return server, delay * random.uniform(0.5, 1.0)

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise Transient("not connected to the event broker")
        return self._js

    async def close(self) -> None:
        self._closing = True
        nc, self._nc, self._js = self._nc, None, None
        if nc is None or nc.is_closed:
            return
        with suppress(Exception):  # nothing to flush to when the broker is gone
            await nc.flush(timeout=max(1, round(self.drain_timeout)))
        try:
            await nc.drain()
        except Exception:
            await nc.close()

    async def ping(self, timeout: float) -> None:
        if self._nc is None or not self._nc.is_connected:
            raise Transient("not connected to the event broker")
        try:
            await self.js.account_info()
        except Exception as exc:
            raise _translate(exc, "JetStream account info") from exc

    async def ensure_stream(self, stream: Stream) -> None:
        config = api.StreamConfig(
            name=stream.name,
            subjects=list(stream.subjects),
            num_replicas=stream.replicas,
            max_age=stream.max_age,
            duplicate_window=stream.duplicate_window,
            storage=api.StorageType.FILE if stream.storage == "file" else api.StorageType.MEMORY,
        )
        try:
            try:
                info = await self.js.stream_info(stream.name)
            except nats.js.errors.NotFoundError:
                await self.js.add_stream(config)
                return
            current = info.config
            differs = [
                name
                for name, have, want in (
                    ("subjects", sorted(current.subjects or []), sorted(stream.subjects)),
                    ("replicas", current.num_replicas or 1, stream.replicas),
                    ("max_age", current.max_age or None, config.max_age or None),
                    ("duplicate_window", current.duplicate_window, config.duplicate_window),
                )
                if have != want
            ]
            if differs:  # another service may own it: say so, change nothing
                logger.warning(
                    "stream %s exists with other settings (%s) than declared here; "
                    "leaving it as it is",
                    stream.name,
                    ", ".join(differs),
                )
        except Exception as exc:
            raise _translate(exc, f"declaring stream {stream.name}") from exc

    async def publish(
        self, subject: str, data: bytes, headers: dict[str, str], timeout: float
    ) -> bool:
        try:
            ack = await self.js.publish(subject, data, timeout=timeout, headers=headers)
        except Exception as exc:
            raise _translate(exc, f"publishing to {subject}") from exc
        return not ack.duplicate

    async def consumer(
        self, subject: str, durable: str, *, ack_wait: float, max_ack_pending: int
    ) -> PullConsumer:
        config = api.ConsumerConfig(
            durable_name=durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=ack_wait,
            max_deliver=-1,  # the bus counts deliveries and dead-letters itself
            max_ack_pending=max_ack_pending,
            filter_subject=subject,
        )
        try:
            subscription = await self.js.pull_subscribe(subject, durable=durable, config=config)
        except Exception as exc:
            raise _translate(exc, f"creating consumer {durable} on {subject}") from exc
        return _NatsConsumer(subscription)

    async def streams(self, name: str | None = None) -> list[StreamInfo]:
        if self._nc is None:
            raise Transient("not connected to the event broker")
        # listing asks every server of a cluster: slower than one request, more patience
        jsm = self._nc.jsm(timeout=max(10.0, self.api_timeout))
        try:
            found = []
            infos = [await jsm.stream_info(name)] if name else await jsm.streams_info()
            for info in infos:
                consumers = await jsm.consumers_info(info.config.name or "")
                found.append(
                    StreamInfo(
                        name=info.config.name or "",
                        subjects=tuple(info.config.subjects or ()),
                        messages=info.state.messages,
                        replicas=info.config.num_replicas or 1,
                        consumers=tuple(_consumer_info(c) for c in consumers),
                    )
                )
            return found
        except Exception as exc:
            raise _translate(exc, "listing streams") from exc


def _consumer_info(info: Any) -> ConsumerInfo:
    return ConsumerInfo(
        name=info.name,
        filter_subject=info.config.filter_subject or "",
        pending=info.num_pending or 0,
        ack_pending=info.num_ack_pending or 0,
        redelivered=info.num_redelivered or 0,
    )
