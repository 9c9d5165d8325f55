"""`_dbapi_lean._fill`: a query plan's attributes put on its just-started span record what
`set_attributes` records, straight into the store only when nothing could differ."""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytest
from opentelemetry.sdk.trace import SpanLimits, TracerProvider

from lumigo_opentelemetry.instrumentations._dbapi_lean import _fill
from lumigo_opentelemetry.instrumentations._fastspan import set_attributes

PLAN = {
    "db.system": "mysql",
    "db.name": "test",
    "db.statement": "SELECT id, name FROM items WHERE id = %s",
    "db.user": "root",
    "net.peer.name": "127.0.0.1",
    "net.peer.port": 3306,
}


def _span(limits: Optional[SpanLimits] = None, **started: Any) -> Any:
    tracer = TracerProvider(span_limits=limits).get_tracer("opentelemetry.instrumentation.dbapi")
    return tracer.start_span("SELECT", attributes=started or None)


def _longest(attributes: Dict[str, Any]) -> int:
    return max(len(v) for v in attributes.values() if type(v) is str)


def _both(plan: Dict[str, Any], longest: Optional[int], **kw: Any) -> tuple[Any, Any]:
    filled, reference = _span(**kw), _span(**kw)
    _fill(filled, plan, longest)
    set_attributes(reference, dict(plan))
    return filled, reference


def test_a_clean_plan_on_an_empty_span_is_recorded_as_set_attributes_records_it() -> None:
    filled, reference = _both(PLAN, _longest(PLAN))
    assert list(filled.attributes.items()) == list(reference.attributes.items())
    assert filled._attributes.dropped == 0
    filled.set_attribute("db.name", "other")  # the span's own map, not the plan's
    assert PLAN["db.name"] == "test"


def test_a_span_that_already_has_attributes_merges_them_as_set_attributes_does() -> None:
    filled, reference = _both(PLAN, _longest(PLAN), **{"db.name": "early", "x": 1})
    assert list(filled.attributes.items()) == list(reference.attributes.items())
    assert filled.attributes["db.name"] == "test" and filled.attributes["x"] == 1


def test_values_over_the_length_limit_are_cut_as_the_sdk_cuts_them() -> None:
    limits = SpanLimits(max_span_attribute_length=10)
    filled, reference = _both(PLAN, _longest(PLAN), limits=limits)
    assert filled.attributes["db.statement"] == "SELECT id,"
    assert list(filled.attributes.items()) == list(reference.attributes.items())


def test_more_attributes_than_the_count_limit_are_dropped_as_the_sdk_drops_them() -> None:
    filled, reference = _both(PLAN, _longest(PLAN), limits=SpanLimits(max_span_attributes=4))
    assert len(filled.attributes) == 4 and filled._attributes.dropped == 2
    assert list(filled.attributes.items()) == list(reference.attributes.items())


def test_an_ended_span_gets_nothing() -> None:
    span = _span()
    span.end()
    _fill(span, PLAN, _longest(PLAN))
    assert dict(span.attributes) == {}


@pytest.mark.parametrize("value", [["a", "b"], None])
def test_a_plan_not_found_clean_goes_through_the_sdks_checks(value: Any) -> None:
    plan = {**PLAN, "db.tags": value}
    filled, reference = _both(plan, None)
    assert list(filled.attributes.items()) == list(reference.attributes.items())
    assert filled.attributes["db.tags"] == (None if value is None else tuple(value))


def test_a_span_that_is_not_the_sdks_gets_them_through_its_own_set_attributes() -> None:
    class Recorded:
        def __init__(self) -> None:
            self.given: Dict[str, Any] = {}

        def set_attributes(self, attributes: Dict[str, Any]) -> None:
            self.given.update(attributes)

    span = Recorded()
    _fill(span, PLAN, _longest(PLAN))
    assert span.given == PLAN
