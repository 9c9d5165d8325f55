"""The distro's sampler: endpoint filters first, then the sampler the user chose.

`LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX` (every HTTP span), `..._SERVER` (server spans) and
`..._CLIENT` (client spans) are JSON lists of regexes, *searched* (not full-matched) in
the endpoint named by the attributes a span starts with:

- server spans: the path and query (`url.path` + `url.query`, else `http.target`, else the
  path of `http.url`/`url.full`);
- client spans: the full URL (`url.full`, else `http.url`).

A match drops the span (not recorded, not exported), and, through the parent-based
default sampler, everything started under it. Otherwise the decision is the one of the
sampler named by `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (default
`parentbased_always_on`). `endpoint_filtered()` answers the same question for spans whose
URL is only known later (botocore).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Pattern, Sequence, Tuple

from opentelemetry.context import get_current
from opentelemetry.sdk.trace import _Span
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, get_current_span
from opentelemetry.trace.propagation import _SPAN_KEY

from lumigo_opentelemetry._logging import logger
from lumigo_opentelemetry.config import Config

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Link
    from opentelemetry.trace.span import TraceState
    from opentelemetry.util.types import Attributes


def user_sampler(config: Config) -> Sampler:
    """The SDK sampler named by OTEL_TRACES_SAMPLER (already validated by Config)."""
    name = config.sampler
    root: Sampler
    if name.endswith("always_off"):
        root = ALWAYS_OFF
    elif name.endswith("traceidratio"):
        root = TraceIdRatioBased(config.sampler_ratio)
    else:
        root = ALWAYS_ON
    return ParentBased(root) if name.startswith("parentbased_") else root


def server_endpoint(attributes: Mapping[str, Any]) -> Optional[str]:
    """The path (and query) of a server span, from its start attributes."""
    path = attributes.get("url.path")
    if isinstance(path, str) and path:
        query = attributes.get("url.query")
        return f"{path}?{query}" if isinstance(query, str) and query else path
    target = attributes.get("http.target")
    if isinstance(target, str) and target:
        return target
    for key in ("http.url", "url.full"):
        url = attributes.get(key)
        if isinstance(url, str) and url:
            from urllib.parse import urlsplit

            parts = urlsplit(url)
            return parts.path + (f"?{parts.query}" if parts.query else "")
    return None


def client_endpoint(attributes: Mapping[str, Any]) -> Optional[str]:
    """The full URL of a client span, from its start attributes."""
    for key in ("url.full", "http.url"):
        url = attributes.get(key)
        if isinstance(url, str) and url:
            return url
    return None


def _search(patterns: Tuple[Pattern[str], ...], endpoint: str) -> Optional[str]:
    for pattern in patterns:
        if pattern.search(endpoint):
            return pattern.pattern
    return None


def endpoint_filtered(config: Config, kind: Any, attributes: Optional[Mapping[str, Any]]) -> bool:
    """Whether a span of this kind with these attributes is filtered out by the
    LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX* settings."""
    if not attributes:
        return False
    if kind == SpanKind.SERVER:
        endpoint = server_endpoint(attributes)
        specific = config.filter_server_endpoints
    elif kind == SpanKind.CLIENT:
        endpoint = client_endpoint(attributes)
        specific = config.filter_client_endpoints
    else:
        return False
    if endpoint is None:
        return False
    matched = _search(specific, endpoint) or _search(config.filter_endpoints, endpoint)
    if matched is not None:
        logger.debug("span for %s dropped: it matches the endpoint filter %r", endpoint, matched)
        return True
    return False


#: span types known to be `Span`s (`isinstance` on the ABC runs Python code)
_SPAN_TYPES = frozenset({_Span, NonRecordingSpan})

#: the decisions of a sampler made of the SDK's static samplers, by parent: (no valid
#: parent, remote sampled, remote not sampled, local sampled, local not sampled)
_Decisions = Tuple[Decision, Decision, Decision, Decision, Decision]


def static_decisions(sampler: Sampler) -> Optional[_Decisions]:
    """The decisions of `sampler` when it is an SDK `StaticSampler` (always_on/off) or
    an SDK `ParentBased` whose five samplers are; None for any other sampler."""
    if type(sampler) is StaticSampler:
        decision: Decision = sampler._decision
        return (decision, decision, decision, decision, decision)
    if type(sampler) is not ParentBased:
        return None
    parts = (
        sampler._root,
        sampler._remote_parent_sampled,
        sampler._remote_parent_not_sampled,
        sampler._local_parent_sampled,
        sampler._local_parent_not_sampled,
    )
    if any(type(part) is not StaticSampler for part in parts):
        return None
    root, remote, remote_not, local, local_not = (part._decision for part in parts)  # type: ignore[attr-defined]
    return (root, remote, remote_not, local, local_not)


class LumigoSampler(Sampler):
    """Drops filtered endpoints, then defers to the user's sampler.

    When that sampler is made of the SDK's static samplers (`parentbased_always_on`, the
    default, `always_on`, ...), its decision is taken here, from the same parent span
    context and with the same result (the attributes given, unless dropped; the parent's
    trace state): its chain of calls (up to five per span) is not run."""

    def __init__(self, config: Config, delegate: Optional[Sampler] = None) -> None:
        self._config = config
        self._delegate = delegate or user_sampler(config)
        self._filters = bool(
            config.filter_endpoints
            or config.filter_server_endpoints
            or config.filter_client_endpoints
        )
        self._decisions: Optional[_Decisions] = None
        try:
            self._decisions = static_decisions(self._delegate)
        except Exception:
            logger.debug("sampler decisions not read", exc_info=True)

    def should_sample(
        self,
        parent_context: Optional[Context],
        trace_id: int,
        name: str,
        kind: Optional[SpanKind] = None,
        attributes: Attributes = None,
        links: Optional[Sequence[Link]] = None,
        trace_state: Optional[TraceState] = None,
    ) -> SamplingResult:
        if self._filters:
            try:
                if endpoint_filtered(self._config, kind, attributes):
                    dropped = get_current_span(parent_context).get_span_context()
                    state = dropped.trace_state if dropped.is_valid else None
                    return SamplingResult(Decision.DROP, None, state)
            except Exception:
                logger.debug("endpoint filter failed; span kept", exc_info=True)
        decisions = self._decisions
        if decisions is not None:
            found: Any = (parent_context if parent_context is not None else get_current()).get(
                _SPAN_KEY
            )
            parent = None
            if found is not None and (type(found) in _SPAN_TYPES or isinstance(found, Span)):
                parent = found.get_span_context()  # (the SDK's own types: no ABC check)
            if parent is None:
                decision = decisions[0]
                state = None
            elif type(parent) is SpanContext:
                # (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid)
                if parent[5]:
                    decision = decisions[(1 if parent[2] else 3) + (0 if parent[3] & 1 else 1)]
                    state = parent[4]
                else:
                    decision = decisions[0]
                    state = None
            else:
                return self._delegate.should_sample(
                    parent_context, trace_id, name, kind, attributes, links, trace_state
                )
            return SamplingResult(
                decision, None if decision is Decision.DROP else attributes, state
            )
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"LumigoSampler{{{self._delegate.get_description()}}}"
