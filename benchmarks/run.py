"""Side-by-side benchmarks: our distro against the tracers users would pick instead.

    uv run python benchmarks/run.py [--quick] [--json out.json] [--only NAME ...] [--apps APP ...]

Every figure is measured in one run on one machine, contenders interleaved round by
round (A B C A B C ...), and reported as the median over rounds with its spread, as a
ratio to (or difference from) the untraced baseline of the same run. Nothing here
asserts a timing; CI runs `--quick` only so the harness keeps working.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_tables import ensure_db, ensure_pg  # noqa: E402
from contenders import (  # noqa: E402
    Contender,
    cache_dir,
    contenders,
    exporter_env,
    installed_versions,
    venv_for,
)
from cpu import run_cpu  # noqa: E402
from cpu import table as cpu_table  # noqa: E402
from load import Server, peak_rss_mib, run_wrk, timed_run  # noqa: E402
from sinks import AgentSink, BlackHole  # noqa: E402

from lumigo_devtools.demo.apps import free_port  # noqa: E402
from lumigo_devtools.receiver import OtlpReceiver  # noqa: E402

APPS = HERE / "apps"
CPU_NAMES = ("baseline", "ours", "ours-layer", "vanilla")
CPU_QUICK_NAMES = ("baseline", "ours")
VERSIONED = [
    "flask",
    "fastapi",
    "django",
    "gunicorn",
    "uvicorn",
    "pymysql",
    "psycopg",
    "opentelemetry-sdk",
    "lumigo_opentelemetry",
    "ddtrace",
    "opentelemetry-distro",
]
#: the start-up rows' `python -c` commands, by metric prefix
STARTUP_CODES = (("import_flask", "import flask"), ("import_fastapi", "import fastapi"),
                 ("bare", "pass"))  # fmt: skip
#: start-up runs per contender, command and round; the fastest is the round's sample
STARTUP_TRIES = 3
#: the web apps under load, in the order they run (Django: on PostgreSQL)
WEB_APPS = ("flask", "fastapi", "django")


class Samples:
    """Named lists of samples, summarised as median and spread."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def add(self, metric: str, contender: str, value: float) -> None:
        self.data[metric][contender].append(value)

    def median(self, metric: str, contender: str) -> float | None:
        values = self.data.get(metric, {}).get(contender)
        return statistics.median(values) if values else None

    def spread(self, metric: str, contender: str) -> tuple[float, float] | None:
        values = self.data.get(metric, {}).get(contender)
        return (min(values), max(values)) if values else None


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick: bool = args.quick
        self.samples = Samples()
        self.work = Path(tempfile.mkdtemp(prefix="lumigo-bench-"))
        self.receiver = OtlpReceiver(decode=False).start()
        self.agent = AgentSink()
        self.all = [c for c in contenders() if not args.only or c.name in args.only]
        if not any(c.name == "baseline" for c in self.all):
            self.all.insert(0, contenders()[0])
        self.venvs: dict[str, Path] = {}
        self.layer: Path | None = None
        self.notes: list[str] = []
        self.versions: dict[str, dict[str, str]] = {}

    # --- setup ------------------------------------------------------------------------

    def prepare(self) -> None:
        for c in self.all:
            if c.venv_of:
                continue
            print(f"  venv for {c.name} ...", flush=True)
            try:
                self.venvs[c.name] = venv_for(c)
            except subprocess.CalledProcessError as exc:
                self.notes.append(f"{c.name}: venv failed ({exc}); left out")
        for c in self.all:
            if c.venv_of and c.venv_of in self.venvs:
                self.venvs[c.name] = self.venvs[c.venv_of]
        self.all = [c for c in self.all if c.name in self.venvs]
        for c in self.all:
            self.versions[c.name] = installed_versions(self.venvs[c.name], VERSIONED)
        if any(c.uses_layer for c in self.all):
            from lumigo_injector.layer import cached_layer, copy_layer

            py = f"{sys.version_info.major}.{sys.version_info.minor}"
            built = cached_layer(pythons=[py])
            self.layer = self.work / "lumigo-otel"
            copy_layer(built, self.layer)

    def env_for(self, c: Contender, endpoint: str | None = None) -> dict[str, str]:
        venv = self.venvs[c.name]
        env = {
            "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.work),
            "LANG": "C.UTF-8",
            "OTEL_SERVICE_NAME": f"bench-{c.name}",
            **c.env,
            **exporter_env(c, endpoint or self.receiver.url, self.agent.url),
        }
        if endpoint and c.name == "ddtrace":
            env["DD_TRACE_AGENT_URL"] = endpoint
        if c.uses_layer and self.layer is not None:
            env["PYTHONPATH"] = str(self.layer / "bootstrap")
        return env

    def argv(self, c: Contender, app: str, port: int) -> list[str]:
        venv = self.venvs[c.name] / "bin"
        wrapper = [str(venv / c.wrapper[0]), *c.wrapper[1:]] if c.wrapper else []
        if app in ("flask", "django"):
            target = "flask_app:app" if app == "flask" else "django_app:application"
            return [
                *wrapper,
                str(venv / "gunicorn"),
                "-w",
                "1",
                "-k",
                "sync",
                "-b",
                f"127.0.0.1:{port}",
                "--chdir",
                str(APPS),
                target,
            ]
        return [
            *wrapper,
            str(venv / "python"),
            "-m",
            "uvicorn",
            "fastapi_app:app",
            "--app-dir",
            str(APPS),
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]

    # --- measurements -----------------------------------------------------------------

    def serve(self, c: Contender, app: str, endpoint: str | None = None) -> tuple[Server, str]:
        port = free_port()
        env = self.env_for(c, endpoint)
        if app == "django":
            # a tracer that instruments Django before gunicorn's --chdir (opentelemetry-
            # instrument reads the settings at start-up) must find the settings module
            env["DJANGO_SETTINGS_MODULE"] = "django_settings"
            env["PYTHONPATH"] = ":".join(p for p in (env.get("PYTHONPATH"), str(APPS)) if p)
        server = Server(self.argv(c, app, port), env, APPS, self.work / f"{c.name}-{app}.log")
        return server, f"http://127.0.0.1:{port}"

    def _exported(self) -> int:
        return len(self.receiver.requests()) + self.agent.hits

    def web_round(self, app: str, seconds: float) -> None:
        for c in self.all:
            exported_before = self._exported()
            server, base = self.serve(c, app)
            try:
                try:
                    startup = server.wait_ready(base + "/hello")
                except RuntimeError as exc:
                    self.notes.append(f"{c.name} {app}: {exc}")
                    continue
                self.samples.add(f"{app}.startup_s", c.name, startup)
                rss_start = server.rss_mib()
                served = 0
                for endpoint in ("hello", "db"):
                    if self.quick and (endpoint, app) in (("db", "fastapi"), ("hello", "django")):
                        continue  # quick: the smoke run keeps one Django figure, on PostgreSQL
                    run_wrk(base + f"/{endpoint}", 1)  # warm-up
                    result = run_wrk(base + f"/{endpoint}", seconds)
                    served += result.requests
                    if result.errors:
                        self.notes.append(f"{c.name} {app} /{endpoint}: {result.errors} errors")
                    key = f"{app}.{endpoint}"
                    self.samples.add(f"{key}.rps", c.name, result.rps)
                    self.samples.add(f"{key}.p50_ms", c.name, result.p50_ms)
                    self.samples.add(f"{key}.p99_ms", c.name, result.p99_ms)
                if app == "flask":
                    while not self.quick and served < 10_000:
                        served += run_wrk(base + "/hello", 2).requests
                    self.samples.add("flask.rss_mib", c.name, server.rss_mib())
                    self.samples.add("flask.rss_growth_mib", c.name, server.rss_mib() - rss_start)
                    self.samples.add("flask.requests_served", c.name, served)
            finally:
                server.stop()
            # A tracer that exported nothing was not tracing: its figures would flatter it.
            exported = self._exported() - exported_before
            if c.name != "baseline" and exported == 0:
                self.notes.append(f"{c.name} exported nothing under {app}: it was not tracing")

    def blackhole_round(self, seconds: float) -> None:
        hole = BlackHole()
        try:
            names = ["baseline", "ours"] if self.quick else [c.name for c in self.all]
            for c in [c for c in self.all if c.name in names]:
                server, base = self.serve(c, "flask", endpoint=hole.url + "/v1/traces")
                try:
                    try:
                        server.wait_ready(base + "/hello", timeout=30)
                    except RuntimeError:
                        self.notes.append(
                            f"{c.name}: with the receiver black-holed, its Flask app did not "
                            "answer within 30 s (it blocks on the hung backend)"
                        )
                        continue
                    run_wrk(base + "/hello", 1)
                    rss_start = server.rss_mib()
                    result = run_wrk(base + "/hello", seconds)
                    result2 = run_wrk(base + "/hello", seconds)
                    self.samples.add("blackhole.p50_ms", c.name, result2.p50_ms)
                    self.samples.add("blackhole.p99_ms", c.name, result2.p99_ms)
                    self.samples.add("blackhole.rps", c.name, (result.rps + result2.rps) / 2)
                    self.samples.add(
                        "blackhole.rss_growth_mib", c.name, server.rss_mib() - rss_start
                    )
                finally:
                    server.stop()
        finally:
            hole.close()

    def startup_round(self) -> None:
        """One start-up sample per contender and command: the best of `STARTUP_TRIES` runs.

        A single run's wall time on a shared machine moves by +-100 ms with what the other
        core does; the fastest of a few is the one least disturbed.
        """
        tries = 1 if self.quick else STARTUP_TRIES
        for c in self.all:
            venv = self.venvs[c.name] / "bin"
            wrapper = [str(venv / c.wrapper[0]), *c.wrapper[1:]] if c.wrapper else []
            env = self.env_for(c)
            for metric, code in STARTUP_CODES:
                argv = [*wrapper, str(venv / "python"), "-c", code]
                wall = min(timed_run(argv, env, APPS) for _ in range(tries))
                self.samples.add(f"{metric}.wall_ms", c.name, wall * 1000)
                self.samples.add(f"{metric}.maxrss_mib", c.name, peak_rss_mib(argv, env, APPS))

    def exporter_throughput(self) -> None:
        if "ours" not in self.venvs:
            return
        script = HERE / "exporter_throughput.py"
        seconds = "1" if self.quick else "5"
        with OtlpReceiver(decode=False) as sink:
            done = subprocess.run(
                [str(self.venvs["ours"] / "bin" / "python"), str(script), sink.url, seconds],
                capture_output=True,
                text=True,
                env={"PATH": "/usr/bin:/bin"},
            )
        if done.returncode != 0:
            self.notes.append(f"exporter throughput failed: {done.stderr.strip()[-300:]}")
            return
        self.samples.add("exporter.spans_per_s", "ours", float(done.stdout.strip()))

    def layer_figures(self) -> dict[str, Any]:
        from lumigo_injector.layer import cached_layer, copy_layer

        try:
            built = cached_layer()
        except Exception as exc:  # report, don't crash the whole run
            self.notes.append(f"layer build failed: {exc}")
            return {}
        size = disk_usage_mib(built)
        copies = []
        for _ in range(1 if self.quick else 3):
            dest = self.work / f"layer-copy-{len(copies)}"
            started = time.perf_counter()
            copy_layer(built, dest)
            copies.append(time.perf_counter() - started)
            shutil.rmtree(dest, ignore_errors=True)
        sets = sorted(p.name for p in built.iterdir() if p.is_dir() and p.name.startswith("py3"))
        return {
            "path": str(built),
            "size_mib": size,
            "apparent_mib": disk_usage_mib(built, apparent=True),
            "copy_s": statistics.median(copies),
            "sets": sets,
            "pod_startup": self.pod_startup_work(built),
        }

    def pod_startup_work(self, built: Path) -> dict[str, dict[str, Any]]:
        """What a pod does before its app starts, per delivery.

        init-container: the init image's entrypoint (`copy-layer.sh`, sh + tar) copies every
        file of the layer into the emptyDir; measured here with the same script. image-volume:
        the kubelet mounts the node's cached image read-only: no file is copied, no container
        runs (the image pull, once per node and version, is the same for both).
        """
        files = sum(1 for p in built.rglob("*") if p.is_file() and not p.is_symlink())
        runs = []
        for _ in range(1 if self.quick else 3):
            dest = self.work / f"init-container-{len(runs)}"
            started = time.perf_counter()
            done = subprocess.run(
                ["/bin/sh", str(built / "copy-layer.sh"), str(dest)],
                capture_output=True,
                text=True,
                check=False,
            )
            runs.append(time.perf_counter() - started)
            if done.returncode != 0:
                self.notes.append(f"copy-layer.sh failed: {done.stderr.strip()[-300:]}")
                return {}
            copied = sum(1 for p in dest.rglob("*") if p.is_file() and not p.is_symlink())
            shutil.rmtree(dest, ignore_errors=True)
        return {
            "init-container": {
                "files_copied": copied,
                "copy_s": statistics.median(runs),
                "volume_mib": disk_usage_mib(built),
            },
            "image-volume": {
                "files_copied": 0,
                "copy_s": 0.0,
                "volume_mib": 0.0,
                "files_in_image": files,
            },
        }

    def webhook_figures(self) -> dict[str, Any]:
        try:
            from webhook_bench import run_webhook_bench
        except ImportError:
            return {}
        try:
            return run_webhook_bench(self.work, quick=self.quick)
        except Exception as exc:
            self.notes.append(f"webhook benchmark failed: {exc}")
            return {}

    def close(self) -> None:
        self.receiver.stop()
        self.agent.close()
        shutil.rmtree(self.work, ignore_errors=True)


def disk_usage_mib(path: Path, apparent: bool = False) -> float:
    """Size of a tree with hard links counted once: blocks used, or bytes (`apparent`)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for p in path.rglob("*"):
        st = p.lstat()
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        total += st.st_size if apparent else st.st_blocks * 512
    return total / 2**20


# --- report ---------------------------------------------------------------------------


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}{unit}"
    return f"{value:.2f}{unit}"


def build_report(
    bench: Bench, layer: dict[str, Any], webhook: dict[str, Any], cpu: dict[str, Any] | None = None
) -> dict[str, Any]:
    s = bench.samples
    names = [c.name for c in bench.all]
    rows: list[tuple[str, Callable[[str], str]]] = []

    def ratio(metric: str) -> Callable[[str], str]:
        def cell(name: str) -> str:
            base, value = s.median(metric, "baseline"), s.median(metric, name)
            if not base or value is None:
                return "-"
            lo, hi = s.spread(metric, name) or (value, value)
            spread = f" [{lo / base:.2f}-{hi / base:.2f}]" if lo != hi else ""
            return f"{value / base:.2f}{spread}"

        return cell

    def added(metric: str, scale: float = 1.0, unit: str = "") -> Callable[[str], str]:
        def cell(name: str) -> str:
            base, value = s.median(metric, "baseline"), s.median(metric, name)
            if base is None or value is None:
                return "-"
            return f"{(value - base) * scale:+.0f}{unit}"

        return cell

    def plain(metric: str, unit: str = "") -> Callable[[str], str]:
        return lambda name: _fmt(s.median(metric, name), unit)

    for app in WEB_APPS:
        for endpoint in ("hello", "db"):
            key = f"{app}.{endpoint}"
            if f"{key}.rps" not in s.data:
                continue
            rows.append((f"{app} /{endpoint} req/s (ratio to untraced)", ratio(f"{key}.rps")))
            rows.append((f"{app} /{endpoint} p50 latency ms", plain(f"{key}.p50_ms")))
            rows.append((f"{app} /{endpoint} p99 latency ms", plain(f"{key}.p99_ms")))
    rows.append(("flask start-up to first 200 (added ms)", added("flask.startup_s", 1000, " ms")))
    for app in WEB_APPS[1:]:
        if f"{app}.startup_s" in s.data:
            rows.append(
                (f"{app} start-up to first 200 (added ms)", added(f"{app}.startup_s", 1000, " ms"))
            )
    rows.append(("python -c 'import flask' (added ms)", added("import_flask.wall_ms", 1, " ms")))
    rows.append(
        ("python -c 'import fastapi' (added ms)", added("import_fastapi.wall_ms", 1, " ms"))
    )
    rows.append(("python -c pass, no instrumented lib (added ms)", added("bare.wall_ms", 1, " ms")))
    rows.append(("python -c pass, max RSS (added MiB)", added("bare.maxrss_mib", 1, " MiB")))
    rows.append(("flask RSS after load, MiB", plain("flask.rss_mib")))
    rows.append(("flask requests served in that run", plain("flask.requests_served")))
    if "blackhole.p99_ms" in s.data:
        rows.append(("receiver black-holed: req/s (ratio to untraced)", ratio("blackhole.rps")))
        rows.append(("receiver black-holed: p99 ms", plain("blackhole.p99_ms")))
        rows.append(("receiver black-holed: RSS growth MiB", plain("blackhole.rss_growth_mib")))
    rows.append(("exporter spans/s to local receiver", plain("exporter.spans_per_s")))

    labels = {c.name: c.label for c in bench.all}
    width = max(len(r[0]) for r in rows) + 2
    header = "figure".ljust(width) + "".join(n.ljust(18) for n in names)
    lines = [header, "-" * len(header)]
    table = []
    for title, cell in rows:
        cells = [cell(n) for n in names]
        table.append({"figure": title, **dict(zip(names, cells))})
        lines.append(title.ljust(width) + "".join(c.ljust(18) for c in cells))
    if layer:
        lines.append("")
        lines.append(
            f"layer: {len(layer['sets'])} sets {', '.join(layer['sets'])}: "
            f"{layer['size_mib']:.1f} MiB on disk, copy {layer['copy_s'] * 1000:.0f} ms"
        )
        lines += [
            f"pod start-up work, {mode}: {work['files_copied']} files copied in "
            f"{work['copy_s'] * 1000:.0f} ms, {work['volume_mib']:.1f} MiB of emptyDir"
            for mode, work in (layer.get("pod_startup") or {}).items()
        ]
    if cpu and cpu.get("rows"):
        lines.append("")
        lines.append(cpu_table(cpu))
    if webhook:
        lines.append("")
        lines.append("webhook admission (loopback TLS):")
        for row in webhook.get("rows", []):
            lines.append(
                f"  {row['server']:<22} c={row['concurrency']:<3} p50 {row['p50_ms']:.2f} ms  "
                f"p99 {row['p99_ms']:.2f} ms  {row['rps']:.0f} req/s"
            )
    lines.append("")
    lines.append("contenders: " + "; ".join(f"{n} = {labels[n]}" for n in names))
    for note in bench.notes:
        lines.append(f"note: {note}")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {
            "cores": os.cpu_count(),
            "memory_gib": _mem_gib(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "mode": "quick" if bench.quick else "full",
        "rounds": bench.args.rounds,
        "versions": bench.versions,
        "table": table,
        "raw": {m: dict(v) for m, v in s.data.items()},
        "layer": layer,
        "webhook": webhook,
        "cpu": cpu or {},
        "notes": bench.notes,
        "text": "\n".join(lines),
    }


def markdown(report: dict[str, Any]) -> str:
    """BENCHMARKS.md: the table, the machine and every contender's versions."""
    names = [k for k in report["table"][0] if k != "figure"] if report["table"] else []
    out = [
        "# Benchmarks",
        "",
        f"Run {report['date']} with `uv run python benchmarks/run.py"
        f"{' --quick' if report['mode'] == 'quick' else ''}` ({report['mode']} mode, "
        f"{report['rounds']} interleaved rounds). Machine: {report['machine']['cores']} cores, "
        f"{report['machine']['memory_gib']} GiB, {report['machine']['platform']}, "
        f"Python {report['machine']['python']}. The machine is shared, so read ratios, not "
        "absolute figures; a cell is the median over rounds, `[min-max]` its spread.",
        "",
        "| figure | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for row in report["table"]:
        out.append(f"| {row['figure']} | " + " | ".join(row[n] for n in names) + " |")
    layer = report.get("layer") or {}
    if layer:
        out += [
            "",
            f"Layer: {len(layer['sets'])} package sets ({', '.join(layer['sets'])}), "
            f"{layer.get('apparent_mib', 0):.1f} MiB of files, "
            f"{layer['size_mib']:.1f} MiB of disk blocks (hard links counted once), copied in "
            f"{layer['copy_s'] * 1000:.0f} ms.",
        ]
        startup = layer.get("pod_startup") or {}
        if startup:
            out += [
                "",
                "Pod start-up work per layer delivery (before the app starts; the image "
                "pull, once per node and version, is the same for both):",
                "",
                "| delivery | files copied | seconds | emptyDir MiB |",
                "|---|---|---|---|",
            ]
            out += [
                f"| {mode} | {work['files_copied']} | {work['copy_s']:.2f} | "
                f"{work['volume_mib']:.1f} |"
                for mode, work in startup.items()
            ]
    cpu = report.get("cpu") or {}
    if cpu.get("rows"):
        low, high = cpu["counts"]
        low512, high512 = cpu.get("counts_batch512") or (512, 2048)
        out += [
            "",
            "Instructions per request under callgrind (`benchmarks/cpu.py`: the app's "
            "WSGI/ASGI callable called in-process, `GET /hello`; marginal between "
            f"{low} and {high} requests, all threads, export to a local OTLP receiver "
            "included, a forced flush every 10 requests (spans/POST 10) or, between "
            f"{low512} and {high512} requests, "
            "every 512 (the batch a busy server sends); does not move with the "
            "machine's load):",
            "",
            "| contender | app | spans/POST | instructions/request | untraced/this | "
            "spans/request |",
            "|---|---|---|---|---|---|",
        ]
        for row in cpu["rows"]:
            ratio = row["ratio_untraced_to_this"]
            out.append(
                f"| {row['contender']} | {row['app']} | {row.get('batch', 10)} | "
                f"{row['instructions_per_request'] / 1e6:.3f} M | "
                f"{'-' if ratio is None else f'{ratio:.2f}'} | "
                f"{row['spans_per_request']:.2f} |"
            )
    webhook = report.get("webhook") or {}
    if webhook.get("rows"):
        keys = [k for k in webhook["rows"][0] if isinstance(webhook["rows"][0][k], (int, float))]
        out += [
            "",
            "Webhook admission over loopback TLS (`lumigo-injector serve` against a "
            "kmock API server, next to a bare aiohttp TLS server returning a fixed "
            "AdmissionReview):",
            "",
            "| server | " + " | ".join(keys) + " |",
            "|---|" + "---|" * len(keys),
        ]
        for row in webhook["rows"]:
            cells = [f"{row[k]:.2f}" if isinstance(row[k], float) else str(row[k]) for k in keys]
            out.append(f"| {row.get('server', '?')} | " + " | ".join(cells) + " |")
    out += ["", "Versions per contender:", ""]
    for name, versions in report["versions"].items():
        pinned = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        out.append(f"- **{name}**: {pinned}")
    if report["notes"]:
        out += ["", "Notes from the run:", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(out) + "\n"


def _mem_gib() -> float:
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        return round(kib / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, about a minute")
    parser.add_argument("--json", type=Path, help="write the full results here")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=None, help="wrk duration per figure")
    parser.add_argument("--only", nargs="*", help="contenders to run (baseline always runs)")
    parser.add_argument("--markdown", type=Path, help="write the table as Markdown (BENCHMARKS.md)")
    parser.add_argument("--no-cpu", action="store_true", help="skip the callgrind CPU figure")
    parser.add_argument(
        "--apps", nargs="*", choices=WEB_APPS, help="web apps to load (default: all)"
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (1.0 if args.quick else 5.0)

    ensure_db()
    apps = list(args.apps or WEB_APPS)
    no_pg = ensure_pg() if "django" in apps else None
    if no_pg:
        apps.remove("django")
    bench = Bench(args)
    if no_pg:
        bench.notes.append(no_pg)
    try:
        print(f"benchmark cache: {cache_dir()}", flush=True)
        bench.prepare()
        if not args.quick:
            print("start-up warm-up (not counted)", flush=True)
            bench.startup_round()  # after a reboot the first imports read a cold page cache
            bench.samples.data.clear()
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}: start-up", flush=True)
            bench.startup_round()
            for app in apps:
                print(f"round {r + 1}/{args.rounds}: {app} under wrk", flush=True)
                bench.web_round(app, seconds)
            print(f"round {r + 1}/{args.rounds}: receiver black-holed", flush=True)
            bench.blackhole_round(seconds)
        bench.exporter_throughput()
        layer = bench.layer_figures()
        webhook = bench.webhook_figures()
        cpu = None
        if not args.no_cpu:
            print("instructions per request under callgrind", flush=True)
            names = tuple(c.name for c in bench.all if c.name in CPU_NAMES)
            cpu = run_cpu(
                CPU_QUICK_NAMES if bench.quick else names, quick=bench.quick, work=bench.work
            )
            if not bench.quick:  # the same at the batch a busy server sends: 512 spans per POST
                big = run_cpu(tuple(n for n in names if n != "vanilla"), work=bench.work, batch=512)
                cpu["rows"] += big["rows"]
                cpu["notes"] += big["notes"]
                cpu["counts_batch512"] = big["counts"]
        report = build_report(bench, layer, webhook, cpu)
    finally:
        bench.close()
    print()
    print(report["text"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"\nJSON: {args.json}")
    if args.markdown:
        args.markdown.write_text(markdown(report))
        print(f"Markdown: {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
