"""Only the start-up rows of `run.py`, measured the same way, for quick before/after checks.

    uv run python benchmarks/startup.py [--rounds 15] [--only ours ours-layer] [--instructions]
                                        [--first-200]

`python -c pass`, `python -c 'import flask'` and `python -c 'import fastapi'` under each
contender (interleaved round by round, as in `run.py`), reported as the median added
wall-clock ms and peak RSS MiB (the command's own: `load.peak_rss_mib`) over the untraced
baseline with its spread. `--instructions` also counts the instructions each command
runs under callgrind (all threads; one run each: the count barely moves with the
machine's load, unlike wall-clock on a shared machine). `--first-200` adds `run.py`'s
"flask start-up to first 200" (gunicorn serving the bench app, no load run).
Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import Bench  # noqa: E402

METRICS = (
    ("bare.wall_ms", "python -c pass, no instrumented lib (added ms)"),
    ("import_flask.wall_ms", "python -c 'import flask' (added ms)"),
    ("import_fastapi.wall_ms", "python -c 'import fastapi' (added ms)"),
    ("bare.maxrss_mib", "python -c pass, max RSS (added MiB)"),
    ("import_flask.maxrss_mib", "python -c 'import flask', max RSS (added MiB)"),
    ("import_fastapi.maxrss_mib", "python -c 'import fastapi', max RSS (added MiB)"),
)


def instructions(bench: Bench, name: str, code: str) -> int:
    """Instructions (callgrind `I refs`, all threads) of `python -c code` under `name`.

    Under a wrapper (`opentelemetry-instrument`, `ddtrace-run`) the count is that of the
    interpreter it execs: callgrind keeps no count of a process image replaced by exec,
    so the wrapper's own short run before it is not included."""
    c = next(c for c in bench.all if c.name == name)
    venv = bench.venvs[name] / "bin"
    wrapper = [str(venv / c.wrapper[0]), *c.wrapper[1:]] if c.wrapper else []
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--trace-children=yes",  # a wrapper execs the interpreter it starts
            *wrapper,
            str(venv / "python"),
            "-c",
            code,
        ],
        env=bench.env_for(c),
        capture_output=True,
        text=True,
        check=True,
    )
    # the first process's count (its pid survives the exec), not a subprocess's
    first = re.search(r"^==(\d+)==", done.stderr, re.MULTILINE)
    pid = first.group(1) if first else r"\d+"
    found = re.findall(rf"^=={pid}== I\s+refs:\s+([\d,]+)", done.stderr, re.MULTILINE)
    if not found:
        raise RuntimeError(f"no instruction count from callgrind: {done.stderr[-300:]}")
    return int(found[-1].replace(",", ""))


def first_200_round(bench: Bench) -> None:
    """Seconds from launching gunicorn with the Flask app to its first 200, per contender."""
    for c in bench.all:
        server, base = bench.serve(c, "flask")
        try:
            bench.samples.add("flask.startup_ms", c.name, server.wait_ready(base + "/hello") * 1000)
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds")
    parser.add_argument(
        "--only",
        nargs="*",
        default=["ours", "ours-layer"],
        help="contenders (baseline always runs)",
    )
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions under callgrind"
    )
    parser.add_argument(
        "--first-200", action="store_true", help="also time gunicorn+Flask to its first 200"
    )
    args = parser.parse_args(argv)
    bench = Bench(argparse.Namespace(quick=False, only=args.only))
    try:
        bench.prepare()
        bench.startup_round()  # warm the page cache; not counted
        bench.samples.data.clear()
        for _ in range(args.rounds):
            bench.startup_round()
            if args.first_200:
                first_200_round(bench)
        samples = bench.samples
        names = [c.name for c in bench.all]
        print(f"{args.rounds} rounds; median added over baseline [min-max of the contender]")
        metrics = METRICS
        if args.first_200:
            metrics = (*METRICS, ("flask.startup_ms", "flask start-up to first 200 (added ms)"))
        for metric, label in metrics:
            base = samples.median(metric, "baseline") or 0.0
            cells = []
            for name in names:
                values = samples.data[metric][name]
                med = statistics.median(values)
                if name == "baseline":
                    cells.append(f"{name} {med:.1f}")
                else:
                    cells.append(
                        f"{name} {med - base:+.1f} [{min(values) - base:+.1f}"
                        f"..{max(values) - base:+.1f}]"
                    )
            print(f"{label}: " + " | ".join(cells))
        if args.instructions:
            print("instructions under callgrind (M), added over baseline:")
            for code in ("pass", "import flask", "import fastapi"):
                counts = {c.name: instructions(bench, c.name, code) / 1e6 for c in bench.all}
                base = counts["baseline"]
                cells = [f"baseline {base:.1f} M"] + [
                    f"{name} {value:.1f} M ({value - base:+.1f} M)"
                    for name, value in counts.items()
                    if name != "baseline"
                ]
                print(f"python -c {code!r}: " + " | ".join(cells))
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
