"""The span lifecycle alone: N server-like spans through the lean paths' calls (runs in a venv).

    python span_lifecycle.py server|db|db-lean N [FLUSH_EVERY]

Under the distro's own tracer provider and exporter (the environment names the endpoint,
as for cpu_driver.py), each iteration does what the Flask path does for its server span
(`FastSpans.start_span` with 13 clean attributes, one of them the client port, new on
each iteration as under real traffic; attach, `set_attributes` with 3 more at
the end, `end_span`, detach); `db` adds, inside it, what the lean DB-API path does for a client
span (`tracer.start_span`, `set_attributes` with 6, attach, detach, `end_span`); `db-lean` starts
that client span through `FastSpans.start_span(name, None, kind, None)`. The provider is
flushed every FLUSH_EVERY iterations (10 unless given), so the export is counted too.
Count it under callgrind at two N for the marginal instructions per iteration.
"""

from __future__ import annotations

import itertools
import sys
from time import time_ns
from typing import Any, Callable, Tuple

START = {
    "http.method": "GET",
    "http.server_name": "127.0.0.1",
    "http.scheme": "http",
    "net.host.name": "127.0.0.1:8000",
    "http.host": "127.0.0.1:8000",
    "net.host.port": 8000,
    "http.url": "http://127.0.0.1:8000/db",
    "net.peer.ip": "127.0.0.1",
    "net.peer.port": 40000,
    "http.user_agent": "wrk/4.2",
    "http.flavor": "1.1",
    "http.route": "/db",
    "http.request.headers": '{"host":"127.0.0.1:8000","user-agent":"wrk/4.2","accept":"*/*"}',
}
LATE = {
    "http.response.body": '{"id":42,"name":"item-42"}',
    "http.status_code": 200,
    "http.response.headers": '{"content-type":"application/json","content-length":"27"}',
}
DB = {
    "db.system": "mysql",
    "db.name": "test",
    "db.statement": "SELECT id, name FROM bench_items WHERE id = %s",
    "db.user": "root",
    "net.peer.name": "127.0.0.1",
    "net.peer.port": 3306,
}


def setup(mode: str) -> Tuple[Callable[[], None], Any]:
    """(one iteration, the tracer provider)."""
    from opentelemetry import context, trace
    from opentelemetry.trace import SpanKind

    import lumigo_opentelemetry
    from lumigo_opentelemetry.instrumentations._fastspan import end_span, fast_spans, set_attributes

    provider = lumigo_opentelemetry.tracer_provider
    server_tracer = provider.get_tracer(
        "opentelemetry.instrumentation.flask", "0.66b1", schema_url="https://x/1.11.0"
    )
    db_tracer = provider.get_tracer("opentelemetry.instrumentation.dbapi", "0.66b1")
    spans = fast_spans(server_tracer)
    server, client = SpanKind.SERVER, SpanKind.CLIENT
    root = context.Context()
    with_db = mode.startswith("db")
    db_spans = fast_spans(db_tracer) if mode == "db-lean" else None

    ports = itertools.count(40000)

    def one() -> None:
        attributes = dict(START)
        # a new client port per request, as a server that closes each connection sees
        attributes["net.peer.port"] = 40000 + next(ports) % 20000
        span = spans.start_span("GET /db", root, server, attributes, time_ns(), {})
        token = context.attach(trace.set_span_in_context(span, root))
        if with_db:
            if db_spans is None:
                db = db_tracer.start_span("SELECT", kind=client)
            else:
                db = db_spans.start_span("SELECT", None, client, None)
            set_attributes(db, dict(DB))
            db_token = context.attach(trace.set_span_in_context(db))
            context.detach(db_token)
            end_span(db)
        set_attributes(span, dict(LATE))
        end_span(span)
        context.detach(token)

    return one, provider


def main() -> None:
    mode, count = sys.argv[1], int(sys.argv[2])
    every = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    one, provider = setup(mode)
    for _ in range(20):  # warm-up, then flushed
        one()
    provider.force_flush()
    for done in range(count):
        if done and done % every == 0:
            provider.force_flush()
        one()
    provider.force_flush()
    print(f"iterations={count} mode={mode}")


if __name__ == "__main__":
    main()
