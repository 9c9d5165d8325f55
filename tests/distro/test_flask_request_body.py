"""The lean Flask path wraps `wsgi.input` only for a request that can carry a body.

A request with a `Content-Length` (not 0) or a `Transfer-Encoding` (a chunked body, as a
server that dechunks it hands it over, with no length) has its body recorded as the app
reads it; one with neither keeps the server's own stream (nothing to record).
"""

from __future__ import annotations

import io
from typing import Any, Dict, List, Tuple

import flask
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from werkzeug.test import EnvironBuilder

from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.instrumentations._flask_server import FlaskServerSpans
from lumigo_opentelemetry.instrumentations._wsgi_capture import RecordingInput, may_have_body
from lumigo_opentelemetry.instrumentations.flask import _ORIGINAL_INIT

BODY = b'{"user": "bo", "items": [1, 2, 3]}'
RECORDED = '{"user":"bo","items":[1,2,3]}'  # the JSON body as the capture renders it


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, False),
        ({"CONTENT_LENGTH": ""}, False),
        ({"CONTENT_LENGTH": "0"}, False),
        ({"CONTENT_LENGTH": "12"}, True),
        ({"CONTENT_LENGTH": " 12"}, True),  # whatever the app makes of it: recorded
        ({"CONTENT_LENGTH": 12}, True),
        ({"HTTP_TRANSFER_ENCODING": "chunked"}, True),
        ({"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": "0"}, True),
        ({"HTTP_TRANSFER_ENCODING": ""}, True),
        ({"wsgi.input_terminated": True}, False),  # gunicorn's GET: an empty stream
    ],
)
def test_may_have_body(headers: Dict[str, Any], expected: bool) -> None:
    assert may_have_body(headers) is expected


def _app() -> Tuple[Any, InMemorySpanExporter, List[Any]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = flask.Flask.__new__(flask.Flask)
    # Flask's own `__init__`, not the one the distro (loaded in this process) wraps
    getattr(flask.Flask.__init__, _ORIGINAL_INIT, flask.Flask.__init__)(app, "bodies")
    FlaskServerSpans(Config(), provider).install(app)
    streams: List[Any] = []

    @app.route("/echo", methods=["GET", "POST"])
    def echo() -> Any:
        streams.append(flask.request.environ["wsgi.input"])
        return flask.Response(flask.request.get_data(), content_type="application/json")

    return app, exporter, streams


def _call(app: Any, environ: Dict[str, Any]) -> bytes:
    def start_response(status: str, headers: Any, *args: Any) -> None:
        pass

    return b"".join(app(environ, start_response))


def _body(exporter: InMemorySpanExporter) -> Any:
    (span,) = exporter.get_finished_spans()
    return (span.attributes or {}).get("http.request.body")


def test_a_body_with_a_length_is_recorded() -> None:
    app, exporter, streams = _app()
    environ = EnvironBuilder(
        "/echo", method="POST", data=BODY, content_type="application/json"
    ).get_environ()
    assert _call(app, environ) == BODY
    assert isinstance(streams[0], RecordingInput)
    assert _body(exporter) == RECORDED


def test_a_chunked_body_is_recorded() -> None:
    """As gunicorn hands a chunked request over: dechunked, no length, terminated."""
    app, exporter, streams = _app()
    environ = EnvironBuilder("/echo", method="POST", content_type="application/json").get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update(
        {
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input_terminated": True,
            "wsgi.input": io.BytesIO(BODY),
        }
    )
    assert _call(app, environ) == BODY
    assert isinstance(streams[0], RecordingInput)
    assert _body(exporter) == RECORDED


def test_a_request_without_a_body_keeps_the_servers_stream() -> None:
    app, exporter, streams = _app()
    environ = EnvironBuilder("/echo", method="GET").get_environ()
    stream = environ["wsgi.input"] = io.BytesIO(b"")
    environ["wsgi.input_terminated"] = True
    assert _call(app, environ) == b""
    assert streams == [stream]
    assert _body(exporter) is None
