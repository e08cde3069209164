"""`shoal events`: the broker's streams, their durable consumers and what each has pending.

```
$ shoal events --url nats://127.0.0.1:4222
STREAM   REPLICAS  MESSAGES  SUBJECTS
RUNS            3      1042  runs.>
  CONSUMER  FILTER          PENDING  ACK PENDING  REDELIVERED
  stats     runs.recorded         0            2            5
```

`PENDING` is what the consumer has not been handed yet, `ACK PENDING` what
it holds without an ack (in a handler now, or lost with a dead worker until
its ack wait passes), `REDELIVERED` how many were handed out again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from ..errors import EventsError
from ._transport import StreamInfo
from .bus import EventBus

__all__ = ["add_cli", "format_streams"]


def format_streams(streams: list[StreamInfo]) -> str:
    """The table `shoal events` prints."""
    if not streams:
        return "no streams\n"
    width = max(len("STREAM"), *(len(s.name) for s in streams))
    lines = [f"{'STREAM':<{width}}  REPLICAS  MESSAGES  SUBJECTS"]
    for stream in sorted(streams, key=lambda s: s.name):
        lines.append(
            f"{stream.name:<{width}}  {stream.replicas:>8}  {stream.messages:>8}  "
            + ", ".join(stream.subjects)
        )
        if stream.consumers:
            name_width = max(len("CONSUMER"), *(len(c.name) for c in stream.consumers))
            filter_width = max(len("FILTER"), *(len(c.filter_subject) for c in stream.consumers))
            lines.append(
                f"  {'CONSUMER':<{name_width}}  {'FILTER':<{filter_width}}  "
                "PENDING  ACK PENDING  REDELIVERED"
            )
            for c in sorted(stream.consumers, key=lambda c: c.name):
                lines.append(
                    f"  {c.name:<{name_width}}  {c.filter_subject:<{filter_width}}  "
                    f"{c.pending:>7}  {c.ack_pending:>11}  {c.redelivered:>11}"
                )
    return "\n".join(lines) + "\n"


async def _list(url: str | None, timeout: float) -> list[StreamInfo]:
    async with EventBus(url, connect_timeout=timeout, publish_deadline=timeout) as bus:
        return await bus.stream_info()


def _events(args: argparse.Namespace) -> int:
    try:
        streams = asyncio.run(_list(args.url, args.timeout))
    except EventsError as exc:
        print(f"shoal events: error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(format_streams(streams))
    return 0


def add_cli(commands: Any) -> None:
    """Add `shoal events` to the `shoal` command's subcommands."""
    events = commands.add_parser(
        "events", help="list the event broker's streams, consumers and pending counts"
    )
    events.add_argument("--url", default=None, help="the broker (default $NATS_URL)")
    events.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to reach the broker (default 5)"
    )
    events.set_defaults(func=_events)
