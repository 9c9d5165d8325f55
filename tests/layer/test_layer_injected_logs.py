"""A pod injected with `lumigo.io/enable-logs: "true"` sends its app's log records.

The pod spec goes through the real mutation; its injected container's `env` is resolved the
way the kubelet does it (downward API, the token Secret, `$(VAR)` references), `/lumigo-otel`
is mapped to an init-container copy of the layer, and a plain Flask app that logs with the
standard `logging` module runs with exactly that environment. The local OTLP receiver must get
the app's log records, carrying the trace and span ids of the request's server span, and
spans whose resource names the container.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_injector.k8s.mutation import InjectionSettings, inject
from lumigo_injector.layer import cached_layer
from lumigo_injector.spec import names as c
from tests.helpers.layer_apps import (
    TEST_TOKEN,
    copy_like_init,
    make_venv,
    plain_env,
    running_app,
)
from tests.helpers.mutation import expand_env

pytestmark = pytest.mark.slow

CONTAINER = "shop-api"
POD_FIELDS = {
    "metadata.namespace": "shop",
    "metadata.name": "shop-api-7d4b9c-x2x9p",
    "metadata.uid": "6a1d2c55-9a3e-4f52-8d2b-3c2d6e0f7a10",
    "spec.nodeName": "node-3",
}

LOGGING_APP = '''"""A plain Flask app that logs with the standard logging module."""
import logging
import os
import signal

from flask import Flask
from werkzeug.serving import make_server

logging.getLogger("werkzeug").setLevel(logging.ERROR)
log = logging.getLogger("shop.orders")
log.setLevel(logging.INFO)
app = Flask(__name__)


@app.get("/orders/<order_id>")
def place(order_id):
    log.info("order %s placed", order_id)
    return {"order": order_id}


def _stop(*_args):
    raise SystemExit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    server = make_server("127.0.0.1", int(os.environ["PORT"]), app, threaded=True)
    server.serve_forever()
'''


def injected_pod_env(endpoint: str, volume: Path) -> dict[str, str]:
    """The container environment of an injected pod asking for logs, as the kubelet makes it."""
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "shop-api-7d4b9c-",
            "annotations": {c.ANNOTATION_INJECT: "python", c.ANNOTATION_ENABLE_LOGS: "true"},
        },
        "spec": {"containers": [{"name": CONTAINER, "image": "python:3.12-slim"}]},
    }
    result = inject(pod, InjectionSettings(endpoint=endpoint))
    assert result.injected, result.reason
    env_list = result.obj["spec"]["containers"][0]["env"]
    secrets = {f"{c.DEFAULT_SECRET_NAME}/{c.DEFAULT_SECRET_KEY}": TEST_TOKEN}
    env = expand_env(env_list, POD_FIELDS, secrets)
    return {k: v.replace(c.MOUNT_PATH, str(volume)) for k, v in env.items()}


def test_injected_pod_with_enable_logs_sends_log_records_with_trace_ids(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    # A layer with the one package set this app needs (the image's layer has every set).
    volume = copy_like_init(cached_layer(("3.12",), "glibc"), tmp_path / "lumigo-otel")
    venv = make_venv("3.12", ["flask"])
    script = tmp_path / "app" / "logging_app.py"
    script.parent.mkdir()
    script.write_text(LOGGING_APP, encoding="utf-8")
    env = injected_pod_env(otlp_receiver.url, volume)
    assert env[c.ENV_ENABLE_LOGS] == "true" and env[c.ENV_CONTAINER_NAME] == CONTAINER

    run_env = plain_env(**env, OTEL_BSP_SCHEDULE_DELAY="50", OTEL_BLRP_SCHEDULE_DELAY="50")
    with running_app(venv, script, run_env) as app:
        assert app.get_json("/orders/42") == {"order": "42"}
        spans = otlp_receiver.wait_for_spans(
            where=lambda s: s.kind == "SERVER" and "/orders" in s.name, timeout=30
        )
        records = otlp_receiver.wait_for_logs(
            where=lambda r: r.body == "order 42 placed", timeout=30
        )
    out = app.output
    assert out is not None and out.returncode == 0, out

    server = spans[0]
    assert server.resource["k8s.container.name"] == CONTAINER
    assert server.resource["k8s.pod.name"] == POD_FIELDS["metadata.name"]
    record = records[0]
    assert record.trace_id == server.trace_id and record.span_id == server.span_id
    assert record.severity_text == "INFO" and record.scope == "shop.orders"
    assert record.resource["k8s.container.name"] == CONTAINER
    assert {r.path for r in otlp_receiver.requests()} >= {"/v1/traces", "/v1/logs"}
    auth = {r.headers.get("authorization") for r in otlp_receiver.requests()}
    assert auth == {f"LumigoToken {TEST_TOKEN}"}
