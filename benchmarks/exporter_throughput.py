"""Spans/s the OTLP/HTTP exporter sustains to a receiver (runs in the contender's venv).

    python exporter_throughput.py RECEIVER_URL SECONDS [ours|sdk]

Exports batches of 512 realistic spans for SECONDS and prints spans per second.
`ours` (the default when the distro is installed) is the distro's exporter (its
encoder, its post through the SDK's transport); `sdk` is the SDK's `OTLPSpanExporter`
(what this script measured before, for every contender).
"""

import os
import sys
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult


def exporter(kind: str, url: str):  # type: ignore[no-untyped-def]
    if kind == "sdk":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=url, headers={"Authorization": "LumigoToken t_bench"})
    from lumigo_opentelemetry.config import Config
    from lumigo_opentelemetry.export.otlp import otlp_exporter

    return otlp_exporter(Config(token="t_bench", endpoint=url))


def default_kind() -> str:
    # the exporter alone: importing the distro must not switch tracing on in this process
    os.environ.setdefault("LUMIGO_SWITCH_OFF", "true")
    try:
        import lumigo_opentelemetry  # noqa: F401
    except ImportError:
        return "sdk"
    return "ours"


url, seconds = sys.argv[1], float(sys.argv[2])
kind = sys.argv[3] if len(sys.argv) > 3 else default_kind()
provider = TracerProvider()
tracer = provider.get_tracer("bench")
batch = []
for i in range(512):
    with tracer.start_as_current_span(
        "GET /orders", attributes={"http.method": "GET", "http.route": "/orders", "n": i}
    ) as span:
        batch.append(span)
chosen = exporter(kind, url)
sent = 0
started = time.perf_counter()
while time.perf_counter() - started < seconds:
    if chosen.export(batch) is not SpanExportResult.SUCCESS:
        raise SystemExit("export failed")
    sent += len(batch)
print(f"{sent / (time.perf_counter() - started):.0f}")
