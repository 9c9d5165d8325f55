"""What a hanging dependency-report endpoint costs an app's exit (seconds, median of rounds).

    uv run --frozen python benchmarks/exit_costs.py [--rounds 5]

The app starts with the distro, waits until the report's connection is open, prints
"exiting" and returns; the figure is the time from that line to the process's end, with an
endpoint that answers and with one that accepts and never answers (the report then waits
up to `LUMIGO_CONNECTION_TIMEOUT`, 3 s by default, on a daemon thread). The test
(tests/distro/test_distro_export.py) asserts only that exit does not wait for the report;
this is where its cost is measured. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lumigo_devtools.receiver import OtlpReceiver

APP = """\
import os, sys, time
marker = sys.argv[1]
deadline = time.monotonic() + 10
while not os.path.exists(marker) and time.monotonic() < deadline:
    time.sleep(0.01)
print("exiting", flush=True)
"""


class Hanging:
    """Accepts connections on 127.0.0.1, never answers; touches `marker` on the first."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.marker.touch()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def _env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUMIGO_", "OTEL_"))}
    env.update(
        AUTOWRAPT_BOOTSTRAP="lumigo_opentelemetry",
        LUMIGO_TRACER_TOKEN="t_benchmark",
        LUMIGO_DEPENDENCIES_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="600000",
    )
    return env


def exit_seconds(env: dict[str, str], app: Path, marker: Path) -> float:
    proc = subprocess.Popen(
        [sys.executable, str(app), str(marker)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "exiting"
    started = time.monotonic()
    proc.wait(60)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {"answering": [], "hanging": []}
    with tempfile.TemporaryDirectory() as tmp, OtlpReceiver() as receiver:
        app = Path(tmp) / "app.py"
        app.write_text(APP)
        for n in range(args.rounds):  # interleaved, so load on the machine hits both
            answered = Path(tmp) / f"answered-{n}"
            answered.touch()  # the answering endpoint needs no wait
            env = _env(f"{receiver.base_url}/v1/dependencies")
            samples["answering"].append(exit_seconds(env, app, answered))
            marker = Path(tmp) / f"connected-{n}"
            hanging = Hanging(marker)
            try:
                port = hanging.sock.getsockname()[1]
                env = _env(f"http://127.0.0.1:{port}/v1/dependencies")
                samples["hanging"].append(exit_seconds(env, app, marker))
            finally:
                hanging.close()
    for name, values in samples.items():
        print(
            f"exit, report endpoint {name}: {statistics.median(values):.3f} s "
            f"[{min(values):.3f}-{max(values):.3f}] over {len(values)} rounds"
        )


if __name__ == "__main__":
    main()
