"""`EventBus`: publish and subscribe over NATS JetStream (or `memory://`), on the app's lifespan.

```python
from shoal import App
from shoal.db import Database
from shoal.events import Event, EventBus, Stream, claim

app = App()
db = app.use(Database())
bus = EventBus(app=app, database=db, streams=[Stream("RUNS", ("runs.>",))])

@app.post("/runs")
async def record(run: Run, db: Database) -> Run:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO runs ...")
        await bus.publish("runs.recorded", run, outbox=tx)   # sent once the commit is done
    return run

@bus.subscribe("runs.recorded", durable="stats")
async def on_run(run: Run, event: Event, db: Database) -> None:
    async with db.transaction() as tx:
        if await claim(tx, event):                            # applied once, however redelivered
            await tx.execute("UPDATE totals ...")
```

The rules, each decided here:

- **Connection.** `url` (default `$NATS_URL`, then `nats://127.0.0.1:4222`;
  several servers comma-separated) is connected when the bus opens; an
  unreachable broker is retried with exponential backoff for
  `connect_timeout`, then the app fails to start. Once connected, a lost
  connection is re-established forever, to the server tried least, after an
  exponential jittered back-off (from `reconnect_wait` up to 5 s); publishes
  and consumers retry meanwhile. The declared `streams` are created when
  missing; an existing stream is left as it is (another service may own
  it), with a warning when its settings differ from those declared.
- **Publish** stores one message and waits for the broker's ack. Its
  message id (`Nats-Msg-Id`, a new UUID unless `id=` is given) makes a
  retried publish stored once; transient failures are retried with backoff,
  with the same id, for `publish_deadline` seconds, then
  `EventBusUnavailable` (503 in a handler). The request id and a W3C
  `traceparent` go in the headers: taken from `request=` when given, else
  from the event being handled (a subscriber that publishes passes them on).
  With `outbox=tx` nothing is sent now: see `shoal.events.outbox`.
- **Subscribe.** One durable pull consumer per `durable` name, shared by
  every worker and replica that subscribes with it (each message goes to
  one of them). The handler's first parameter that is not an `Event` is the
  payload, decoded and validated by msgspec from its annotation as an HTTP
  body is; an `event: Event` parameter gets the message's metadata; every
  other parameter is injected as in an HTTP handler (`db: Database`). Plain
  `def` handlers run in the app's thread pool. At most `concurrency`
  messages of one subscription are handled at once.
- **Ack after return.** A handler that returns acks its message. One that
  raises has it redelivered after `backoff * 2**(deliveries-1)` seconds
  (capped at `max_backoff`); on its `max_deliver`-th failure the message
  goes to the dead-letter subject `{dead_letter_prefix}.{durable}.{subject}`
  (stored in the stream `SHOAL_DEAD_LETTERS`), logged with the error. A
  payload that cannot be decoded goes there at once. A worker that dies
  mid-handler never acked: the broker redelivers after `ack_wait`.
- **Shutdown** stops fetching, lets handlers in flight finish (up to
  `drain_timeout`), relays what the outbox still holds, then flushes and
  drains the connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import os
import random
import time
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from ..errors import ConfigurationError, EventBusUnavailable, EventsError
from ..metrics import Sample, histogram_samples
from . import outbox as _outbox
from ._model import (
    MSG_ID,
    REQUEST_ID,
    TRACEPARENT,
    Event,
    EventStatistics,
    Stream,
    SubjectStatistics,
)
from ._transport import Delivery, PullConsumer, StreamInfo, Transient, Transport

if TYPE_CHECKING:
    from .. import App, Request
    from ..db import Connection, Database

__all__ = ["DEFAULT_URL", "EventBus", "Subscription"]

logger = logging.getLogger("shoal.events")

DEFAULT_URL = "nats://127.0.0.1:4222"
"""The broker used when neither `url` nor `NATS_URL` names one."""

DEAD_LETTER_STREAM = "SHOAL_DEAD_LETTERS"
BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, float("inf"))

F = TypeVar("F", bound=Callable[..., Any])

_current_event: contextvars.ContextVar[Event | None] = contextvars.ContextVar(
    "shoal_current_event", default=None
)
_encoder = msgspec.json.Encoder()


class _Counters:
    __slots__ = (
        "acked", "buckets", "dead_lettered", "delivered", "failed", "handler_calls",
        "handler_max", "handler_seconds", "outboxed", "published", "redelivered",
    )  # fmt: skip

    def __init__(self) -> None:
        self.published = self.outboxed = self.delivered = self.redelivered = 0
        self.acked = self.failed = self.dead_lettered = self.handler_calls = 0
        self.handler_seconds = self.handler_max = 0.0
        self.buckets = [0] * len(BUCKETS)

    def timed(self, seconds: float) -> None:
        self.handler_calls += 1
        self.handler_seconds += seconds
        self.handler_max = max(self.handler_max, seconds)
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[index] += 1
                break

    def snapshot(self) -> SubjectStatistics:
        cumulative, running = [], 0
        for bound, count in zip(BUCKETS, self.buckets, strict=True):
            running += count
            cumulative.append((bound, running))
        return SubjectStatistics(
            published=self.published,
            outboxed=self.outboxed,
            delivered=self.delivered,
            redelivered=self.redelivered,
            acked=self.acked,
            failed=self.failed,
            dead_lettered=self.dead_lettered,
            handler_calls=self.handler_calls,
            handler_seconds=self.handler_seconds,
            handler_seconds_max=self.handler_max,
            handler_buckets=tuple(cumulative),
        )


@dataclass(eq=False, slots=True)
class Subscription:
    """One `@bus.subscribe(...)` registration: the handler and its delivery rules."""

    subject: str
    durable: str
    handler: Callable[..., Any]
    concurrency: int
    max_deliver: int
    backoff: float
    max_backoff: float
    ack_wait: float
    payload_name: str | None
    event_names: tuple[str, ...]
    decode: Callable[[bytes], Any] = field(repr=False)

    def delay(self, delivered: int) -> float:
        """Seconds before the redelivery that follows failed delivery number `delivered`."""
        return float(min(self.max_backoff, self.backoff * 2 ** max(0, delivered - 1)))


_COUNTED = ("published", "outboxed", "delivered", "redelivered", "acked", "failed", "dead_lettered")
"""The per-subject counters exported as `shoal_events_<name>_total`."""


class EventBus:
    """Events over NATS JetStream (`nats://`) or in process (`memory://`); see the module docs.

    `app`: register the bus on this app (`app.use(bus)`, and startup and
    shutdown hooks that run the subscribers and the outbox relay). Without
    it, `app.use(EventBus())` gives a bus that publishes and relays but cannot
    subscribe. `database`: where the outbox and processed-event tables are
    created at startup, and (with `relay`) whose outbox the bus relays.
    `streams`: the JetStream streams to create or update at startup.

    Timeouts (seconds): `connect_timeout` [10] to reach the broker at start,
    `publish_timeout` [2] for one attempt, `publish_deadline` [10] for a
    publish with its retries, `reconnect_wait` [0.5] between reconnects,
    `drain_timeout` [10] for handlers in flight at shutdown,
    `relay_interval` [1] between outbox polls when no publish woke the relay.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        app: App | None = None,
        streams: Iterable[Stream] = (),
        database: Database | None = None,
        relay: bool = True,
        name: str | None = None,
        connect_timeout: float = 10.0,
        publish_timeout: float = 2.0,
        publish_deadline: float = 10.0,
        reconnect_wait: float = 0.5,
        drain_timeout: float = 10.0,
        fetch_timeout: float = 0.5,
        relay_interval: float = 1.0,
        relay_batch: int = 100,
        outbox_retention: float = 24 * 3600.0,
        dead_letter_prefix: str = "shoal.dead",
    ) -> None:
        self.url = url or os.environ.get("NATS_URL") or DEFAULT_URL
        self.app = app
        self.streams = list(streams)
        self.database = database
        self.relay_enabled = relay and database is not None
        self.name = name
        self.connect_timeout = connect_timeout
        self.publish_timeout = publish_timeout
        self.publish_deadline = publish_deadline
        self.reconnect_wait = reconnect_wait
        self.drain_timeout = drain_timeout
        self.fetch_timeout = fetch_timeout
        self.relay_interval = relay_interval
        self.relay_batch = relay_batch
        self.outbox_retention = outbox_retention
        self.dead_letter_prefix = dead_letter_prefix
        self.subscriptions: list[Subscription] = []
        self._transport: Transport | None = None
        self._counters: dict[str, _Counters] = {}
        self._relayed = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._kick = asyncio.Event()
        self._kicked_at = 0.0
        self._started = False
        if app is not None:
            app.use(self)
            app.on_startup(self._start)
            app.on_shutdown(self._stop)

    def __repr__(self) -> str:
        return f"EventBus({self.url!r})"

    # -- registration -----------------------------------------------------------

    def subscribe(
        self,
        subject: str,
        *,
        durable: str,
        concurrency: int = 16,
        max_deliver: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        ack_wait: float = 30.0,
    ) -> Callable[[F], F]:
        """Handle every message on `subject` with the decorated function (see module docs).

        `durable` names the consumer: every process subscribing with the same
        name shares its messages. `ack_wait` is how long the broker waits for
        an ack before it redelivers to another worker: keep it above the
        handler's longest run.
        """
        if self._started:
            raise ConfigurationError("cannot subscribe after the event bus has started")
        if not durable or any(c in durable for c in ".*> \t"):
            raise ConfigurationError(
                f"a durable name has no '.', '*', '>' or spaces, got {durable!r}"
            )
        if concurrency < 1 or max_deliver < 1 or backoff < 0 or ack_wait <= 0:
            raise ConfigurationError(
                "subscribe needs concurrency >= 1, max_deliver >= 1, backoff >= 0, ack_wait > 0"
            )

        def decorate(handler: F) -> F:
            payload_name, event_names, decode = _plan(handler)
            self.subscriptions.append(
                Subscription(
                    subject,
                    durable,
                    handler,
                    concurrency,
                    max_deliver,
                    backoff,
                    max_backoff,
                    ack_wait,
                    payload_name,
                    event_names,
                    decode,
                )
            )
            return handler

        return decorate

    # -- lifespan ---------------------------------------------------------------

    async def __aenter__(self) -> EventBus:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect (retrying with backoff for `connect_timeout`) and declare the streams.

        Without an app, the outbox tables and the relay start here too.
        """
        if self.subscriptions and self.app is None:
            raise ConfigurationError(
                "a bus with subscribers needs its app for injection: EventBus(app=app, ...)"
            )
        self._stopping = asyncio.Event()
        self._kick = asyncio.Event()
        transport = self._make_transport()
        deadline = time.monotonic() + self.connect_timeout
        await _retry(transport.connect, deadline, f"connect to the event broker at {self.url}")
        self._transport = transport
        try:
            streams = list(self.streams)
            if self.subscriptions:
                replicas = max((s.replicas for s in streams), default=1)
                streams.append(
                    Stream(DEAD_LETTER_STREAM, (f"{self.dead_letter_prefix}.>",), replicas)
                )
            for stream in streams:
                await _retry(
                    lambda s=stream: transport.ensure_stream(s),  # type: ignore[misc]
                    deadline,
                    f"declare stream {stream.name}",
                )
            if self.app is None:
                await self._start()
        except BaseException:
            self._transport = None
            await transport.close()
            raise

    async def aclose(self) -> None:
        """Stop subscribers and the relay (if still running), flush and disconnect."""
        await self._stop()
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()

    def _make_transport(self) -> Transport:
        scheme, _, rest = self.url.partition("://")
        if scheme == "memory":
            from ._memory import MemoryTransport

            return MemoryTransport(rest)
        if scheme not in ("nats", "tls"):
            raise ConfigurationError(
                f"an event bus URL is nats://host:port or memory://, got {self.url!r}"
            )
        from ._nats import NatsTransport

        return NatsTransport(
            [u.strip() for u in self.url.split(",") if u.strip()],
            name=self.name,
            connect_timeout=self.connect_timeout,
            reconnect_wait=self.reconnect_wait,
            drain_timeout=self.drain_timeout,
            api_timeout=self.publish_timeout,
        )

    async def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.database is not None:
            await _outbox.create_tables(self.database)
        for subscription in self.subscriptions:
            self._tasks.append(asyncio.create_task(self._consume(subscription)))
        if self.relay_enabled:
            self._tasks.append(asyncio.create_task(self._relay_loop()))

    async def _stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._stopping.set()
        self._kick.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.drain_timeout + 1)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def transport(self) -> Transport:
        """The open connection (raises `EventsError` when the bus is not open)."""
        if self._transport is None:
            raise EventsError(f"{self!r} is not open: register it with app.use() or EventBus(app=)")
        return self._transport

    # -- publishing -------------------------------------------------------------

    async def publish(
        self,
        subject: str,
        payload: Any,
        *,
        id: str | None = None,
        headers: Mapping[str, str] | None = None,
        request: Request | None = None,
        outbox: Connection | None = None,
    ) -> str:
        """Publish `payload` (a Struct, dataclass, dict... or bytes) on `subject`; return its id.

        With `outbox=tx` (a connection inside a transaction) the event is
        written to the outbox table on that transaction and published by the
        relay after the commit; without it, it is stored by the broker before
        this returns.
        """
        data = payload if isinstance(payload, bytes) else _encoder.encode(payload)
        message_id = id or uuid.uuid4().hex
        all_headers = _headers(message_id, headers, request)
        if outbox is not None:
            await _outbox.write(outbox, subject, message_id, data, all_headers)
            self._count(subject).outboxed += 1
            self._kicked_at = time.monotonic()
            self._kick.set()
            return message_id
        await self._send(subject, data, all_headers)
        return message_id

    async def _send(self, subject: str, data: bytes, headers: dict[str, str]) -> None:
        transport = self.transport
        deadline = time.monotonic() + self.publish_deadline

        async def attempt() -> None:
            remaining = max(0.05, min(self.publish_timeout, deadline - time.monotonic()))
            if await transport.publish(subject, data, headers, remaining):
                self._count(subject).published += 1

        await _retry(attempt, deadline, f"publish to {subject}")

    def _count(self, subject: str) -> _Counters:
        counters = self._counters.get(subject)
        if counters is None:
            counters = self._counters[subject] = _Counters()
        return counters

    # -- consuming --------------------------------------------------------------

    async def _consume(self, subscription: Subscription) -> None:
        consumer: PullConsumer | None = None
        running: set[asyncio.Task[None]] = set()
        refill = max(1, subscription.concurrency // 2)
        delay = 0.05
        while not self._stopping.is_set():
            try:
                if consumer is None:
                    consumer = await self.transport.consumer(
                        subscription.subject,
                        subscription.durable,
                        ack_wait=subscription.ack_wait,
                        max_ack_pending=max(1000, subscription.concurrency),
                    )
                free = subscription.concurrency - len(running)
                if running and free < refill:
                    # pull in batches: one round trip for half the slots, not one per slot
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    continue
                deliveries = await consumer.fetch(free, self.fetch_timeout)
                delay = 0.05
            except (Transient, EventsError) as exc:
                log = logger.debug if isinstance(exc, Transient) else logger.error
                log("consumer %s on %s: %s", subscription.durable, subscription.subject, exc)
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, 2.0)
                continue
            for delivery in deliveries:
                task = asyncio.create_task(self._handle(subscription, delivery))
                running.add(task)
                task.add_done_callback(running.discard)
        if running:  # let handlers in flight finish; unfinished ones are redelivered
            _, late = await asyncio.wait(running, timeout=self.drain_timeout)
            for task in late:
                task.cancel()
        if consumer is not None:
            await consumer.close()

    async def _handle(self, subscription: Subscription, delivery: Delivery) -> None:
        counters = self._count(delivery.subject)
        counters.delivered += 1
        if delivery.delivered > 1:
            counters.redelivered += 1
        event = Event(
            id=delivery.headers.get(MSG_ID) or f"{delivery.subject}:{delivery.sequence}",
            subject=delivery.subject,
            data=delivery.data,
            headers=delivery.headers,
            delivered=delivery.delivered,
            consumer=subscription.durable,
            sequence=delivery.sequence,
        )
        try:
            payload = subscription.decode(delivery.data)
        except msgspec.DecodeError as exc:  # ValidationError included: never valid, never retried
            await self._dead_letter(subscription, delivery, event, f"undecodable payload: {exc}")
            return
        kwargs: dict[str, Any] = dict.fromkeys(subscription.event_names, event)
        if subscription.payload_name is not None:
            kwargs[subscription.payload_name] = payload
        token = _current_event.set(event)
        start = time.perf_counter()
        try:
            assert self.app is not None  # checked at open
            await self.app.call(subscription.handler, **kwargs)
        except Exception as exc:
            counters.timed(time.perf_counter() - start)
            if delivery.delivered >= subscription.max_deliver:
                await self._dead_letter(subscription, delivery, event, repr(exc), exc)
                return
            counters.failed += 1
            wait = subscription.delay(delivery.delivered)
            logger.warning(
                "subscriber %s failed on %s (delivery %d of %d, retry in %.2fs): %r",
                subscription.durable, event.subject, delivery.delivered,
                subscription.max_deliver, wait, exc,
            )  # fmt: skip
            await _settle(delivery.nak(wait))
            return
        finally:
            _current_event.reset(token)
        counters.timed(time.perf_counter() - start)
        counters.acked += 1
        await _settle(delivery.ack())

    async def _dead_letter(
        self,
        subscription: Subscription,
        delivery: Delivery,
        event: Event,
        reason: str,
        exc: BaseException | None = None,
    ) -> None:
        subject = f"{self.dead_letter_prefix}.{subscription.durable}.{delivery.subject}"
        logger.error(
            "event %s on %s goes to dead letter %s after %d deliveries: %s",
            event.id, event.subject, subject, delivery.delivered, reason,
            exc_info=exc,
        )  # fmt: skip
        headers = {
            **delivery.headers,
            MSG_ID: f"{event.id}.dead.{subscription.durable}",
            "Shoal-Dead-Reason": " ".join(reason.split())[:1000],
            "Shoal-Dead-Consumer": subscription.durable,
            "Shoal-Dead-Subject": delivery.subject,
            "Shoal-Dead-Deliveries": str(delivery.delivered),
        }
        try:
            await self._send(subject, delivery.data, headers)
        except Exception as error:  # keep the message: redeliver it and try again later
            logger.error("could not dead-letter event %s: %r", event.id, error)
            self._count(delivery.subject).failed += 1
            await _settle(delivery.nak(subscription.delay(delivery.delivered)))
            return
        self._count(delivery.subject).dead_lettered += 1
        await _settle(delivery.term())

    # -- the outbox relay -------------------------------------------------------

    async def relay(self) -> int:
        """Publish committed outbox rows, oldest first, one batch; return how many were sent."""
        if self.database is None:
            raise ConfigurationError("this bus has no database: EventBus(database=db)")
        db = self.database
        sent: list[int] = []
        error: BaseException | None = None
        if db.backend == "postgresql":
            async with db.transaction() as tx:
                if not await tx.fetchval(
                    "SELECT pg_try_advisory_xact_lock($1)", _outbox.RELAY_LOCK_KEY
                ):
                    return 0  # another replica relays now
                rows = await _outbox.select_unsent(tx, self.relay_batch, lock=True)
                error = await self._relay_rows(rows, sent)
                await _outbox.mark_sent(tx, sent)
        else:
            async with db.connection() as conn:
                rows = await _outbox.select_unsent(conn, self.relay_batch, lock=False)
            error = await self._relay_rows(rows, sent)
            if sent:
                async with db.transaction() as tx:
                    await _outbox.mark_sent(tx, sent)
        self._relayed += len(sent)
        if error is not None:
            raise error
        return len(sent)

    async def _relay_rows(self, rows: list[_outbox.OutboxRow], sent: list[int]) -> Exception | None:
        for row in rows:
            try:
                await self._send(row.subject, row.data, row.headers)
            except Exception as exc:  # stop here: later rows must not overtake this one
                return exc
            sent.append(row.id)
        return None

    async def _relay_loop(self) -> None:
        delay = 0.002
        failures = 0
        polls = 0
        while True:
            try:
                sent = await self.relay()
                failures = 0
            except Exception as exc:
                failures += 1
                logger.warning("outbox relay: %r (attempt %d)", exc, failures)
                sent = 0
            if self._stopping.is_set() and (sent < self.relay_batch or failures):
                return
            if sent >= self.relay_batch:
                continue
            polls += 1
            if polls % 600 == 0 and self.database is not None:
                with suppress(Exception):
                    await _outbox.purge_sent(self.database, self.outbox_retention)
            if failures:
                wait = min(5.0, 0.1 * 2**failures)
            elif sent == 0 and time.monotonic() - self._kicked_at < 0.5:
                # a publish just wrote a row its transaction may not have committed
                # yet: look again soon rather than in a whole interval
                wait, delay = delay, min(delay * 2, 0.05)
            else:
                wait, delay = self.relay_interval, 0.002
            self._kick.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), wait)

    # -- visibility -------------------------------------------------------------

    def statistics(self) -> EventStatistics:
        """Connection state and per-subject counters, as an immutable snapshot."""
        transport = self._transport
        return EventStatistics(
            connected=transport is not None and transport.connected,
            reconnects=transport.reconnects if transport is not None else 0,
            outbox_relayed=self._relayed,
            subjects={subject: c.snapshot() for subject, c in self._counters.items()},
        )

    async def check(self, timeout: float = 2.0) -> None:
        """Readiness: return if the broker answers, else raise `EventBusUnavailable`."""
        transport = self._transport
        if transport is None or not transport.connected:
            raise EventBusUnavailable(f"{self!r} is not connected")
        try:
            await asyncio.wait_for(transport.ping(timeout), timeout)
        except (Transient, TimeoutError) as exc:
            raise EventBusUnavailable(f"the event broker did not answer: {exc}") from exc

    async def check_readiness(self) -> None:
        """`/readyz`'s check (`shoal.health`): the broker answers a ping."""
        await self.check()

    def collect_metrics(self) -> list[Sample]:
        """The bus's samples for `/metrics` (see `shoal.metrics`), by subject."""
        stats = self.statistics()
        samples: list[Sample] = [
            ("shoal_events_connected", (), 1.0 if stats.connected else 0.0),
            ("shoal_events_reconnects_total", (), float(stats.reconnects)),
            ("shoal_events_outbox_relayed_total", (), float(stats.outbox_relayed)),
        ]
        for subject, counts in stats.subjects.items():
            labels = (("subject", subject),)
            for field_name in _COUNTED:
                value = float(getattr(counts, field_name))
                samples.append((f"shoal_events_{field_name}_total", labels, value))
            samples += histogram_samples(
                "shoal_events_handler_duration_seconds",
                labels,
                counts.handler_buckets,
                counts.handler_calls,
                counts.handler_seconds,
            )
        return samples

    async def stream_info(self, name: str | None = None) -> list[StreamInfo]:
        """Every stream on the broker (or the one named) with its consumers and pending counts."""
        transport = self.transport
        found: list[StreamInfo] = []

        async def attempt() -> None:
            found[:] = await transport.streams(name)

        await _retry(attempt, time.monotonic() + self.publish_deadline, "list streams")
        return found


# -- helpers -------------------------------------------------------------------


async def _retry(call: Callable[[], Any], deadline: float, what: str) -> None:
    """Await `call()` until it does not raise `Transient`, backing off until `deadline`."""
    delay = 0.05
    while True:
        try:
            await call()
            return
        except Transient as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EventBusUnavailable(f"could not {what}: {exc}") from exc
            await asyncio.sleep(min(remaining, delay * random.uniform(0.5, 1.0)))
            delay = min(delay * 2, 1.0)


async def _settle(call: Any) -> None:
    """Await an ack/nak/term; a lost one only means a redelivery, so never raise."""
    try:
        await call
    except Exception as exc:
        logger.debug("could not settle a message (it will be redelivered): %r", exc)


def _headers(
    message_id: str, extra: Mapping[str, str] | None, request: Request | None
) -> dict[str, str]:
    headers = {MSG_ID: message_id}
    if request is not None:
        request_id: str | None = request.id
        parent = request.headers.get(TRACEPARENT)
    else:
        current = _current_event.get()
        request_id = current.request_id if current is not None else None
        parent = current.traceparent if current is not None else None
    if request_id:
        headers[REQUEST_ID] = request_id
    headers[TRACEPARENT] = child_traceparent(parent)
    if extra:
        headers.update(extra)
    return headers


def child_traceparent(parent: str | None) -> str:
    """A W3C `traceparent` for a new span: in `parent`'s trace when it is valid, else a new one."""
    parts = parent.split("-") if parent else []
    span = f"{random.getrandbits(64):016x}"
    if (
        len(parts) == 4
        and len(parts[1]) == 32
        and len(parts[2]) == 16
        and parts[1] != "0" * 32
        and all(c in "0123456789abcdef" for c in parts[1] + parts[3])
    ):
        return f"00-{parts[1]}-{span}-{parts[3]}"
    return f"00-{uuid.uuid4().hex}-{span}-01"


def _plan(
    handler: Callable[..., Any],
) -> tuple[str | None, tuple[str, ...], Callable[[bytes], Any]]:
    """The payload parameter, the `Event` parameters and the payload's decoder."""
    try:
        hints = typing.get_type_hints(handler)
        parameters = inspect.signature(handler).parameters
    except (TypeError, NameError, ValueError) as exc:
        raise ConfigurationError(f"cannot inspect subscriber {handler!r}: {exc}") from exc
    events = tuple(name for name in parameters if hints.get(name) is Event)
    payload = next((name for name in parameters if name not in events), None)
    annotation = hints.get(payload, Any) if payload is not None else Any
    if annotation is bytes:
        return payload, events, bytes
    try:
        decoder = msgspec.json.Decoder(annotation)
    except TypeError as exc:
        raise ConfigurationError(
            f"subscriber {handler.__qualname__}: msgspec cannot decode {annotation!r}: {exc}"
        ) from exc
    return payload, events, decoder.decode
