"""Spans/s the OTLP/HTTP exporter sustains to a receiver (runs in the contender's venv).

    python exporter_throughput.py RECEIVER_URL SECONDS
Exports batches of 512 realistic spans for SECONDS and prints spans per second.
"""

import sys
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

url, seconds = sys.argv[1], float(sys.argv[2])
provider = TracerProvider()
tracer = provider.get_tracer("bench")
batch = []
for i in range(512):
    with tracer.start_as_current_span(
        "GET /orders", attributes={"http.method": "GET", "http.route": "/orders", "n": i}
    ) as span:
        batch.append(span)
exporter = OTLPSpanExporter(endpoint=url, headers={"Authorization": "LumigoToken t_bench"})
sent = 0
started = time.perf_counter()
while time.perf_counter() - started < seconds:
    if exporter.export(batch) is not SpanExportResult.SUCCESS:
        raise SystemExit("export failed")
    sent += len(batch)
print(f"{sent / (time.perf_counter() - started):.0f}")
