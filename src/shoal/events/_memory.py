"""`memory://`: an in-process broker with JetStream's semantics, for unit tests and dev.

Streams keep every message; a message id seen within a stream's duplicate
window is stored once; a durable consumer hands each message to one fetcher,
redelivers it after `nak(delay)` or when its ack wait passes, and forgets it
on `ack`/`term`. `memory://name` is shared by every bus of the process that
names it; a bare `memory://` is private to its bus. Nothing survives the
process: use NATS for anything that must.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from contextlib import suppress
from dataclasses import dataclass, field

from ..errors import EventsError
from ._model import MSG_ID, Stream, subject_matches
from ._transport import ConsumerInfo, Delivery, PullConsumer, StreamInfo, Transport

__all__ = ["MemoryTransport"]


@dataclass(slots=True)
class _Message:
    sequence: int
    subject: str
    data: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class _Consumer:
    name: str
    filter_subject: str
    ack_wait: float
    cursor: int = 0  # index of the next never-delivered message
    due: list[tuple[float, int]] = field(default_factory=list)  # (when, sequence) heap
    inflight: dict[int, float] = field(default_factory=dict)  # sequence -> ack deadline
    deliveries: dict[int, int] = field(default_factory=dict)  # sequence -> times delivered
    redelivered: int = 0


@dataclass(slots=True)
class _Stream:
    config: Stream
    messages: list[_Message] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)  # message id -> when stored
    consumers: dict[str, _Consumer] = field(default_factory=dict)


class _Broker:
    def __init__(self) -> None:
        self.streams: dict[str, _Stream] = {}
        self._changed: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def changed(self) -> asyncio.Condition:
        # a named broker outlives event loops (one per test): one condition per loop
        loop = asyncio.get_running_loop()
        if self._changed is None or self._loop is not loop:
            self._changed, self._loop = asyncio.Condition(), loop
        return self._changed


_BROKERS: dict[str, _Broker] = {}


class _MemoryDelivery(Delivery):
    def __init__(self, stream: _Stream, consumer: _Consumer, message: _Message, broker: _Broker):
        self.subject = message.subject
        self.data = message.data
        self.headers = message.headers
        self.sequence = message.sequence
        self.delivered = consumer.deliveries[message.sequence]
        self._consumer = consumer
        self._broker = broker

    def _settle(self) -> bool:
        return self._consumer.inflight.pop(self.sequence, None) is not None

    async def ack(self) -> None:
        self._settle()

    async def term(self) -> None:
        self._settle()

    async def nak(self, delay: float) -> None:
        if self._settle():
            heapq.heappush(self._consumer.due, (time.monotonic() + delay, self.sequence))
            async with self._broker.changed:
                self._broker.changed.notify_all()


class _MemoryConsumer(PullConsumer):
    def __init__(self, broker: _Broker, stream: _Stream, consumer: _Consumer) -> None:
        self._broker = broker
        self._stream = stream
        self._consumer = consumer

    def _take(self, batch: int) -> tuple[list[Delivery], float | None]:
        now = time.monotonic()
        consumer, stream = self._consumer, self._stream
        for sequence, deadline in list(consumer.inflight.items()):  # ack wait passed
            if deadline <= now:
                del consumer.inflight[sequence]
                heapq.heappush(consumer.due, (now, sequence))
        taken: list[_Message] = []
        while consumer.due and consumer.due[0][0] <= now and len(taken) < batch:
            _, sequence = heapq.heappop(consumer.due)
            taken.append(stream.messages[sequence - 1])
            consumer.redelivered += 1
        while consumer.cursor < len(stream.messages) and len(taken) < batch:
            message = stream.messages[consumer.cursor]
            consumer.cursor += 1
            if subject_matches(consumer.filter_subject, message.subject):
                taken.append(message)
        out: list[Delivery] = []
        for message in taken:
            consumer.deliveries[message.sequence] = consumer.deliveries.get(message.sequence, 0) + 1
            consumer.inflight[message.sequence] = now + consumer.ack_wait
            out.append(_MemoryDelivery(stream, consumer, message, self._broker))
        wakes = [when for when, _ in consumer.due[:1]] + list(consumer.inflight.values())
        return out, (min(wakes) - now if wakes else None)

    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        async with self._broker.changed:
            while True:
                out, next_due = self._take(batch)
                remaining = deadline - time.monotonic()
                if out or remaining <= 0:
                    return out
                wait = remaining if next_due is None else max(0.001, min(remaining, next_due))
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._broker.changed.wait(), wait)

    async def close(self) -> None:
        return None


class MemoryTransport(Transport):
    """The in-process broker behind `EventBus("memory://")`."""

    def __init__(self, name: str) -> None:
        if name:
            self._broker = _BROKERS.setdefault(name, _Broker())
        else:
            self._broker = _Broker()
        self._open = False

    @property
    def connected(self) -> bool:
        return self._open

    async def connect(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def ping(self, timeout: float) -> None:
        return None

    async def ensure_stream(self, stream: Stream) -> None:
        if stream.name not in self._broker.streams:  # an existing one is left as it is
            self._broker.streams[stream.name] = _Stream(stream)

    def _stream_for(self, subject: str) -> _Stream:
        for stream in self._broker.streams.values():
            if any(subject_matches(pattern, subject) for pattern in stream.config.subjects):
                return stream
        raise EventsError(f"no stream stores subject {subject!r}: declare one on the bus")

    async def publish(
        self, subject: str, data: bytes, headers: dict[str, str], timeout: float
    ) -> bool:
        stream = self._stream_for(subject)
        now = time.monotonic()
        message_id = headers.get(MSG_ID)
        window = stream.config.duplicate_window
        if message_id is not None:
            seen = stream.seen.get(message_id)
            if seen is not None and now - seen < window:
                return False
            stream.seen[message_id] = now
            if len(stream.seen) > 10_000:  # forget ids past the window
                stream.seen = {k: t for k, t in stream.seen.items() if now - t < window}
        sequence = len(stream.messages) + 1
        stream.messages.append(_Message(sequence, subject, data, dict(headers)))
        async with self._broker.changed:
            self._broker.changed.notify_all()
        return True

    async def consumer(
        self, subject: str, durable: str, *, ack_wait: float, max_ack_pending: int
    ) -> PullConsumer:
        stream = self._stream_for(subject)
        state = stream.consumers.get(durable)
        if state is None:
            state = stream.consumers[durable] = _Consumer(durable, subject, ack_wait)
        return _MemoryConsumer(self._broker, stream, state)

    async def streams(self, name: str | None = None) -> list[StreamInfo]:
        return [
            _info(stream)
            for stream in self._broker.streams.values()
            if name is None or stream.config.name == name
        ]


def _info(stream: _Stream) -> StreamInfo:
    consumers = tuple(
        ConsumerInfo(
            name=c.name,
            filter_subject=c.filter_subject,
            pending=sum(
                1
                for m in stream.messages[c.cursor :]
                if subject_matches(c.filter_subject, m.subject)
            )
            + len(c.due),
            ack_pending=len(c.inflight),
            redelivered=c.redelivered,
        )
        for c in stream.consumers.values()
    )
    return StreamInfo(
        stream.config.name,
        stream.config.subjects,
        len(stream.messages),
        stream.config.replicas,
        consumers,
    )
