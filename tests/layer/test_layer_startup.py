"""What activation on the layer path loads at start-up, and that tracing still follows.

The bootstrap starts the distro's entry point itself and the registry waits for
instrumented libraries with its own post-import hook, so an app that imports no
instrumented library never loads wrapt, asyncio or importlib.metadata, nor the
OpenTelemetry SDK (the provider is built on first use). Importing Flask and building
an app load only the distro's Flask module; the first routed request builds the
provider and loads contrib's WSGI helpers, and requests are traced.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.layer_apps import (
    copy_like_init,
    injected_env,
    layer_for_tests,
    make_venv,
)

pytestmark = pytest.mark.slow

#: modules the activation itself must not import (they cost tens of milliseconds)
HEAVY = (
    "asyncio",
    "importlib.metadata",
    "wrapt",
    "flask",
    "opentelemetry.instrumentation",
    "opentelemetry.sdk",
    "typing",
    "string",
)

APP = """\
import json, sys
HEAVY = %r
def loaded():
    return sorted(name for name in HEAVY if name in sys.modules)
facts = {"started": "lumigo_opentelemetry" in sys.modules, "at_start": loaded()}
import flask
app = flask.Flask("startup")
@app.route("/ping")
def ping():
    return {"pong": True}
facts["after_app"] = loaded()
facts["answer"] = app.test_client().get("/ping").get_json()
facts["after_flask"] = loaded()
print(json.dumps(facts))
"""


@pytest.fixture(scope="module")
def layer_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_like_init(layer_for_tests(), tmp_path_factory.mktemp("volume") / "lumigo-otel")


def _run(python: Path, script: Path, env: dict[str, str]) -> dict[str, object]:
    result = subprocess.run(
        [str(python), str(script)], env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    facts: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return facts


@pytest.mark.parametrize(
    ("minor", "packages"),
    [
        ("3.9", ["flask"]),
        ("3.11", ["flask"]),
        ("3.13", ["flask"]),
        # the app's own autowrapt (its .pth runs before the layer) must not rediscover ours
        ("3.11", ["flask", "autowrapt"]),
    ],
    ids=["3.9", "3.11", "3.13", "3.11-app-autowrapt"],
)
def test_activation_loads_nothing_heavy_until_flask_and_flask_is_traced(
    minor: str,
    packages: list[str],
    layer_copy: Path,
    otlp_receiver: OtlpReceiver,
    tmp_path: Path,
) -> None:
    venv = make_venv(minor, packages)
    script = tmp_path / "app.py"
    script.write_text(APP % (HEAVY,))
    service = f"startup-{minor}-{len(packages)}"
    facts = _run(venv.python, script, injected_env(layer_copy, otlp_receiver.url, service))

    assert facts["started"] is True  # the distro is active before the app's first line
    assert facts["at_start"] == []
    assert facts["answer"] == {"pong": True}
    # importing Flask and building the app: no SDK, no contrib instrumentation, no wrapt
    after_app = set(facts["after_app"])  # type: ignore[arg-type]
    assert "flask" in after_app
    assert not {"wrapt", "opentelemetry.instrumentation", "opentelemetry.sdk"} & after_app
    # the first request built the provider and loaded contrib's WSGI helpers
    assert {"flask", "opentelemetry.instrumentation", "opentelemetry.sdk"} <= set(
        facts["after_flask"]  # type: ignore[arg-type]
    )
    [span] = otlp_receiver.wait_for_spans(
        1, timeout=30, where=lambda s: s.service == service and s.kind == "SERVER"
    )
    assert span.attributes.get("http.route") == "/ping"
