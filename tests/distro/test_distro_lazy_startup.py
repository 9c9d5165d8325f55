"""The provider is built on first use, and nothing the app does through any API is lost.

At start-up the distro reads its settings and registers import hooks only; the SDK, the
resource and the exporter are set up when the app first imports the OpenTelemetry API or
SDK, an instrumented library, or asks `lumigo_opentelemetry` for its provider. These
tests run real processes against the devtools OTLP receiver.
"""

from __future__ import annotations

import subprocess

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.distro_apps import PYTHON, distro_lines, last_json, traced_env

# Long enough that only the exit flush (or force_flush) can deliver spans.
NO_TIMER = {"OTEL_BSP_SCHEDULE_DELAY": "600000"}

REPORT = """
import json, sys, threading
print(json.dumps({
    "sdk_loaded": "opentelemetry.sdk" in sys.modules,
    "api_loaded": "opentelemetry.trace" in sys.modules,
    "threads": sorted(t.name for t in threading.enumerate()),
}))
"""


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_an_app_that_traces_nothing_loads_no_sdk_and_exits_cleanly(
    otlp_receiver: OtlpReceiver,
) -> None:
    result = _run("import os, json, string" + REPORT, traced_env(otlp_receiver))

    assert result.returncode == 0, result.stderr
    report = last_json(result.stdout)
    assert report == {"sdk_loaded": False, "api_loaded": False, "threads": ["MainThread"]}
    assert distro_lines(result.stderr) == []
    assert otlp_receiver.requests() == []


def test_settings_warnings_are_shown_once_at_start_even_if_nothing_is_traced(
    otlp_receiver: OtlpReceiver,
) -> None:
    env = traced_env(otlp_receiver, LUMIGO_AUTO_FILTER_EMPTY_SQS="perhaps")

    result = _run("import lumigo_opentelemetry" + REPORT, env)

    assert result.returncode == 0, result.stderr
    assert last_json(result.stdout)["sdk_loaded"] is False
    warnings = distro_lines(result.stderr, "WARNING")
    assert len(warnings) == 1 and "LUMIGO_AUTO_FILTER_EMPTY_SQS='perhaps'" in warnings[0]


def test_masking_setting_warnings_are_start_up_warnings(otlp_receiver: OtlpReceiver) -> None:
    env = traced_env(otlp_receiver, LUMIGO_SECRET_MASKING_REGEX="[not json")

    result = _run("pass", env)

    assert result.returncode == 0, result.stderr
    warnings = distro_lines(result.stderr, "WARNING")
    assert len(warnings) == 1 and "LUMIGO_SECRET_MASKING_REGEX is invalid" in warnings[0]


def test_a_span_through_the_otel_api_is_exported_at_exit(otlp_receiver: OtlpReceiver) -> None:
    code = (
        "from opentelemetry import trace\n"
        "tracer = trace.get_tracer('lazy')\n"
        "with tracer.start_as_current_span('api-span'):\n"
        "    pass\n"
        "print(type(trace.get_tracer_provider()).__module__)\n"
    )

    result = _run(code, traced_env(otlp_receiver, **NO_TIMER))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "opentelemetry.sdk.trace"
    [span] = otlp_receiver.wait_for_spans(1)
    assert span.name == "api-span"
    assert span.service == "distro-test-app"
    assert span.resource["lumigo.distro.version"]


def test_importing_the_sdk_first_still_gives_the_app_our_provider(
    otlp_receiver: OtlpReceiver,
) -> None:
    """The SDK imports the API while it is itself half imported: the provider is set up
    once the SDK's import is complete, before the app's next line."""
    code = (
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry import trace\n"
        "import lumigo_opentelemetry\n"
        "provider = trace.get_tracer_provider()\n"
        "assert isinstance(provider, TracerProvider), provider\n"
        "assert provider is lumigo_opentelemetry.tracer_provider\n"
        "mine = TracerProvider()\n"
        "trace.set_tracer_provider(mine)  # refused: ours is set\n"
        "assert trace.get_tracer_provider() is provider\n"
        "with trace.get_tracer('sdk-first').start_as_current_span('sdk-first-span'):\n"
        "    pass\n"
    )

    result = _run(code, traced_env(otlp_receiver, **NO_TIMER))

    assert result.returncode == 0, result.stderr
    [span] = otlp_receiver.wait_for_spans(1)
    assert span.name == "sdk-first-span"
    assert span.service == "distro-test-app"


def test_a_tracer_taken_before_the_provider_exists_still_records(
    otlp_receiver: OtlpReceiver,
) -> None:
    """A tracer taken while the SDK's own import was under way (the proxy the API hands
    out) records once the provider is set."""
    code = (
        "import opentelemetry.sdk.trace.export\n"
        "from opentelemetry import trace\n"
        "with trace.get_tracer('early').start_as_current_span('early-span'):\n"
        "    pass\n"
    )

    result = _run(code, traced_env(otlp_receiver, **NO_TIMER))

    assert result.returncode == 0, result.stderr
    [span] = otlp_receiver.wait_for_spans(1)
    assert span.name == "early-span"


def test_lumigo_wrapped_alone_is_traced_and_exported(otlp_receiver: OtlpReceiver) -> None:
    code = (
        "import sys\n"
        "from lumigo_opentelemetry import lumigo_wrapped\n"
        "assert 'opentelemetry.sdk' not in sys.modules\n"
        "@lumigo_wrapped\n"
        "def add(a, b):\n"
        "    return a + b\n"
        "print(add(2, 3))\n"
    )
    env = traced_env(otlp_receiver, **NO_TIMER)
    del env["AUTOWRAPT_BOOTSTRAP"]

    result = _run(code, env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5"
    [span] = otlp_receiver.wait_for_spans(1)
    assert span.name == "LumigoRoot"
    assert span.attributes["return_value"] == "5"


def test_the_public_provider_builds_on_request_and_flushes(otlp_receiver: OtlpReceiver) -> None:
    code = (
        "import sys\n"
        "import lumigo_opentelemetry\n"
        "assert 'opentelemetry.sdk' not in sys.modules\n"
        "provider = lumigo_opentelemetry.tracer_provider\n"
        "with provider.get_tracer('direct').start_as_current_span('direct-span'):\n"
        "    pass\n"
        "from opentelemetry import trace\n"
        "print(trace.get_tracer_provider() is provider, provider.force_flush())\n"
    )

    result = _run(code, traced_env(otlp_receiver, **NO_TIMER))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True True"
    [span] = otlp_receiver.wait_for_spans(1)
    assert span.name == "direct-span"


def test_execution_tags_build_the_provider_and_reach_the_span(
    otlp_receiver: OtlpReceiver,
) -> None:
    code = (
        "from lumigo_opentelemetry import add_execution_tags, tracer_provider\n"
        "tracer = tracer_provider.get_tracer('tags')\n"
        "with tracer.start_as_current_span('tagged'):\n"
        "    add_execution_tags({'tenant': 'acme'})\n"
    )

    result = _run(code, traced_env(otlp_receiver, **NO_TIMER))

    assert result.returncode == 0, result.stderr
    [span] = otlp_receiver.wait_for_spans(1)
    assert span.attributes["lumigo.execution_tags.tenant"] == "acme"


def test_switched_off_the_api_gets_no_provider_of_ours(otlp_receiver: OtlpReceiver) -> None:
    code = (
        "from opentelemetry import trace\n"
        "with trace.get_tracer('off').start_as_current_span('off-span'):\n"
        "    pass\n"
        "import sys\n"
        "finders = [type(f).__name__ for f in sys.meta_path]\n"
        "print(type(trace.get_tracer_provider()).__name__, 'PostImportFinder' in finders)\n"
    )

    result = _run(code, traced_env(otlp_receiver, LUMIGO_SWITCH_OFF="true"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ProxyTracerProvider False"  # no import hook either
    assert otlp_receiver.requests() == []


def test_a_child_forked_before_first_use_builds_and_flushes_its_own_provider(
    otlp_receiver: OtlpReceiver,
) -> None:
    """A pre-fork server forks before the app traces anything: each process sets the
    provider up on its own first use and flushes it at its own exit."""
    code = (
        "import os, sys\n"
        "pid = os.fork()\n"
        "from opentelemetry import trace\n"
        "name = 'child-span' if pid == 0 else 'parent-span'\n"
        "with trace.get_tracer('fork').start_as_current_span(name):\n"
        "    pass\n"
        "if pid == 0:\n"
        "    sys.exit(0)  # a normal exit: the exit flush runs\n"
        "os.waitpid(pid, 0)\n"
    )

    result = _run(code, traced_env(otlp_receiver, **NO_TIMER))

    assert result.returncode == 0, result.stderr
    spans = otlp_receiver.wait_for_spans(2)
    assert sorted(s.name for s in spans) == ["child-span", "parent-span"]
