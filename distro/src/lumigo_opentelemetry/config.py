"""Every LUMIGO_*/OTEL_* setting the distro reads, parsed once into a frozen value.

Bad values never raise: each becomes one warning (collected in `Config.warnings`,
logged by `init()`) and the documented default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import FrozenSet, List, Mapping, Optional, Tuple

from lumigo_opentelemetry.masking import Masking

DEFAULT_ENDPOINT = "https://ga-otlp.lumigo-tracer-edge.golumigo.com/v1/traces"
DEFAULT_DEPENDENCIES_ENDPOINT = "https://ga-otlp.lumigo-tracer-edge.golumigo.com/v1/dependencies"
DEFAULT_ATTRIBUTE_LENGTH_LIMIT = 2048
DEFAULT_EXPORT_TIMEOUT_SECONDS = 5.0

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


@dataclass(frozen=True)
class Config:
    """The distro's settings, typed."""

    switch_off: bool = False
    token: Optional[str] = None
    endpoint: str = DEFAULT_ENDPOINT
    debug: bool = False
    spandump_path: Optional[str] = None
    report_dependencies: bool = True
    #: LUMIGO_SECRET_MASKING_REGEX, its per-site overrides and the tracer token
    masking: Masking = field(default_factory=Masking.default)
    attribute_length_limit: int = DEFAULT_ATTRIBUTE_LENGTH_LIMIT
    disabled_instrumentations: FrozenSet[str] = frozenset()
    warnings: Tuple[str, ...] = ()
    #: internal, for tests only: where the dependency report goes (the endpoint still
    #: counts as the default one for `should_report_dependencies`)
    dependencies_endpoint: str = DEFAULT_DEPENDENCIES_ENDPOINT
    #: seconds one OTLP export request may take (OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT)
    export_timeout: float = DEFAULT_EXPORT_TIMEOUT_SECONDS
    #: OTEL_BSP_* values; None means the SDK default
    bsp_schedule_delay_ms: Optional[int] = None
    bsp_max_queue_size: Optional[int] = None
    bsp_max_export_batch_size: Optional[int] = None
    bsp_export_timeout_ms: Optional[int] = None

    @property
    def endpoint_is_default(self) -> bool:
        return self.endpoint == DEFAULT_ENDPOINT

    @property
    def should_report_dependencies(self) -> bool:
        """Only with a token, the default endpoint, and not switched off by the user."""
        return bool(self.token) and self.endpoint_is_default and self.report_dependencies

    def instrumentation_enabled(self, name: str) -> bool:
        disabled = self.disabled_instrumentations
        return "*" not in disabled and name.lower() not in disabled

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> Config:
        env = os.environ if environ is None else environ
        warnings: List[str] = []

        def flag(name: str, default: bool) -> bool:
            raw = env.get(name)
            if raw is None:
                return default
            value = raw.strip().lower()
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False if value else default
            warnings.append(f"{name}={raw!r} is not true/false; using {str(default).lower()}")
            return default

        def positive_int(name: str) -> Optional[int]:
            raw = env.get(name)
            if raw is None or not raw.strip():
                return None
            try:
                value = int(raw.strip())
                if value <= 0:
                    raise ValueError
                return value
            except ValueError:
                warnings.append(f"{name}={raw!r} is not a positive integer; ignored")
                return None

        def positive_float(name: str) -> Optional[float]:
            raw = env.get(name)
            if raw is None or not raw.strip():
                return None
            try:
                value = float(raw.strip())
                if not value > 0 or value == float("inf"):
                    raise ValueError
                return value
            except ValueError:
                warnings.append(f"{name}={raw!r} is not a positive number; ignored")
                return None

        masking, masking_warnings = Masking.from_environ(env)
        warnings.extend(masking_warnings)

        limit = positive_int("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT")
        if limit is None:
            limit = positive_int("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")

        endpoint = (env.get("LUMIGO_ENDPOINT") or "").strip() or DEFAULT_ENDPOINT
        if not endpoint.startswith(("http://", "https://")):
            warnings.append(f"LUMIGO_ENDPOINT={endpoint!r} is not an http(s) URL; using default")
            endpoint = DEFAULT_ENDPOINT

        dependencies_endpoint = (
            env.get("LUMIGO_DEPENDENCIES_ENDPOINT") or ""
        ).strip() or DEFAULT_DEPENDENCIES_ENDPOINT
        if not dependencies_endpoint.startswith(("http://", "https://")):
            warnings.append(
                f"LUMIGO_DEPENDENCIES_ENDPOINT={dependencies_endpoint!r} is not an http(s) URL;"
                " using default"
            )
            dependencies_endpoint = DEFAULT_DEPENDENCIES_ENDPOINT

        export_timeout = positive_float("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        if export_timeout is None:
            export_timeout = positive_float("OTEL_EXPORTER_OTLP_TIMEOUT")

        schedule_delay = positive_int("OTEL_BSP_SCHEDULE_DELAY")
        bsp_export_timeout = positive_int("OTEL_BSP_EXPORT_TIMEOUT")
        max_queue = positive_int("OTEL_BSP_MAX_QUEUE_SIZE")
        max_batch = positive_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
        effective_queue = max_queue or 2048
        if max_batch is not None and max_batch > effective_queue:
            warnings.append(
                f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE={max_batch} exceeds the queue size"
                f" {effective_queue}; using {effective_queue}"
            )
            max_batch = effective_queue
        if max_batch is None and effective_queue < 512:
            max_batch = effective_queue

        disabled = frozenset(
            part.strip().lower()
            for part in env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")
            if part.strip()
        )

        return cls(
            switch_off=flag("LUMIGO_SWITCH_OFF", False),
            token=(env.get("LUMIGO_TRACER_TOKEN") or "").strip() or None,
            endpoint=endpoint,
            debug=flag("LUMIGO_DEBUG", False),
            spandump_path=(env.get("LUMIGO_DEBUG_SPANDUMP") or "").strip() or None,
            report_dependencies=flag("LUMIGO_REPORT_DEPENDENCIES", True),
            masking=masking,
            attribute_length_limit=limit or DEFAULT_ATTRIBUTE_LENGTH_LIMIT,
            disabled_instrumentations=disabled,
            dependencies_endpoint=dependencies_endpoint,
            export_timeout=export_timeout or DEFAULT_EXPORT_TIMEOUT_SECONDS,
            bsp_schedule_delay_ms=schedule_delay,
            bsp_max_queue_size=max_queue,
            bsp_max_export_batch_size=max_batch,
            bsp_export_timeout_ms=bsp_export_timeout,
            warnings=tuple(warnings),
        )


_config: Optional[Config] = None


def get_config() -> Config:
    """The process-wide configuration, parsed from `os.environ` on first use."""
    global _config
    if _config is None:
        _config = Config.from_environ()
    return _config
