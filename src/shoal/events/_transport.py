"""The one small interface between the bus and a broker (NATS JetStream, or in-process).

The bus holds every rule (retries, backoff, dead letters, statistics); a
transport only moves bytes. `Transient` marks what may succeed if tried again
(a broker restarting, a cluster electing a leader); anything else a transport
raises is an `EventsError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from ._model import Stream

__all__ = ["ConsumerInfo", "Delivery", "PullConsumer", "StreamInfo", "Transient", "Transport"]


class Transient(Exception):
    """The broker could not do it now; the same call may succeed later."""


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What `shoal events` prints about a stream."""

    name: str
    subjects: tuple[str, ...]
    messages: int
    replicas: int
    consumers: tuple[ConsumerInfo, ...]


@dataclass(frozen=True, slots=True)
class ConsumerInfo:
    """What `shoal events` prints about a durable consumer."""

    name: str
    filter_subject: str
    pending: int
    ack_pending: int
    redelivered: int


class Delivery(ABC):
    """One message handed to a consumer, to be acked, naked or terminated exactly once."""

    subject: str
    data: bytes
    headers: Mapping[str, str]
    delivered: int
    sequence: int

    @abstractmethod
    async def ack(self) -> None:
        """Done: never deliver it again."""

    @abstractmethod
    async def nak(self, delay: float) -> None:
        """Failed: deliver it again after `delay` seconds."""

    @abstractmethod
    async def term(self) -> None:
        """Give up on it: never deliver it again (it went to the dead letter)."""


class PullConsumer(ABC):
    """A durable consumer's pull handle."""

    @abstractmethod
    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        """Up to `batch` messages, waiting up to `timeout` seconds for the first."""

    @abstractmethod
    async def close(self) -> None:
        """Stop pulling (the durable consumer stays on the broker)."""


class Transport(ABC):
    """A connection to a broker."""

    @property
    @abstractmethod
    def connected(self) -> bool:
        """True while the broker can be reached."""

    reconnects: int = 0

    @abstractmethod
    async def connect(self) -> None:
        """Connect (raise `Transient` when the broker cannot be reached)."""

    @abstractmethod
    async def close(self) -> None:
        """Flush what is buffered and disconnect."""

    @abstractmethod
    async def ensure_stream(self, stream: Stream) -> None:
        """Create `stream`, or update it to these settings."""

    @abstractmethod
    async def publish(
        self, subject: str, data: bytes, headers: dict[str, str], timeout: float
    ) -> bool:
        """Store one message (its id is in `headers`); False when it was a duplicate."""

    @abstractmethod
    async def consumer(
        self, subject: str, durable: str, *, ack_wait: float, max_ack_pending: int
    ) -> PullConsumer:
        """Create or bind the durable pull consumer `durable` on `subject`."""

    @abstractmethod
    async def ping(self, timeout: float) -> None:
        """Round trip to the broker (raise `Transient` when it does not answer)."""

    @abstractmethod
    async def streams(self, name: str | None = None) -> list[StreamInfo]:
        """Every stream (or the one named) with its consumers (for `shoal events`)."""
