"""Liveness and readiness over plain HTTP: `GET /healthz` and `GET /readyz`.

Readiness is a set of named conditions (TLS loaded, webhook listening, operator running);
`/readyz` answers 200 only when all hold and otherwise 503 with the ones still missing, so
`kubectl describe pod` shows why a replica is not ready. Liveness stays 200 while the event
loop answers and no essential task has died.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from lumigo_injector.serve import metrics

CONDITIONS = ("tls", "webhook", "operator")


class Health:
    """Shared, mutable health state of the process."""

    def __init__(self, conditions: tuple[str, ...] = CONDITIONS) -> None:
        self._checks: dict[str, Callable[[], bool]] = {}
        self._flags: dict[str, bool] = dict.fromkeys(conditions, False)
        self.failure: str | None = None

    def set(self, condition: str, value: bool = True) -> None:
        """Mark a condition as met (or not)."""
        self._flags[condition] = value

    def check(self, condition: str, probe: Callable[[], bool]) -> None:
        """Evaluate a condition lazily, on each readiness request."""
        self._checks[condition] = probe
        self._flags.pop(condition, None)

    def fail(self, reason: str) -> None:
        """Mark the process as broken: liveness fails from now on."""
        self.failure = reason

    def missing(self) -> list[str]:
        """The readiness conditions not met yet."""
        names = [name for name, ok in self._flags.items() if not ok]
        names += [name for name, probe in self._checks.items() if not probe()]
        return sorted(names)

    @property
    def ready(self) -> bool:
        return self.failure is None and not self.missing()


def build_app(health: Health) -> web.Application:
    """The aiohttp application serving the two probes."""

    async def healthz(_: web.Request) -> web.Response:
        if health.failure is not None:
            return web.json_response({"status": "failed", "reason": health.failure}, status=500)
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        missing = health.missing()
        if health.failure is not None or missing:
            body = {"status": "not ready", "waiting_for": missing, "failure": health.failure}
            return web.json_response(body, status=503)
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics.handler)
    return app
