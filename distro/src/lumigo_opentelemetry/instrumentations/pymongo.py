"""pymongo: one CLIENT span per MongoDB command, with the command document and the reply.

Built on opentelemetry-instrumentation-pymongo (command monitoring: span
`<db>.<command>`, `db.system`, `db.name`, `db.mongodb.collection`, peer address, and the
command name in `db.statement`, e.g. `insert`, as upstream's distro sends it). Our request
hook puts the command document in `db.request.body` as relaxed Extended JSON, secret keys
masked (a `password` field never leaves in clear) and truncated; session/cluster
bookkeeping fields are left out. The reply goes to `db.response.body` the same way.
Monitoring applies to clients created after the library is imported, which is how the
post-import hook runs it.
"""

from __future__ import annotations

import logging
from itertools import islice
from typing import TYPE_CHECKING, Any, Mapping, Optional

from lumigo_opentelemetry.instrumentations.payloads import DB_REQUEST_BODY, DB_RESPONSE_BODY
from lumigo_opentelemetry.masking import Site

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

    from lumigo_opentelemetry.config import Config

NAME = "pymongo"
HOOK_MODULE = "pymongo"

# Fields pymongo adds for sessions, clustering and transactions: noise, and `lsid` is binary.
BOOKKEEPING_FIELDS = frozenset(
    {
        "lsid",
        "$clusterTime",
        "$db",
        "txnNumber",
        "autocommit",
        "startTransaction",
        "$readPreference",
        "signature",
        "operationTime",
        "$configServerState",
    }
)

_LOG = logging.getLogger("lumigo-opentelemetry.pymongo")


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    return PymongoInstrumentor()


def document_text(document: Mapping[str, Any], config: Config) -> str:
    """A command or reply as masked (`Site.DB`), truncated relaxed Extended JSON."""
    limit = config.attribute_length_limit
    plain = {k: _trim(v, limit) for k, v in document.items() if k not in BOOKKEEPING_FIELDS}
    text = config.masking.apply(Site.DB, plain, encode=_extended_json)
    return text[:limit]


def _extended_json(document: Any) -> str:
    from bson import json_util

    text: str = json_util.dumps(document, json_options=json_util.RELAXED_JSON_OPTIONS)
    return text


def _trim(value: Any, limit: int) -> Any:
    """Drop what cannot show within `limit` characters, so big batches cost little.

    Each list item takes at least 3 characters of JSON, each key/value pair at least 6
    and each string character at least 1: the trimmed value's JSON starts with the
    same `limit` characters as the full value's (masking works per key, so it agrees).
    """
    if isinstance(value, Mapping):
        return {k: _trim(v, limit) for k, v in islice(value.items(), limit // 6 + 1)}
    if isinstance(value, (list, tuple)):
        return [_trim(v, limit) for v in value[: limit // 3 + 1]]
    if isinstance(value, str) and len(value) > limit:
        return value[:limit]
    return value


class _Hooks:
    def __init__(self, config: Config) -> None:
        self.config = config

    def _set(self, span: Span, key: str, document: Optional[Mapping[str, Any]]) -> None:
        try:
            if document is not None and span.is_recording():
                span.set_attribute(key, document_text(document, self.config))
        except Exception:
            _LOG.debug("pymongo %s capture failed; attribute dropped", key, exc_info=True)

    def request(self, span: Span, event: Any) -> None:
        self._set(span, DB_REQUEST_BODY, getattr(event, "command", None))

    def response(self, span: Span, event: Any) -> None:
        self._set(span, DB_RESPONSE_BODY, getattr(event, "reply", None))

    def failed(self, span: Span, event: Any) -> None:
        self._set(span, DB_RESPONSE_BODY, getattr(event, "failure", None))


_hooks: Optional[_Hooks] = None


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    """Register the command listener once; a later call only refreshes the configuration.

    pymongo listeners cannot be unregistered: upstream keeps its first listener (and
    tracer provider) and only toggles it, so the hooks object lives as long as it does.
    """
    global _hooks
    if _hooks is None:
        _hooks = _Hooks(config)
    else:
        _hooks.config = config
    upstream = instrumentor()
    if not upstream.is_instrumented_by_opentelemetry:
        upstream.instrument(
            tracer_provider=tracer_provider,
            request_hook=_hooks.request,
            response_hook=_hooks.response,
            failed_hook=_hooks.failed,
        )


def uninstrument() -> None:
    """Undo `instrument()` (used by tests): the listener stays registered, disabled."""
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
