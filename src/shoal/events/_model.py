"""The value types of `shoal.events`: streams, received events, statistics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Event", "EventStatistics", "Stream", "SubjectStatistics", "subject_matches"]

REQUEST_ID = "X-Request-ID"
TRACEPARENT = "traceparent"
MSG_ID = "Nats-Msg-Id"


@dataclass(frozen=True, slots=True)
class Stream:
    """A JetStream stream the bus creates at startup, or checks and updates.

    `subjects` are the subjects it stores (NATS wildcards: `*` one token, `>`
    the rest). `replicas` (1, or 3 on a cluster) is how many servers keep a
    copy; `max_age` (seconds, None for ever) how long messages are kept;
    `duplicate_window` (seconds) how long a message id is remembered for
    de-duplication; `storage` is "file" (survives a restart) or "memory".
    """

    name: str
    subjects: tuple[str, ...]
    replicas: int = 1
    max_age: float | None = None
    duplicate_window: float = 120.0
    storage: Literal["file", "memory"] = "file"


@dataclass(frozen=True, slots=True)
class Event:
    """One delivered message, as a subscriber sees it (declare a parameter `event: Event`).

    `id` is the message id the publisher gave (`Nats-Msg-Id`), the key for
    idempotent consumers; `delivered` counts deliveries (1 the first time);
    `consumer` is the durable consumer's name; `sequence` the stream sequence.
    """

    id: str
    subject: str
    data: bytes
    headers: Mapping[str, str]
    delivered: int
    consumer: str
    sequence: int = 0

    @property
    def request_id(self) -> str | None:
        """The request id of the HTTP request (or event) that published this one."""
        return self.headers.get(REQUEST_ID)

    @property
    def traceparent(self) -> str | None:
        """The W3C trace context the publisher sent."""
        return self.headers.get(TRACEPARENT)


@dataclass(frozen=True, slots=True)
class SubjectStatistics:
    """Counters for one subject, since the bus started.

    `published`: stored by the broker (outbox rows once relayed);
    `outboxed`: written to the outbox; `delivered`: handed to a subscriber
    (redeliveries included); `redelivered`: deliveries past the first;
    `acked`: handled and acknowledged; `failed`: the handler raised and the
    message was scheduled again; `dead_lettered`: sent to the dead-letter
    subject. `handler_seconds` is the handlers' total run time over
    `handler_calls` calls, `handler_seconds_max` the slowest, and
    `handler_buckets` cumulative counts per upper bound in seconds
    (Prometheus histogram style, the last bound is +Inf).
    """

    published: int = 0
    outboxed: int = 0
    delivered: int = 0
    redelivered: int = 0
    acked: int = 0
    failed: int = 0
    dead_lettered: int = 0
    handler_calls: int = 0
    handler_seconds: float = 0.0
    handler_seconds_max: float = 0.0
    handler_buckets: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True, slots=True)
class EventStatistics:
    """`bus.statistics()`: connection state and counters per subject (immutable snapshot)."""

    connected: bool
    reconnects: int
    outbox_relayed: int
    subjects: Mapping[str, SubjectStatistics] = field(default_factory=dict)


def subject_matches(pattern: str, subject: str) -> bool:
    """True when `subject` matches the NATS subject `pattern` (`*` one token, `>` the rest)."""
    want = pattern.split(".")
    have = subject.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(have) > index
        if index >= len(have) or (token != "*" and token != have[index]):
            return False
    return len(want) == len(have)
