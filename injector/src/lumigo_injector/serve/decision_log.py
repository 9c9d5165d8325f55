"""Info lines about admission decisions, cheap under load.

The first pod of a kind (same namespace, pod label, outcome and reason) is logged at once;
repeats within the next `interval` seconds are only counted and summed up in one line when
that window closes ("... (57 more in the last 1s)"). A Deployment scaling to 500 replicas
logs a few lines, not 500, and the admission path pays a dict update instead of a formatted
JSON line per pod. Windows are closed by a timer on the event loop; nothing else runs.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("lumigo_injector.webhook")

Key = tuple[str | None, str, bool, str]


class DecisionLog:
    """Aggregated `pod X: injected|not injected: reason` lines (call on the event loop)."""

    def __init__(self, interval: float = 1.0, max_kinds: int = 1000) -> None:
        self._interval = interval
        self._max_kinds = max_kinds
        self._repeats: dict[Key, int] = {}
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, namespace: str | None, pod: str, injected: bool, reason: str) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        key = (namespace, pod, injected, reason)
        repeats = self._repeats.get(key)
        if repeats is not None:
            self._repeats[key] = repeats + 1
            return
        if len(self._repeats) < self._max_kinds:
            self._repeats[key] = 0
            if self._timer is None:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(self._interval, self.flush)
        self._line(key, 0)

    def _line(self, key: Key, more: int) -> None:
        namespace, pod, injected, reason = key
        extra = {"namespace": namespace, "pod": pod, "injected": injected}
        outcome = "injected" if injected else "not injected"
        if more:
            window = f"{self._interval:g}s"
            log.info(
                "pod %s: %s: %s (%d more in the last %s)",
                pod,
                outcome,
                reason,
                more,
                window,
                extra={**extra, "repeats": more},
            )
        else:
            log.info("pod %s: %s: %s", pod, outcome, reason, extra=extra)

    def flush(self) -> None:
        """Close the window: one line per kind that repeated in it."""
        self._timer = None
        repeats, self._repeats = self._repeats, {}
        for key, more in repeats.items():
            if more:
                self._line(key, more)

    def close(self) -> None:
        """Log what is pending (on shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
        self.flush()
