"""Step-by-step progress lines, with a spinner on long steps when stdout is a terminal."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    """Prints `[n/N] step ... done (1.2 s)`; spins while a long step runs on a TTY."""

    def __init__(self, total: int, out: TextIO | None = None) -> None:
        self.total = total
        self.out = out or sys.stdout
        self.index = 0
        self.tty = self.out.isatty()

    def note(self, text: str) -> None:
        self.out.write(f"      {text}\n")
        self.out.flush()

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.index += 1
        prefix = f"[{self.index}/{self.total}] {title}"
        started = time.monotonic()
        stop = threading.Event()
        spinner: threading.Thread | None = None
        if self.tty:

            def spin() -> None:
                for frame in itertools.cycle("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"):
                    if stop.wait(0.1):
                        return
                    elapsed = time.monotonic() - started
                    self.out.write(f"\r{frame} {prefix} ({elapsed:.0f} s)")
                    self.out.flush()

            spinner = threading.Thread(target=spin, daemon=True)
            spinner.start()
        else:
            self.out.write(f"{prefix} ...\n")
            self.out.flush()
        ok = False
        try:
            yield
            ok = True
        finally:
            stop.set()
            if spinner is not None:
                spinner.join()
                self.out.write("\r\033[K")
            mark = "✔" if ok else "✘"
            self.out.write(f"{mark} {prefix} ({time.monotonic() - started:.1f} s)\n")
            self.out.flush()
