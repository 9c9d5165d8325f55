"""The OTLP/HTTP span exporter with our own protobuf encoder (`encoder.SpanEncoder`).

The transport (session, headers, compression, retries with back-off, timeout, the
`OTEL_EXPORTER_OTLP_*` settings it reads) stays the SDK's `OTLPSpanExporter`; the
encoding of a batch is ours, and so is how a post is sent: on one kept-alive
`http.client` connection when requests would send it unchanged (`direct`), else through
the SDK's requests session, prepared once (`transport`). Imported on the first export,
never at start-up.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from lumigo_opentelemetry.export.encoder import SpanEncoder
from lumigo_opentelemetry.export.transport import lean_transport

logger = logging.getLogger("lumigo-opentelemetry")


class LumigoSpanExporter(OTLPSpanExporter):
    """`OTLPSpanExporter` that sends what `SpanEncoder` writes.

    Older SDK releases, whose exporter has no separate transport client (`_client`), get
    the SDK's own `export` unchanged: same wire format, reference encoder.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder = SpanEncoder()
        client = getattr(self, "_client", None)
        lean = lean_transport(getattr(client, "_transport", None))
        if lean is not None:
            client._transport = lean  # type: ignore[union-attr]

    def _transport(self) -> Optional[Any]:
        client = getattr(self, "_client", None)
        send = getattr(client, "export", None)
        return send if callable(send) else None

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        """Sends `spans` (SDK spans or `encoder.Encoded` pairs) in one post."""
        send = self._transport()
        if send is None or getattr(self, "_shutdown", False):
            result: SpanExportResult = super().export(spans)
            return result
        try:
            data = self._encoder.encode(spans)
        except Exception as exc:
            logger.debug("span batch not encoded: %r", exc)
            return SpanExportResult.FAILURE
        limit = getattr(self, "_max_request_size", 0)
        if isinstance(limit, int) and 0 < limit < len(data):
            logger.warning(
                "dropping a span batch of %d bytes: over the %d bytes request limit",
                len(data),
                limit,
            )
            return SpanExportResult.FAILURE
        sent = send(data)
        return (
            SpanExportResult.SUCCESS
            if getattr(sent, "success", False)
            else SpanExportResult.FAILURE
        )
