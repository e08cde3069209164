"""The shoal bench app with OpenTelemetry tracing on: a span per request, kept in memory.

A batch processor hands the spans to the SDK's in-memory exporter, which a
timer empties every second, so memory stays flat during a long run: what is
measured is shoal's spans and the SDK's processing, not an exporter's I/O.
"""

import threading

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .shoal_app import build

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(exporter))


def _empty() -> None:
    exporter.clear()
    timer = threading.Timer(1.0, _empty)
    timer.daemon = True
    timer.start()


_empty()
app = build(tracer_provider=provider)
