"""Every LUMIGO_*/OTEL_* setting the distro reads, parsed once into a frozen value.

Bad values never raise: each becomes one warning (collected in `Config.warnings`,
logged by `init()`) and the documented default.

Parsed at every start-up, so this module imports only `os` (no typing, dataclasses,
json, re or urllib, each of them milliseconds): what a setting needs is imported when
that setting is set. The masking rules are built on first use unless a masking setting
is set (its warnings are start-up warnings).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Pattern, Tuple

    from lumigo_opentelemetry.masking import Masking

_LUMIGO_BASE_URL = "https://ga-otlp.lumigo-tracer-edge.golumigo.com"
DEFAULT_ENDPOINT = f"{_LUMIGO_BASE_URL}/v1/traces"
DEFAULT_LOGS_ENDPOINT = f"{_LUMIGO_BASE_URL}/v1/logs"
DEFAULT_DEPENDENCIES_ENDPOINT = f"{_LUMIGO_BASE_URL}/v1/dependencies"
DEFAULT_ATTRIBUTE_LENGTH_LIMIT = 2048
DEFAULT_EXPORT_TIMEOUT_SECONDS = 5.0
DEFAULT_CONNECTION_TIMEOUT_SECONDS = 3.0
TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"

#: the batch span processor defaults (the SDK's), used when OTEL_BSP_* is unset
BSP_DEFAULT_MAX_QUEUE_SIZE = 2048
BSP_DEFAULT_SCHEDULE_DELAY_MS = 5000
BSP_DEFAULT_MAX_BATCH = 512
BSP_DEFAULT_EXPORT_TIMEOUT_MS = 30000

#: OTEL_TRACES_SAMPLER values the distro understands (the SDK's built-in samplers)
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
DEFAULT_SAMPLER = "parentbased_always_on"

#: instrumentation names as upstream's README and its internal ids spell them -> ours
INSTRUMENTATION_ALIASES: Dict[str, str] = {
    "fast-api": "fastapi",
    "boto3": "botocore",
    "boto": "botocore",
    "pymongo": "pymongo",
    "pymysql": "pymysql",
    "requests": "requests",
    "flask": "flask",
    "fastapi": "fastapi",
    "botocore": "botocore",
    "grpcio": "grpc",
    "psycopg3": "psycopg",
    "redis-py": "redis",
    "kafka-python": "kafka",
    "kafka_python": "kafka",
}


def authorization_header(token: str) -> str:
    """The `Authorization` header value every request to Lumigo carries."""
    return f"LumigoToken {token}"


def signal_url(raw: str, path: str) -> str:
    """An OTLP/HTTP URL for one signal: a base URL (no path, or `/`) gets `path` appended,
    the way OTEL_EXPORTER_OTLP_ENDPOINT does; a URL with a path is used as given."""
    scheme, separator, rest = raw.partition("://")
    if not separator:
        scheme, rest = "", raw
    ends = [index for index in (rest.find(c) for c in "/?#") if index >= 0]
    cut = min(ends) if ends else len(rest)
    netloc, tail = rest[:cut], rest[cut:]
    tail, _, fragment = tail.partition("#")
    old_path, _, query = tail.partition("?")
    if old_path not in ("", "/"):
        return raw
    url = f"{scheme}{separator}{netloc}{path}"
    if query:
        url += f"?{query}"
    if fragment:
        url += f"#{fragment}"
    return url


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


_MASKING_SETTING = "LUMIGO_SECRET_MASKING_REGEX"  # and its per-site variants (masking.py)


class Config:
    """The distro's settings, typed and immutable; keyword arguments override defaults."""

    switch_off: bool = False
    token: Optional[str] = None
    endpoint: str = DEFAULT_ENDPOINT
    debug: bool = False
    spandump_path: Optional[str] = None
    report_dependencies: bool = True
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
    #: LUMIGO_ENABLE_TRACES=false: no instrumentation, no span export
    enable_traces: bool = True
    #: LUMIGO_ENABLE_LOGS / LUMIGO_LOGS_ENDPOINT / LUMIGO_DEBUG_LOGDUMP
    enable_logs: bool = False
    logs_endpoint: str = DEFAULT_LOGS_ENDPOINT
    logdump_path: Optional[str] = None
    #: LUMIGO_TAG (resource `lumigo.tag`) and LUMIGO_CONTAINER_NAME (`k8s.container.name`)
    tag: Optional[str] = None
    container_name: Optional[str] = None
    #: LUMIGO_CONNECTION_TIMEOUT: seconds for the distro's own HTTP calls (dependency report)
    connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT_SECONDS
    #: LUMIGO_AUTO_FILTER_EMPTY_SQS: drop SQS ReceiveMessage spans that got no message
    auto_filter_empty_sqs: bool = True
    #: LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX[_SERVER|_CLIENT], compiled
    filter_endpoints: Tuple[Pattern[str], ...] = ()
    filter_server_endpoints: Tuple[Pattern[str], ...] = ()
    filter_client_endpoints: Tuple[Pattern[str], ...] = ()
    #: OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG
    sampler: str = DEFAULT_SAMPLER
    sampler_ratio: float = 1.0
    #: LUMIGO_INSTRUMENT_GRPC_PAYLOADS: gRPC request/response messages on the spans
    grpc_payloads: bool = True
    #: LUMIGO_SECRET_MASKING_REGEX, its per-site overrides and the tracer token (`masking`)
    _masking: Optional[Masking] = None
    #: masking rules still to build: the token they protect (from_environ) or None
    _masking_token: Optional[str] = None
    _masking_pending: bool = False

    def __init__(self, **values: Any) -> None:
        if "masking" in values:
            values["_masking"] = values.pop("masking")
        unknown = sorted(name for name in values if name not in _FIELDS)
        if unknown:
            raise TypeError(f"Config() got unexpected keyword arguments {unknown}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: Config is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: Config is immutable")

    @property
    def masking(self) -> Masking:
        """The masking rules (built on first use when no masking setting is set)."""
        masking = self._masking
        if masking is None:
            from lumigo_opentelemetry.masking import Masking

            if self._masking_pending:
                env = {"LUMIGO_TRACER_TOKEN": self._masking_token or ""}
                masking = Masking.from_environ(env)[0]
            else:
                masking = Masking.default()
            object.__setattr__(self, "_masking", masking)
        return masking

    def _values(self) -> Tuple[Any, ...]:
        return tuple(
            self.masking if name == "_masking" else getattr(self, name) for name in _COMPARED
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not Config:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name.lstrip('_')}={value!r}" for name, value in zip(_COMPARED, self._values())
        )
        return f"Config({shown})"

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

        masking: Optional[Masking] = None
        if any(name.startswith(_MASKING_SETTING) and value.strip() for name, value in env.items()):
            from lumigo_opentelemetry.masking import Masking

            masking, masking_warnings = Masking.from_environ(env)
            warnings.extend(masking_warnings)

        limit = positive_int("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT")
        if limit is None:
            limit = positive_int("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")

        endpoint = (env.get("LUMIGO_ENDPOINT") or "").strip() or DEFAULT_ENDPOINT
        if not endpoint.startswith(("http://", "https://")):
            warnings.append(f"LUMIGO_ENDPOINT={endpoint!r} is not an http(s) URL; using default")
            endpoint = DEFAULT_ENDPOINT
        if endpoint != DEFAULT_ENDPOINT:
            endpoint = signal_url(endpoint, TRACES_PATH)

        logs_endpoint = (env.get("LUMIGO_LOGS_ENDPOINT") or "").strip()
        if logs_endpoint and not logs_endpoint.startswith(("http://", "https://")):
            warnings.append(
                f"LUMIGO_LOGS_ENDPOINT={logs_endpoint!r} is not an http(s) URL; using default"
            )
            logs_endpoint = ""
        if logs_endpoint:
            logs_endpoint = signal_url(logs_endpoint, LOGS_PATH)
        elif endpoint != DEFAULT_ENDPOINT and endpoint.endswith(TRACES_PATH):
            # logs go where the traces go (e.g. the same collector)
            logs_endpoint = endpoint[: -len(TRACES_PATH)] + LOGS_PATH
        else:
            logs_endpoint = DEFAULT_LOGS_ENDPOINT

        def regexes(name: str) -> Tuple[Pattern[str], ...]:
            raw = env.get(name)
            if raw is None or not raw.strip():
                return ()
            import json
            import re

            try:
                value = json.loads(raw)
            except ValueError:
                value = None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                warnings.append(f"{name}={raw!r} is not a JSON list of strings; ignored")
                return ()
            compiled = []
            for item in value:
                try:
                    compiled.append(re.compile(item))
                except re.error as exc:
                    warnings.append(f"{name}: regex {item!r} is invalid ({exc}); skipped")
            return tuple(compiled)

        sampler = (env.get("OTEL_TRACES_SAMPLER") or "").strip().lower() or DEFAULT_SAMPLER
        if sampler not in SAMPLERS:
            warnings.append(
                f"OTEL_TRACES_SAMPLER={sampler!r} is not one of {', '.join(SAMPLERS)};"
                f" using {DEFAULT_SAMPLER}"
            )
            sampler = DEFAULT_SAMPLER
        sampler_ratio = 1.0
        raw_ratio = (env.get("OTEL_TRACES_SAMPLER_ARG") or "").strip()
        if raw_ratio and sampler.endswith("traceidratio"):
            try:
                sampler_ratio = float(raw_ratio)
                if not 0.0 <= sampler_ratio <= 1.0:
                    raise ValueError
            except ValueError:
                warnings.append(
                    f"OTEL_TRACES_SAMPLER_ARG={raw_ratio!r} is not a ratio in [0, 1]; using 1.0"
                )
                sampler_ratio = 1.0

        tag = (env.get("LUMIGO_TAG") or "").strip() or None
        if tag is not None and ";" in tag:
            warnings.append(f"LUMIGO_TAG={tag!r} contains ';', which is not allowed; ignored")
            tag = None

        connection_timeout = positive_float("LUMIGO_CONNECTION_TIMEOUT")

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
        effective_queue = max_queue or BSP_DEFAULT_MAX_QUEUE_SIZE
        if max_batch is not None and max_batch > effective_queue:
            warnings.append(
                f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE={max_batch} exceeds the queue size"
                f" {effective_queue}; using {effective_queue}"
            )
            max_batch = effective_queue
        if max_batch is None and effective_queue < BSP_DEFAULT_MAX_BATCH:
            max_batch = effective_queue

        disabled = frozenset(
            part.strip().lower()
            for part in env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")
            if part.strip()
        ) | frozenset(
            INSTRUMENTATION_ALIASES.get(part.strip().lower(), part.strip().lower())
            for part in env.get("LUMIGO_DISABLE_INSTRUMENTATION", "").split(",")
            if part.strip()
        )

        return cls(
            switch_off=flag("LUMIGO_SWITCH_OFF", False),
            token=(env.get("LUMIGO_TRACER_TOKEN") or "").strip() or None,
            endpoint=endpoint,
            debug=flag("LUMIGO_DEBUG", False),
            spandump_path=(env.get("LUMIGO_DEBUG_SPANDUMP") or "").strip() or None,
            report_dependencies=flag("LUMIGO_REPORT_DEPENDENCIES", True),
            _masking=masking,
            _masking_token=(env.get("LUMIGO_TRACER_TOKEN") or "").strip() or None,
            _masking_pending=masking is None,
            attribute_length_limit=limit or DEFAULT_ATTRIBUTE_LENGTH_LIMIT,
            disabled_instrumentations=disabled,
            dependencies_endpoint=dependencies_endpoint,
            export_timeout=export_timeout or DEFAULT_EXPORT_TIMEOUT_SECONDS,
            bsp_schedule_delay_ms=schedule_delay,
            bsp_max_queue_size=max_queue,
            bsp_max_export_batch_size=max_batch,
            bsp_export_timeout_ms=bsp_export_timeout,
            enable_traces=flag("LUMIGO_ENABLE_TRACES", True),
            enable_logs=flag("LUMIGO_ENABLE_LOGS", False),
            logs_endpoint=logs_endpoint,
            logdump_path=(env.get("LUMIGO_DEBUG_LOGDUMP") or "").strip() or None,
            tag=tag,
            container_name=(env.get("LUMIGO_CONTAINER_NAME") or "").strip() or None,
            connection_timeout=connection_timeout or DEFAULT_CONNECTION_TIMEOUT_SECONDS,
            auto_filter_empty_sqs=flag("LUMIGO_AUTO_FILTER_EMPTY_SQS", True),
            filter_endpoints=regexes("LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX"),
            filter_server_endpoints=regexes("LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX_SERVER"),
            filter_client_endpoints=regexes("LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX_CLIENT"),
            sampler=sampler,
            sampler_ratio=sampler_ratio,
            grpc_payloads=flag("LUMIGO_INSTRUMENT_GRPC_PAYLOADS", True),
            warnings=tuple(warnings),
        )


#: every field, in declaration order; `_COMPARED` is what equality, hash and repr use
_FIELDS: Tuple[str, ...] = tuple(Config.__annotations__)
_COMPARED: Tuple[str, ...] = tuple(
    name for name in _FIELDS if name not in ("_masking_token", "_masking_pending")
)

_config: Optional[Config] = None


def get_config() -> Config:
    """The process-wide configuration, parsed from `os.environ` on first use."""
    global _config
    if _config is None:
        _config = Config.from_environ()
    return _config
