"""Instructions per request under callgrind: the CPU figure that does not move with load.

    uv run python benchmarks/cpu.py [--quick] [--batch 10|512] [--path /hello|/db]
                                    [--traffic same|varied] [--only NAME ...]
                                    [--json out.json]

For each contender and app (Flask, FastAPI, Django; `/hello`, or with `--path /db` the
endpoint that runs one query: Flask and FastAPI on MariaDB through PyMySQL, Django on
PostgreSQL through psycopg; the database server's work is in its own process, so only
the app's side is counted) `cpu_driver.py` serves N
in-process requests (no HTTP server, no load generator; `--traffic same`, the default,
repeats wrk's one request, `--traffic varied` gives each request its own query id,
request id, client port, user agent and, every second one, incoming trace, as a real
server's traffic, on which per-request-shape memos miss) and then flushes the tracer, so
the export of every span to a local OTLP receiver happens inside the measured process,
at fixed points
(a forced flush every `--batch` requests: 10 by default, one OTLP POST per 10 spans, the
worst case for the per-post cost; 512 is the batch a busy server sends, when the batch
processor's queue fills; the batch processor's timer is set an hour out so no export
depends on timing). Each run is counted
by `valgrind --tool=callgrind` (all threads together). The figure is the marginal cost
`(Ir(N2) - Ir(N1)) / (N2 - N1)`: start-up, imports and warm-up cancel out. Instruction
counts do not depend on the machine's load, so two runs give the same figure to within
a fraction of a percent; they are the figure to optimise against (issue 13).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from contenders import Contender, contenders, exporter_env, venv_for  # noqa: E402

from lumigo_devtools.receiver import OtlpReceiver  # noqa: E402

DRIVER = HERE / "cpu_driver.py"
APPS_DIR = HERE / "apps"
APPS = ("flask", "fastapi", "django")
#: the contenders of the CPU figure: untraced, ours (pip and layer) and vanilla OTel
NAMES = ("baseline", "ours", "ours-layer", "vanilla")
COUNTS = {"full": (200, 1200), "quick": (10, 60)}
#: request counts per batch size other than 10: multiples of the batch, so the marginal
#: holds a whole number of exports
BATCH_COUNTS = {512: {"full": (512, 2048), "quick": (512, 1024)}}
BATCHES = (10, 512)
PATHS = ("/hello", "/db")
TRAFFIC = ("same", "varied")
_TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class CpuFigure:
    contender: str
    app: str
    instructions_per_request: float
    spans_per_request: float  # spans that reached the receiver, per marginal request
    batch: int = 10  # requests (spans) per forced flush: spans per OTLP POST
    path: str = "/hello"
    traffic: str = "same"

    def row(self) -> dict[str, Any]:
        return {
            "contender": self.contender,
            "app": self.app,
            "path": self.path,
            "traffic": self.traffic,
            "batch": self.batch,
            "instructions_per_request": round(self.instructions_per_request),
            "spans_per_request": round(self.spans_per_request, 2),
        }


def valgrind() -> str:
    found = shutil.which("valgrind")
    if not found:
        raise RuntimeError("valgrind is not on PATH (apt-get install valgrind)")
    return found


def auto_instrumentation_dir(python: Path) -> str:
    """What `opentelemetry-instrument` puts on PYTHONPATH before exec'ing the program."""
    code = (
        "import os, opentelemetry.instrumentation.auto_instrumentation as m;"
        "print(os.path.dirname(os.path.abspath(m.__file__)))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def contender_env(
    c: Contender, venv: Path, receiver_url: str, layer: Path | None, work: Path
) -> dict[str, str]:
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(work),
        "LANG": "C.UTF-8",
        # one string-hash seed for every run: set and dict layouts (and so the instructions a
        # lookup takes) no longer differ between runs; it moved a Flask figure by ~0.02 M
        "PYTHONHASHSEED": "0",
        "OTEL_SERVICE_NAME": f"cpu-{c.name}",
        # no timer-driven export: cpu_driver.py flushes every FLUSH_EVERY requests instead,
        # so both runs export at the same points (the export cost stays included)
        "OTEL_BSP_SCHEDULE_DELAY": "3600000",
        **c.env,
        **exporter_env(c, receiver_url, receiver_url),
    }
    if c.uses_layer:
        if layer is None:
            raise RuntimeError("the layer contender needs a layer")
        env["PYTHONPATH"] = str(layer / "bootstrap")
    if c.wrapper and c.wrapper[0] == "opentelemetry-instrument":
        # what the wrapper does, without an exec that callgrind would have to follow
        env["PYTHONPATH"] = auto_instrumentation_dir(venv / "bin" / "python")
    return env


def count_instructions(
    python: Path,
    app: str,
    requests: int,
    env: dict[str, str],
    work: Path,
    batch: int = 10,
    path: str = "/hello",
    traffic: str = "same",
) -> int:
    out = work / f"callgrind.{app}.{requests}.{os.getpid()}.out"
    argv = [
        valgrind(),
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        "--dump-instr=no",
        "--compress-strings=no",
        str(python),
        str(DRIVER),
        app,
        str(requests),
        str(batch),
        path,
        traffic,
    ]
    done = subprocess.run(argv, env=env, cwd=str(work), capture_output=True, text=True)
    if done.returncode != 0 or f"requests={requests}" not in done.stdout:
        raise RuntimeError(f"{app} x{requests} failed: {done.stderr.strip()[-600:]}")
    match = _TOTALS.search(out.read_bytes())
    out.unlink()
    if not match:
        raise RuntimeError(f"no instruction total in callgrind output for {app} x{requests}")
    return int(match.group(1))


def measure(
    c: Contender,
    venv: Path,
    app: str,
    counts: tuple[int, int],
    layer: Path | None,
    work: Path,
    batch: int = 10,
    path: str = "/hello",
    traffic: str = "same",
) -> CpuFigure:
    low, high = counts
    with OtlpReceiver() as receiver:
        env = contender_env(c, venv, receiver.url, layer, work)
        if app == "django":
            # as under gunicorn in run.py: a tracer that reads the settings at start-up
            # (opentelemetry-instrument) must find the settings module before the driver runs
            env["DJANGO_SETTINGS_MODULE"] = "django_settings"
            env["PYTHONPATH"] = ":".join(p for p in (env.get("PYTHONPATH"), str(APPS_DIR)) if p)
        python = venv / "bin" / "python"
        # once without valgrind: byte-compiles every module, so neither count includes that
        subprocess.run(
            [str(python), str(DRIVER), app, "1", str(batch), path, traffic],
            env=env,
            cwd=str(work),
            capture_output=True,
            check=False,
        )
        receiver.clear()
        first = count_instructions(python, app, low, env, work, batch, path, traffic)
        spans_low = len(receiver.spans())
        second = count_instructions(python, app, high, env, work, batch, path, traffic)
        spans_high = len(receiver.spans()) - spans_low
    return CpuFigure(
        c.name,
        app,
        (second - first) / (high - low),
        (spans_high - spans_low) / (high - low),
        batch,
        path,
        traffic,
    )


def prepare(names: tuple[str, ...], work: Path) -> tuple[dict[str, Path], Path | None]:
    chosen = [c for c in contenders() if c.name in names]
    venvs: dict[str, Path] = {}
    for c in chosen:
        if not c.venv_of:
            venvs[c.name] = venv_for(c)
    for c in chosen:
        if c.venv_of:
            venvs[c.name] = venvs.get(c.venv_of) or venv_for(
                next(o for o in contenders() if o.name == c.venv_of)
            )
    layer = None
    if any(c.uses_layer for c in chosen):
        from lumigo_injector.layer import cached_layer, copy_layer

        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        layer = work / "lumigo-otel"
        copy_layer(cached_layer(pythons=[py]), layer)
    return venvs, layer


def run_cpu(
    names: tuple[str, ...] = NAMES,
    quick: bool = False,
    apps: tuple[str, ...] = APPS,
    work: Path | None = None,
    batch: int = 10,
    path: str = "/hello",
    traffic: str = "same",
) -> dict[str, Any]:
    """Measure every (contender, app) on `path` with a forced flush every `batch`
    requests, on `traffic` (`same` or `varied` requests); returns {"counts", "batch",
    "path", "traffic", "rows", "notes"}."""
    own_work = work is None
    work = work or Path(tempfile.mkdtemp(prefix="lumigo-cpu-"))
    counts = BATCH_COUNTS.get(batch, COUNTS)["quick" if quick else "full"]
    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    try:
        if path == "/db":
            from bench_tables import ensure_db, ensure_pg

            ensure_db()
            missing_pg = ensure_pg() if "django" in apps else None
            if missing_pg:
                notes.append(missing_pg)
                apps = tuple(a for a in apps if a != "django")
        venvs, layer = prepare(names, work)
        for c in [c for c in contenders() if c.name in names]:
            for app in apps:
                print(f"  callgrind: {c.name} {app} ...", flush=True)
                try:
                    figure = measure(
                        c, venvs[c.name], app, counts, layer, work, batch, path, traffic
                    )
                except RuntimeError as exc:
                    notes.append(f"cpu {c.name} {app}: {exc}")
                    continue
                rows.append(figure.row())
                print(f"    {json.dumps(rows[-1])}", flush=True)  # kept if a later row fails
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    for row in rows:
        base = next(
            (
                r
                for r in rows
                if r["contender"] == "baseline" and r["app"] == row["app"] and r["batch"] == batch
            ),
            None,
        )
        row["ratio_untraced_to_this"] = (
            round(base["instructions_per_request"] / row["instructions_per_request"], 3)
            if base and row["instructions_per_request"]
            else None
        )
    return {
        "counts": list(counts),
        "batch": batch,
        "path": path,
        "traffic": traffic,
        "rows": rows,
        "notes": notes,
    }


def table(result: dict[str, Any]) -> str:
    low, high = result["counts"]
    lines = [
        f"instructions per in-process request under callgrind (marginal {low}->{high} "
        f"requests to {result.get('path', '/hello')}, {result.get('traffic', 'same')} "
        "traffic, all threads, export to a local receiver included, a forced flush every "
        "spans/POST requests)",
        f"{'contender':<12}{'app':<9}{'spans/POST':>11}{'instr/request':>15}"
        f"{'untraced/this':>15}{'spans/req':>11}",
    ]
    for row in result["rows"]:
        ratio = row["ratio_untraced_to_this"]
        lines.append(
            f"{row['contender']:<12}{row['app']:<9}{row.get('batch', 10):>11}"
            f"{row['instructions_per_request'] / 1e6:>13.3f} M"
            f"{'' if ratio is None else f'{ratio:.2f}':>15}"
            f"{row['spans_per_request']:>11.2f}"
        )
    lines += [f"note: {n}" for n in result["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few requests (CI smoke run)")
    parser.add_argument("--only", nargs="*", choices=NAMES, help="contenders to measure")
    parser.add_argument("--app", nargs="*", choices=APPS, help="apps to measure")
    parser.add_argument(
        "--batch",
        type=int,
        choices=BATCHES,
        default=10,
        help="requests (spans) per forced flush, i.e. per OTLP POST (default 10)",
    )
    parser.add_argument(
        "--path", choices=PATHS, default="/hello", help="the endpoint requested (default /hello)"
    )
    parser.add_argument(
        "--traffic",
        choices=TRAFFIC,
        default="same",
        help="same: wrk's one request every time (default); varied: each request its own"
        " query id, request id, client port, user agent, and every second one an incoming"
        " trace, as a real server's traffic",
    )
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    result = run_cpu(
        tuple(args.only or NAMES),
        args.quick,
        tuple(args.app or APPS),
        batch=args.batch,
        path=args.path,
        traffic=args.traffic,
    )
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if not result["rows"] else 0


if __name__ == "__main__":
    sys.exit(main())
