"""shoal.events: events between services over NATS JetStream, with a transactional outbox.

```python
from shoal import App
from shoal.events import EventBus, Stream

app = App()
bus = EventBus(app=app, streams=[Stream("RUNS", ("runs.>",))])   # $NATS_URL

@bus.subscribe("runs.recorded", durable="stats")
async def on_run(run: Run) -> None: ...
```

Delivery is at least once; with `claim(tx, event)` in the consumer's
transaction it is effectively once. See `EventBus` for the rules,
`shoal.events.outbox` for the outbox, and docs/events.md for the model and
the failure cases.
"""

from ..errors import EventBusUnavailable, EventsError
from ._model import Event, EventStatistics, Stream, SubjectStatistics
from ._transport import ConsumerInfo, StreamInfo
from .bus import DEFAULT_URL, EventBus, Subscription, child_traceparent
from .outbox import TABLES_SQL, claim, create_tables, pending_count

__all__ = [
    "DEFAULT_URL",
    "TABLES_SQL",
    "ConsumerInfo",
    "Event",
    "EventBus",
    "EventBusUnavailable",
    "EventStatistics",
    "EventsError",
    "Stream",
    "StreamInfo",
    "SubjectStatistics",
    "Subscription",
    "child_traceparent",
    "claim",
    "create_tables",
    "pending_count",
]
