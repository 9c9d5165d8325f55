"""Masking for every span of opentelemetry-instrumentation-dbapi (pymysql and the like).

The DB-API integration sets `db.statement` (and `db.query.text` in the new semantic
conventions, `db.statement.parameters` when parameter capture is on) in
`CursorTracer._populate_span`, with no hook. A wrapper around that method masks those
attributes right after they are set, while the span is still recording: `name = 'literal'`
pairs with a secret name, URL userinfo and the tracer token (`Masking.apply`, `Site.DB`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Tuple

from lumigo_opentelemetry.masking import Site

if TYPE_CHECKING:
    from lumigo_opentelemetry.config import Config

logger = logging.getLogger("lumigo-opentelemetry")

STATEMENT_ATTRIBUTES = ("db.statement", "db.query.text", "db.statement.parameters")
_MODULE = "opentelemetry.instrumentation.dbapi"
_METHOD = "CursorTracer._populate_span"


class _StatementMasking:
    def __init__(self, config: Config) -> None:
        self.config = config

    def __call__(
        self,
        wrapped: Callable[..., Any],
        _instance: Any,
        args: Tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Any:
        result = wrapped(*args, **kwargs)
        try:
            span = args[0] if args else kwargs.get("span")
            mask_statement_attributes(span, self.config)
        except Exception:
            logger.debug("masking the DB statement failed", exc_info=True)
        return result


def mask_statement_attributes(span: Any, config: Config) -> None:
    """Mask the statement attributes of a recording span in place; never raises."""
    attributes = getattr(span, "attributes", None)
    if not attributes or not span.is_recording():
        return
    for key in STATEMENT_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str):
            masked = config.masking.apply(Site.DB, value)
            if masked != value:
                span.set_attribute(key, masked)


_installed: Optional[_StatementMasking] = None


def install(config: Config) -> None:
    """Wrap `CursorTracer._populate_span` once; a later call refreshes the configuration."""
    global _installed
    if _installed is not None:
        _installed.config = config
        _forget_plans()
        return
    from wrapt import wrap_function_wrapper

    _installed = _StatementMasking(config)
    wrap_function_wrapper(_MODULE, _METHOD, _installed)


def _forget_plans() -> None:
    from opentelemetry.instrumentation.dbapi import CursorTracer

    from lumigo_opentelemetry.instrumentations._dbapi_lean import installed

    lean = installed(CursorTracer.__dict__.get("traced_execution"))
    if lean is not None:
        lean.clear()


def release_errors() -> None:
    """Wrap `CursorTracer.traced_execution` and its async twin once: the sync one with
    the lean path (`_dbapi_lean`), both so that a failed query's exception does not keep
    its span and cursor in a reference cycle (`_release`)."""
    from opentelemetry.instrumentation.dbapi import CursorTracer
    from wrapt import wrap_function_wrapper

    from lumigo_opentelemetry.instrumentations._dbapi_lean import LeanExecution
    from lumigo_opentelemetry.instrumentations._release import ReleasingAsync, is_releasing

    for name, releasing in (
        ("traced_execution", LeanExecution),
        ("traced_execution_async", ReleasingAsync),
    ):
        method = CursorTracer.__dict__.get(name)
        if method is not None and not is_releasing(method):
            wrap_function_wrapper(CursorTracer, name, releasing(method))
