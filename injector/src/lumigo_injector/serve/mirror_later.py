"""Token Secret checks started by the admission path, in the background and bounded.

An injected pod asks for its namespace's token Secret to be checked after the answer. One
check per namespace runs at a time (a scale-up of 500 pods in a new namespace starts one),
and at most `limit` run at once: beyond that a request is dropped, and the next injected
pod of that namespace asks again. Namespace names come bounded from the review parser.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

MAX_IN_FLIGHT = 64


class MirrorLater:
    """`on_injected` for `webhook.Admission`: start `ensure(namespace)` unless pointless."""

    def __init__(
        self,
        ensure: Callable[[str], Awaitable[None]],
        *,
        wanted: Callable[[str], bool],
        limit: int = MAX_IN_FLIGHT,
    ) -> None:
        self._ensure = ensure
        self._wanted = wanted
        self._limit = limit
        self._running: dict[str, asyncio.Task[None]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def __call__(self, namespace: str) -> None:
        if namespace in self._running or len(self._running) >= self._limit:
            return
        if not self._wanted(namespace):
            return
        task = asyncio.get_running_loop().create_task(self._run(namespace))
        self._running[namespace] = task

    async def _run(self, namespace: str) -> None:
        try:
            await self._ensure(namespace)
        finally:
            self._running.pop(namespace, None)

    def cancel(self) -> None:
        """Stop what is still running (on shutdown)."""
        for task in list(self._running.values()):
            task.cancel()
