"""Real apps on real interpreters, injected the way a pod is: a copied layer and env vars only.

Every case runs the app twice, without and with the layer, and compares what the app
answered and printed; the layer may only add spans (or, when it abstains, one warning).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from lumigo_injector.layer import set_name
from lumigo_injector.layer.build import host_arch
from tests.helpers.init_image import read_only_mount
from tests.helpers.layer_apps import (
    Exercise,
    RunningApp,
    added_entries,
    copy_like_init,
    exercise,
    injected_env,
    layer_for_tests,
    make_read_only,
    make_venv,
    make_writable,
    plain_env,
    tree_entries,
    write_fastapi_app,
    write_flask_app,
)

pytestmark = pytest.mark.slow

HELLO_PATHS = ("/hello/alpha", "/hello/beta")


@pytest.fixture(scope="module")
def layer() -> Path:
    return layer_for_tests()


@pytest.fixture(scope="module")
def layer_copy(layer: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One init-container copy shared by the tests that do not alter it."""
    return copy_like_init(layer, tmp_path_factory.mktemp("volume") / "lumigo-otel")


def _hello_server_spans(service: str) -> Callable[[ReceivedSpan], bool]:
    return lambda s: s.kind == "SERVER" and s.service == service and "/hello" in s.name


def _wait_for_hello_spans(receiver: OtlpReceiver, service: str) -> Callable[[RunningApp], None]:
    def wait(_app: RunningApp) -> None:
        receiver.wait_for_spans(len(HELLO_PATHS), timeout=30, where=_hello_server_spans(service))

    return wait


def _assert_same_app_behaviour(baseline: Exercise, injected: Exercise) -> None:
    assert injected.bodies == baseline.bodies
    assert injected.output.stdout == baseline.output.stdout
    assert injected.output.returncode == baseline.output.returncode


def _assert_traced_cleanly(run: Exercise) -> None:
    assert run.output.layer_warnings() == []
    assert "Traceback" not in run.output.stderr, run.output.stderr
    assert run.facts["modules"]["lumigo_opentelemetry"] is not None


def _assert_abstained(baseline: Exercise, injected: Exercise, *needles: str) -> None:
    _assert_same_app_behaviour(baseline, injected)
    [warning] = injected.output.layer_warnings()
    for needle in needles:
        assert needle in warning
    assert injected.output.stderr.replace(warning + "\n", "", 1) == baseline.output.stderr
    assert injected.facts["modules"]["lumigo_opentelemetry"] is None
    assert injected.facts["modules"]["opentelemetry.trace"] is None


@pytest.mark.parametrize("minor", ["3.9", "3.10", "3.11", "3.12", "3.13"])
def test_flask_app_traced_on_each_python(
    minor: str, layer: Path, layer_copy: Path, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    venv = make_venv(minor, ["flask"])
    script = write_flask_app(tmp_path)
    service = f"flask-py{minor}"
    baseline = exercise(venv, script, plain_env(), HELLO_PATHS)
    injected = exercise(
        venv, script, injected_env(layer_copy, otlp_receiver.url, service), HELLO_PATHS,
        while_running=_wait_for_hello_spans(otlp_receiver, service),
    )  # fmt: skip
    _assert_same_app_behaviour(baseline, injected)
    _assert_traced_cleanly(injected)
    expected_set = set_name(minor, "glibc", host_arch())
    assert injected.facts["modules"]["lumigo_opentelemetry"].startswith(
        str(layer_copy / expected_set)
    )
    spans = [s for s in otlp_receiver.spans() if _hello_server_spans(service)(s)]
    assert {s.attributes.get("http.route") for s in spans} <= {"/hello/<name>", None}
    assert added_entries(layer_copy, tree_entries(layer)) == []


def test_app_pinning_old_protobuf_runs_untouched(
    layer_copy: Path, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    venv = make_venv("3.11", ["flask", "protobuf<4"])
    script = write_flask_app(tmp_path)
    baseline = exercise(venv, script, plain_env())
    injected = exercise(venv, script, injected_env(layer_copy, otlp_receiver.url))
    _assert_abstained(baseline, injected, "the app has protobuf 3.", "needs protobuf")
    assert otlp_receiver.spans() == []


def test_interpreter_without_a_set_runs_untouched(
    layer: Path, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    arch = host_arch()
    copy = copy_like_init(
        layer, tmp_path / "volume",
        without_sets=[set_name("3.12", "glibc", arch), set_name("3.12", "musl", arch)],
    )  # fmt: skip
    venv = make_venv("3.12", ["flask"])
    script = write_flask_app(tmp_path / "app")
    baseline = exercise(venv, script, plain_env())
    injected = exercise(venv, script, injected_env(copy, otlp_receiver.url))
    _assert_abstained(baseline, injected, "no package set for CPython 3.12")
    assert otlp_receiver.spans() == []


def test_app_sitecustomize_still_runs_and_app_is_traced(
    layer_copy: Path, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    venv = make_venv("3.11", ["flask"], key="own-sitecustomize")
    own = venv.site_packages() / "sitecustomize.py"
    own.write_text(
        "import os\nos.environ['APP_SITECUSTOMIZE_RAN'] = 'yes'\nprint('app sitecustomize ran')\n"
    )
    script = write_flask_app(tmp_path)
    baseline = exercise(venv, script, plain_env())
    injected = exercise(
        venv, script, injected_env(layer_copy, otlp_receiver.url, "with-sitecustomize"),
        while_running=_wait_for_hello_spans(otlp_receiver, "with-sitecustomize"),
    )  # fmt: skip
    _assert_same_app_behaviour(baseline, injected)
    _assert_traced_cleanly(injected)
    assert injected.output.stdout.startswith("app sitecustomize ran\n")
    assert injected.facts["app_sitecustomize_ran"] == "yes"
    assert injected.facts["sitecustomize"] == str(own)


def test_app_requests_is_the_one_used(
    layer_copy: Path, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    venv = make_venv("3.12", ["flask", "requests"])
    script = write_flask_app(tmp_path)
    baseline = exercise(venv, script, plain_env())
    injected = exercise(
        venv, script, injected_env(layer_copy, otlp_receiver.url, "with-requests"),
        while_running=_wait_for_hello_spans(otlp_receiver, "with-requests"),
    )  # fmt: skip
    _assert_same_app_behaviour(baseline, injected)
    _assert_traced_cleanly(injected)
    app_requests = baseline.facts["modules"]["requests"]
    assert app_requests.startswith(str(venv.site_packages()))
    assert injected.facts["modules"]["requests"] == app_requests


def test_newest_fastapi_uses_its_own_api_one_server_span_per_request(
    layer_copy: Path, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    venv = make_venv("3.13", ["fastapi", "uvicorn"])
    script = write_fastapi_app(tmp_path)
    service = "newest-fastapi"
    baseline = exercise(venv, script, plain_env())
    injected = exercise(
        venv, script, injected_env(layer_copy, otlp_receiver.url, service),
        while_running=_wait_for_hello_spans(otlp_receiver, service),
    )  # fmt: skip
    _assert_same_app_behaviour(baseline, injected)
    _assert_traced_cleanly(injected)
    # FastAPI brings opentelemetry-api; the app's copy is the one in use
    assert injected.facts["modules"]["opentelemetry.trace"].startswith(str(venv.site_packages()))
    # the app has exited and flushed: exactly one server span per request
    spans = [s for s in otlp_receiver.spans() if _hello_server_spans(service)(s)]
    assert len(spans) == len(HELLO_PATHS), [(s.name, s.scope) for s in spans]


def test_read_only_layer_copy(layer: Path, otlp_receiver: OtlpReceiver, tmp_path: Path) -> None:
    copy = copy_like_init(layer, tmp_path / "volume")
    make_read_only(copy)
    try:
        venv = make_venv("3.10", ["flask"])
        script = write_flask_app(tmp_path / "app")
        baseline = exercise(venv, script, plain_env())
        injected = exercise(
            venv, script, injected_env(copy, otlp_receiver.url, "read-only-layer"),
            while_running=_wait_for_hello_spans(otlp_receiver, "read-only-layer"),
        )  # fmt: skip
        _assert_same_app_behaviour(baseline, injected)
        _assert_traced_cleanly(injected)
        assert added_entries(copy, tree_entries(layer)) == []
    finally:
        make_writable(copy)
        shutil.rmtree(copy)


def test_image_volume_pod_runs_on_the_layer_itself_read_only(
    layer: Path, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """No copy: the built layer directory, mounted read-only where the pod mounts it."""
    target = tmp_path / "lumigo-otel"
    target.mkdir()
    before = tree_entries(layer)
    venv = make_venv("3.12", ["flask"])
    script = write_flask_app(tmp_path / "app")
    baseline = exercise(venv, script, plain_env(), HELLO_PATHS)
    injected = exercise(
        venv, script, injected_env(target, otlp_receiver.url, "image-volume"), HELLO_PATHS,
        while_running=_wait_for_hello_spans(otlp_receiver, "image-volume"),
        wrapper=read_only_mount(layer, target),
    )  # fmt: skip
    _assert_same_app_behaviour(baseline, injected)
    _assert_traced_cleanly(injected)
    expected_set = target / set_name("3.12", "glibc", host_arch())
    assert injected.facts["modules"]["lumigo_opentelemetry"].startswith(str(expected_set))
    assert tree_entries(layer) == before
    assert list(target.iterdir()) == []  # the mount was the app's alone
