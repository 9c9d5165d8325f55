"""Start-up work the distro moves off the app's main thread stays safe around fork().

The dependency report imports importlib.metadata and the HTTP client on its own thread.
A child forked while that thread held an import lock would hang at its first import of
the same module; the report's fork guard makes fork() wait for those imports instead.
Whether a fork lands inside that window depends on timing, so this test cannot force the
race; it checks that forks all through the report's start-up work neither hang (the guard
itself must never deadlock) nor leave a child unable to import, and the report arrives.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.distro_apps import PYTHON, last_json, traced_env

FORKING_APP = """\
import json, os, sys, time
children = []
for attempt in range(12):  # fork at several points of the report's work
    pid = os.fork()
    if pid == 0:
        import email.parser, encodings.idna, importlib.metadata, urllib.request
        importlib.metadata.version("opentelemetry-sdk")
        os._exit(0)
    children.append(pid)
    time.sleep(0.003)
results = {}
deadline = time.monotonic() + 20
for pid in children:
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            results[pid] = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            results[pid] = "hung"
            break
        time.sleep(0.01)
for thread in __import__("threading").enumerate():
    if thread.name == "lumigo-dependency-report":
        thread.join(10)
print(json.dumps({"children": sorted(map(str, results.values()))}))
"""


def test_forks_during_the_dependency_report_leave_children_able_to_import(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    script = tmp_path / "forking_app.py"
    script.write_text(FORKING_APP)
    env = traced_env(
        None,
        LUMIGO_DEPENDENCIES_ENDPOINT=f"{otlp_receiver.base_url}/v1/dependencies",
        OTEL_BSP_SCHEDULE_DELAY="600000",
    )
    result = subprocess.run(
        [PYTHON, str(script)], env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert result.returncode == 0, result.stderr
    assert last_json(result.stdout)["children"] == ["0"] * 12
    [report] = otlp_receiver.wait_for_dependencies()
    assert any(p["name"].lower() == "opentelemetry-sdk" for p in report["dependencies"])
