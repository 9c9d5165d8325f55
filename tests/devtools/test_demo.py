"""`lumigo-injector demo` end to end: a real run, as a newcomer would start it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob:
            found.append(int(proc.name))
    return found


def test_demo_shows_a_trace_across_both_services_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "demo-work"
    done = subprocess.run(
        [sys.executable, "-m", "lumigo_injector.cli", "demo", "--workdir", str(workdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, f"{out}\n{done.stderr}"
    # The injection diff is shown, then the traces.
    added = [line for line in out.splitlines() if line.startswith("+")]
    assert any("name: PYTHONPATH" in line for line in added), out
    # Both deliveries: frontend's init container copies the layer; orders asks for an image
    # volume, run against the built layer directory itself (no copy).
    assert any("name: lumigo-otel-init" in line for line in added), out
    assert any("subPath: lumigo-layer" in line for line in added), out
    assert "frontend:" in out and "layer by init container copy" in out
    assert "orders:" in out and "layer by image volume (the layer read-only, no copy)" in out
    assert not (workdir / "orders" / "volumes" / "lumigo-otel").exists()
    assert (workdir / "frontend" / "volumes" / "lumigo-otel" / "bootstrap").is_dir()
    trace_headers = [line for line in out.splitlines() if line.startswith("trace ")]
    assert any("frontend, orders" in line for line in trace_headers), out
    assert "lumigo.execution_tags.order_id" in out
    assert "hunter2" not in out
    assert "****" in out
    assert "password masked" in out
    # Everything it started is gone.
    assert _processes_mentioning(str(workdir)) == []


def test_demo_manifest_preview_does_not_run_anything(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lumigo_injector.cli",
            "demo",
            "--manifest",
            str(ROOT / "examples" / "kubernetes" / "shop.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "+++ Deployment/frontend (injected)" in done.stdout
    assert "= Service/orders: unchanged" in done.stdout
    assert "trace " not in done.stdout


def test_demo_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lumigo_injector.cli", "demo", "--manifest", str(tmp_path / "no")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "no such file" in done.stderr
    assert done.stdout == ""


def test_demo_port_taken_fails_cleanly(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "lumigo_injector.cli",
                "demo",
                "--receiver-port",
                str(port),
                "--workdir",
                str(tmp_path / "w"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert _processes_mentioning(str(tmp_path / "w")) == []
