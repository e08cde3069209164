"""`shoal events` against the real broker, as a user runs it."""

from __future__ import annotations

import subprocess

from shoal import App
from shoal.events import EventBus, Stream
from shoal.events.cli import format_streams
from tests.servers import BIN, free_port


async def test_shoal_events_lists_streams_consumers_and_pending(nats_url: str, topic: str) -> None:
    app = App()
    bus = EventBus(nats_url, app=app, streams=[Stream(topic.upper(), (f"{topic}.>",))])

    @bus.subscribe(f"{topic}.a", durable=f"{topic}reader", concurrency=1, ack_wait=60)
    async def reader(payload: dict[str, int]) -> None:
        raise RuntimeError("keeps failing, so messages stay pending")

    await app.startup()
    try:
        for i in range(5):
            await bus.publish(f"{topic}.a", {"i": i})
        result = subprocess.run(
            [str(BIN / "shoal"), "events", "--url", nats_url],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        await app.shutdown()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    [stream_line] = [line for line in lines if line.startswith(topic.upper() + " ")]
    assert stream_line.split()[1:4] == ["1", "5", f"{topic}.>"]
    [consumer_line] = [line for line in lines if line.strip().startswith(f"{topic}reader")]
    _name, subject, pending, ack_pending, _redelivered = consumer_line.split()
    assert subject == f"{topic}.a"
    assert int(pending) + int(ack_pending) == 5  # nothing was acked
    assert "SHOAL_DEAD_LETTERS" in result.stdout


def test_shoal_events_says_when_the_broker_is_unreachable() -> None:
    result = subprocess.run(
        [
            str(BIN / "shoal"),
            "events",
            "--url",
            f"nats://127.0.0.1:{free_port()}",
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("shoal events: error: could not connect")
    assert "Traceback" not in result.stderr


def test_format_with_no_streams() -> None:
    assert format_streams([]) == "no streams\n"
