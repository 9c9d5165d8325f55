"""OTLP trace protobuf (`ExportTraceServiceRequest`), written directly as bytes.

What the reference encoder (`opentelemetry.exporter.otlp.proto.common.trace_encoder`)
produces, decoded, is what this produces, decoded: same messages, same field values,
same grouping (resource, then instrumentation scope, in first-seen order). It is
cheaper per span because what repeats is encoded once:

- a resource and an instrumentation scope are encoded once per exporter and reused
  (grouped by identity, no hashing of their attributes);
- a span's attribute field (`key: value`, with a string value of at most 128
  characters, a bool or an int) is kept encoded in a bounded cache (keys such as
  `http.method` and values such as `GET` repeat on every span); span names with their
  kind likewise; a new int value (a client's port) is written from its key's kept prefix;
- the usual SDK span takes a lean path: its ids in one `struct` call, an unset status
  and the parent flags as one constant;
- no intermediate message objects: each span becomes one bytes object;
- the SDK's own span classes are read field by field, and their attribute dicts,
  events and links directly (their public properties copy or wrap them per call).

Spans are encoded in slices; between slices the encoding thread yields the GIL
(`time.sleep(0)`), so a large batch never holds the application's threads back
for the whole of its encoding.

A span can also be encoded as it ends (`SpanEncoder.early`): the batch queue then holds
an `Encoded` pair (its field bytes and the number of its resource and scope in `GROUPS`)
instead of the span's objects, which the cycle collector would otherwise walk over and
over while they wait; `encode` takes such pairs and spans alike.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from opentelemetry.trace import SpanContext

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

logger = logging.getLogger("lumigo-opentelemetry")

#: spans encoded between two GIL yields
SLICE = 64
_CACHE_LIMIT = 4096
_CACHED_VALUE_LENGTH = 128

_SMALL_VARINTS = [bytes([n]) for n in range(128)]
_INT64 = 1 << 63
_DOUBLE = struct.Struct("<d")
_TIMES = struct.Struct("<BQBQ")  # start and end time, fields 7 and 8 (fixed64)
_EVENT_TIME = struct.Struct("<BQ")
_FLAGS = struct.Struct("<I")
_TWO_BYTE_INT = struct.Struct("BBB")  # an `int_value` tag and its varint
_THREE_BYTE_INT = struct.Struct("BBBB")
_FLAGS_TAG = b"\x85\x01"  # field 16, fixed32
_LOW64 = (1 << 64) - 1
#: trace id (field 1, two big-endian halves) and span id (field 2), each with its tag
_IDS = struct.Struct(">HQQHQ")
_IDS_PARENT = struct.Struct(">HQQHQHQ")  # and the parent span id (field 4)
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200


def varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative numbers as 64-bit two's complement."""
    if 0 <= value < 128:
        return _SMALL_VARINTS[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _int64(value: int) -> bytes:
    """An `int_value` field: the reference encoder rejects what int64 cannot hold."""
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"{value} does not fit in int64")
    return b"\x18" + varint(value)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    size = len(payload)
    return tag + (_SMALL_VARINTS[size] if size < 128 else varint(size)) + payload


def _text(tag: bytes, text: str) -> bytes:
    return _field(tag, text.encode("utf-8"))


def any_value(value: Any) -> bytes:
    """The body of an `AnyValue` message for an attribute value."""
    if value is None:
        return b""
    kind = type(value)
    if kind is str:
        return _text(b"\x0a", value)
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        return _int64(value)
    if kind is float:
        return b"\x21" + _DOUBLE.pack(value)
    # subclasses and containers, in the reference encoder's order of checks
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _text(b"\x0a", value)
    if isinstance(value, int):
        return _int64(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", any_value(v)) for v in value))
    if isinstance(value, Mapping):
        pairs = b"".join(_field(b"\x0a", key_value(str(k), v)) for k, v in value.items())
        return _field(b"\x32", pairs)
    raise TypeError(f"invalid attribute value type {type(value)}")


def key_value(key: str, value: Any) -> bytes:
    """The body of a `KeyValue` message."""
    return _text(b"\x0a", key) + _field(b"\x12", any_value(value))


def _length(size: int) -> bytes:
    """The varint of a length (most fit in one or two bytes)."""
    if size < 128:
        return _SMALL_VARINTS[size]
    if size < 16384:
        return bytes(((size & 0x7F) | 0x80, size >> 7))
    return varint(size)


def _items(attributes: Any) -> Any:
    """The (key, value) pairs of an attribute mapping, in its order.

    A finished span's `BoundedAttributes` keeps its pairs in a plain dict (`_dict`);
    iterating that directly skips the `Mapping` protocol's Python-level `__iter__` and
    `__getitem__` per pair. Any other mapping is iterated as a mapping.
    """
    inner = getattr(attributes, "_dict", None)
    if type(inner) is dict:
        return inner.items()
    return attributes.items()


def _sequence(items: Any) -> Any:
    """A finished span's events or links: the SDK's `BoundedList` keeps them in a deque
    (`_dq`), whose length and iteration run no Python code; anything else as it is."""
    inner = getattr(items, "_dq", None)
    if type(inner) is deque:
        return inner
    return items


class _FieldCache(Dict[Tuple[Any, ...], bytes]):
    """Encoded span attribute fields by `(key, value)` for an exact str or int value,
    `(key, value, bool)` for a bool; indexing it with a pair it lacks returns `miss(pair)`.

    A pair whose value is an int of two or three varint bytes (a client's port: under
    real traffic most spans carry a new one) and whose key has its field prefixes in
    `int_heads` is encoded and kept here without `miss`, while fewer than `limit` pairs
    are held.
    """

    __slots__ = ("int_heads", "limit", "miss")

    def __init__(
        self,
        miss: Callable[[Tuple[Any, Any]], bytes],
        int_heads: Dict[Any, Tuple[bytes, bytes]],
        limit: int,
    ) -> None:
        super().__init__()
        self.miss = miss
        self.int_heads = int_heads
        self.limit = limit

    def __missing__(self, pair: Tuple[Any, Any]) -> bytes:
        value = pair[1]
        if type(value) is int and 128 <= value < 2097152 and len(self) < self.limit:
            heads = self.int_heads.get(pair[0])
            if heads is not None:
                low = (value & 0x7F) | 0x80
                if value < 16384:
                    field = heads[0] + _TWO_BYTE_INT.pack(0x18, low, value >> 7)
                else:
                    high = ((value >> 7) & 0x7F) | 0x80
                    field = heads[1] + _THREE_BYTE_INT.pack(0x18, low, high, value >> 14)
                self[pair] = field
                return field
        return self.miss(pair)


#: a span encoded when it ended: (its `ScopeSpans.spans` field, its group in `GROUPS`);
#: bytes and an int, so nothing in it is tracked by the cycle collector
Encoded = Tuple[bytes, int]


class Groups:
    """Numbers for the (resource, instrumentation scope) pairs of encoded spans.

    A pair, once numbered, is kept for the life of the process (so its `id`s stay its
    own); at most `limit` pairs are numbered, later ones get none (their spans wait in
    the queue unencoded)."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._numbers: Dict[Tuple[int, int], int] = {}
        self._pairs: List[Tuple[Any, Any]] = []
        self._lock = threading.Lock()

    def number(self, resource: Any, scope: Any) -> Optional[int]:
        """The number of `(resource, scope)`; None when `limit` pairs are numbered."""
        key = (id(resource), id(scope))
        known = self._numbers.get(key)
        if known is not None:
            return known
        with self._lock:
            known = self._numbers.get(key)
            if known is None:
                if len(self._pairs) >= self.limit:
                    return None
                known = len(self._pairs)
                self._pairs.append((resource, scope))
                self._numbers[key] = known
            return known

    def pair(self, number: int) -> Tuple[Any, Any]:
        return self._pairs[number]


GROUPS = Groups()


class SpanEncoder:
    """Encodes batches of SDK spans; keeps what repeats across spans and batches.

    `cache_limit` bounds the caches of encoded attribute pairs and span names (entries
    each). They are generational: when one is full it becomes the old generation and a
    new one starts; a miss in the new one that the old one holds is moved over (a dict
    lookup, not an encoding). So values that never repeat (a client's port, a request
    id) cycle through without pushing out the pairs every span carries; at most twice
    `cache_limit` entries each are held.
    """

    def __init__(self, slice_size: int = SLICE, cache_limit: int = _CACHE_LIMIT) -> None:
        self.slice_size = max(1, slice_size)
        self.cache_limit = max(1, cache_limit)
        # (key, value, type) -> a span's attribute field (tag, length, `KeyValue`)
        # key -> its field's prefixes for an int value of two and of three varint bytes
        self._int_heads: Dict[Any, Tuple[bytes, bytes]] = {}
        self._span_attributes = _FieldCache(self._pair_field, self._int_heads, self.cache_limit)
        self._old_span_attributes: Dict[Tuple[Any, ...], bytes] = {}
        # (name, id(kind)) -> a span's name and kind fields
        self._names: Dict[Tuple[str, int], bytes] = {}
        self._key_heads: Dict[str, bytes] = {}  # key -> its `KeyValue.key` field and value tag
        self._old_names: Dict[Tuple[str, int], bytes] = {}
        # id(hint) -> (hint, its pairs, their keys, the keys of int values, their fields)
        self._hints: Dict[int, Tuple[Any, Dict[str, Any], Tuple[str, ...], Tuple[str, ...], bytes]]
        self._hints = {}
        # id -> (object kept alive so the id stays its own, encoded bytes)
        self._resources: Dict[int, Tuple[Any, bytes]] = {}
        self._scopes: Dict[int, Tuple[Any, bytes]] = {}
        # (resource, scope, `GROUPS`, their number) of the last span `early` encoded
        self._last_group: Tuple[Any, Any, Any, int] = (_NOTHING, _NOTHING, None, 0)

    @property
    def cache_entries(self) -> int:
        """Encoded attribute pairs and span names held now, both generations (at most
        twice `cache_limit` each)."""
        return (
            len(self._span_attributes)
            + len(self._old_span_attributes)
            + len(self._names)
            + len(self._old_names)
        )

    # --- attributes -------------------------------------------------------------------

    def attributes(self, tag: bytes, attributes: Optional[Mapping[str, Any]]) -> List[bytes]:
        """Each attribute as a `KeyValue` field with `tag`; a value that cannot be
        encoded is left out and logged, as the reference encoder does."""
        if not attributes:
            return []
        out = []
        for key, value in _items(attributes):
            try:
                body = key_value(key, value)
            except Exception as exc:
                logger.debug("attribute %s not encoded: %r", key, exc)
                continue
            out.append(tag + _length(len(body)) + body)
        return out

    def _span_attribute_fields(self, attributes: Any, parts: List[bytes]) -> None:
        """Appends each of a span's attributes as a field 9 (`KeyValue`) to `parts` (an
        attribute that cannot be encoded as an empty field: left out, as the reference
        encoder does).

        A plain dict (a finished SDK span's) whose values are all exact str or int is
        looked up in one pass of C: its `items()` pairs index `_span_attributes`; a pair
        it misses (a client's port, a request id: under real traffic most spans carry
        one) is filled by `_pair_field` (`__missing__`). Other spans go pair by pair
        through `_pair_field`.
        """
        inner = getattr(attributes, "_dict", None)
        if type(inner) is dict:
            try:
                if _PLAIN.issuperset(map(type, inner.values())):
                    parts += map(self._span_attributes.__getitem__, inner.items())
                else:
                    parts += map(self._pair_field, inner.items())
                return
            except TypeError:  # an unhashable value: each pair on its own
                pass
        append = parts.append
        pair_field = self._pair_field
        for pair in _items(attributes):
            append(pair_field(tuple(pair)))

    def _pair_field(self, pair: Tuple[Any, Any]) -> bytes:
        """The field 9 of a `(key, value)` pair, from the cache or encoded (and kept).

        Kept are pairs whose value is an exact int or a string of at most
        `_CACHED_VALUE_LENGTH` characters, under the pair itself (only spans whose values
        are all exact str or int look pairs up directly, so an equal float, bool or
        IntEnum never finds an int's field), and bool values under `(key, value, bool)`
        (`True == 1`), which a lookup by pair never finds. Anything else is encoded
        afresh; b"" when it cannot be encoded (logged).
        """
        key, value = pair
        kind = type(value)
        cache_key: Tuple[Any, ...] = pair
        if kind is str or kind is int:
            if kind is str and len(value) > _CACHED_VALUE_LENGTH:
                return self._encoded_field(key, value, None) or b""
            field = self._span_attributes.get(pair)
            if field is not None:
                return field
        elif kind is bool:
            cache_key = (key, value, kind)
            field = self._span_attributes.get(cache_key)
            if field is not None:
                return field
        else:
            return self._encoded_field(key, value, None) or b""
        field = self._old_span_attributes.get(cache_key)
        if field is not None:
            self._keep_attribute(cache_key, field)
            return field
        try:
            if kind is str:
                data = value.encode("utf-8")
                body = b"\x0a" + _SMALL_VARINTS[len(data)] + data if len(data) < 128 else b""
            elif kind is int:
                if 0 <= value < 128:
                    body = b"\x18" + _SMALL_VARINTS[value]
                elif 0 < value < 2097152:  # a port, a status, a count: two or three bytes
                    if key not in self._int_heads:
                        self._int_head(key)
                    low = (value & 0x7F) | 0x80
                    if value < 16384:
                        body = _TWO_BYTE_INT.pack(0x18, low, value >> 7)
                    else:
                        body = _THREE_BYTE_INT.pack(
                            0x18, low, ((value >> 7) & 0x7F) | 0x80, value >> 14
                        )
                else:
                    body = b"\x18" + varint(value) if -_INT64 <= value < _INT64 else b""
            else:
                body = b"\x10\x01" if value else b"\x10\x00"
            head = self._key_heads.get(key) or self._key_head(key)
        except Exception:  # the general way tells (and logs) why
            body = b""
        if not body:
            return self._encoded_field(key, value, cache_key) or b""
        pair_bytes = head + _length(len(body)) + body
        field = b"\x4a" + _length(len(pair_bytes)) + pair_bytes
        self._keep_attribute(cache_key, field)
        return field

    def _int_head(self, key: str) -> None:
        """Keeps the prefixes (tag, length, `KeyValue.key`, value tag and length) of the
        field of `key` with an int value of two and of three varint bytes (at most
        `cache_limit` keys), for `_FieldCache.__missing__`."""
        head = _text(b"\x0a", key) + b"\x12"
        heads = self._int_heads
        if len(heads) >= self.cache_limit:
            heads.clear()
        heads[key] = (
            b"\x4a" + _length(len(head) + 4) + head + b"\x03",
            b"\x4a" + _length(len(head) + 5) + head + b"\x04",
        )

    def _key_head(self, key: str) -> bytes:
        """A `KeyValue`'s key field and its value's tag and (to come) length, kept per key
        (at most `cache_limit` keys)."""
        head = _text(b"\x0a", key) + b"\x12"
        if len(self._key_heads) >= self.cache_limit:
            self._key_heads.clear()
        self._key_heads[key] = head
        return head

    def _encoded_field(
        self, key: str, value: Any, cache_key: Optional[Tuple[Any, ...]]
    ) -> Optional[bytes]:
        """The field encoded now, kept under `cache_key` when one is given."""
        try:
            body = key_value(key, value)
        except Exception as exc:
            logger.debug("attribute %s not encoded: %r", key, exc)
            return None
        field = b"\x4a" + _length(len(body)) + body
        if cache_key is not None:
            self._keep_attribute(cache_key, field)
        return field

    def _keep_attribute(self, cache_key: Tuple[Any, ...], field: bytes) -> None:
        cache = self._span_attributes
        if len(cache) >= self.cache_limit:  # a new generation; this one becomes the old
            self._old_span_attributes = cache
            self._span_attributes = cache = _FieldCache(
                self._pair_field, self._int_heads, self.cache_limit
            )
        cache[cache_key] = field

    # --- resource and scope -----------------------------------------------------------

    def _resource(self, resource: Any) -> bytes:
        known = self._resources.get(id(resource))
        if known is not None and known[0] is resource:
            return known[1]
        body = b"".join(self.attributes(b"\x0a", resource.attributes))
        encoded = _field(b"\x0a", body)
        if len(self._resources) >= 64:
            self._resources.clear()
        self._resources[id(resource)] = (resource, encoded)
        return encoded

    def _scope(self, scope: Any) -> bytes:
        known = self._scopes.get(id(scope))
        if known is not None and known[0] is scope:
            return known[1]
        if scope is None:
            encoded = b"\x0a\x00"
        else:
            parts = []
            if scope.name:
                parts.append(_text(b"\x0a", scope.name))
            if scope.version:
                parts.append(_text(b"\x12", scope.version))
            parts += self.attributes(b"\x1a", getattr(scope, "attributes", None))
            encoded = _field(b"\x0a", b"".join(parts))
            schema_url = getattr(scope, "schema_url", None)
            if schema_url:
                encoded += _text(b"\x1a", schema_url)  # ScopeSpans.schema_url, after spans
        if len(self._scopes) >= 256:
            self._scopes.clear()
        self._scopes[id(scope)] = (scope, encoded)
        return encoded

    # --- spans ------------------------------------------------------------------------

    def span(self, span: ReadableSpan) -> bytes:
        """One span as the body of a `Span` message.

        The usual finished SDK span (a plain `SpanContext` with no trace state, a
        `SpanContext` parent or none, the SDK's own attribute map, event and link lists)
        is written with few calls: its ids and its parent's in one `struct` call, its
        name and kind as one cached field, and its status and flags as one constant when
        the status is unset. Any other span goes through `_span_fields`.
        """
        if type(span) not in _SDK_SPANS:
            return self._span_fields(span)
        context: Any = span._context
        parent: Any = span._parent
        attributes: Any = span._attributes
        if (
            type(context) is not SpanContext
            or context[4] is not _NO_STATE
            or type(attributes) is not _BOUNDED_ATTRIBUTES
            or attributes.dropped
        ):
            return self._span_fields(span)
        trace_id, span_id = context[0], context[1]
        try:
            if parent is None:
                remote = False
                ids = _IDS.pack(0x0A10, trace_id >> 64, trace_id & _LOW64, 0x1208, span_id)
            elif type(parent) is SpanContext:
                remote = parent[2]
                ids = _IDS_PARENT.pack(
                    0x0A10, trace_id >> 64, trace_id & _LOW64, 0x1208, span_id, 0x2208, parent[1]
                )
            else:
                return self._span_fields(span)
        except (struct.error, TypeError):  # ids out of range: the general way raises
            return self._span_fields(span)
        name = span._name
        kind = span._kind
        name_kind = self._names.get((name, id(kind))) or self._name_kind(name, kind)
        start_time = span._start_time
        end_time = span._end_time
        parts = [ids, name_kind, _TIMES.pack(0x39, start_time or 0, 0x41, end_time or 0)]
        inner = attributes._dict
        hint = getattr(span, ATTRIBUTES_HINT, None)  # (`__dict__` would make its dict)
        known = self._hints.get(id(hint)) if hint is not None else None
        if (
            known is not None
            and known[0] is hint
            and type(inner) is dict
            and inner == known[1]
            and tuple(inner) == known[2]
            and _ints_exact(inner, known[3])
        ):
            parts.append(known[4])  # the same pairs, in the same order, as last time
        elif type(inner) is dict and _PLAIN.issuperset(map(type, inner.values())):
            parts += map(self._span_attributes.__getitem__, inner.items())
            if hint is not None:
                self._keep_hint(hint, inner, parts)
        else:
            self._span_attribute_fields(attributes, parts)
        if getattr(span, LISTS_UNMADE, False) is not True:  # (else: none, nothing dropped)
            events: Any = span._events
            links: Any = span._links
            if (
                type(events) is not _BOUNDED_LIST
                or type(links) is not _BOUNDED_LIST
                or events._dq
                or links._dq
                or events.dropped
                or links.dropped
            ):
                self._events_and_links(events, links, parts)
        status: Any = span._status
        if status is None:
            parts.append(_REMOTE_PARENT if remote else _LOCAL_PARENT)
        elif type(status) is _STATUS and status._status_code is _UNSET and not status._description:
            parts.append(_UNSET_REMOTE if remote else _UNSET_LOCAL)
        else:
            parts.append(self._status_field(status))
            parts.append(_REMOTE_PARENT if remote else _LOCAL_PARENT)
        return b"".join(parts)

    def _keep_hint(self, hint: Any, inner: Dict[str, Any], parts: List[bytes]) -> None:
        """Keeps the attribute fields just appended to `parts` (after its first three) for
        later spans given the same `hint` (see `ATTRIBUTES_HINT`), with what they must
        match: a copy of the pairs, their keys in order, the keys of int values, whose
        values must be exact ints (an equal bool or float is not; at most `cache_limit`
        hints)."""
        ints = tuple(key for key, value in inner.items() if type(value) is int)
        fields = b"".join(parts[3:])
        if len(self._hints) >= self.cache_limit:
            self._hints = {}
        self._hints[id(hint)] = (hint, dict(inner), tuple(inner), ints, fields)

    def _name_kind(self, name: str, kind: Any) -> bytes:
        """A span's name and kind fields; kept (see class) under `(name, id(kind))` when
        `kind` is a `SpanKind` member (they live as long as the process)."""
        kind_field = _KIND_BY_ID.get(id(kind))
        if kind_field is None:
            return (_text(b"\x2a", name) if name else b"") + _KIND[kind.value]
        cache_key = (name, id(kind))
        field = self._old_names.get(cache_key)
        if field is None:
            field = (_text(b"\x2a", name) if name else b"") + kind_field
        if len(self._names) >= self.cache_limit:  # a new generation (see class)
            self._old_names = self._names
            self._names = {}
        self._names[cache_key] = field
        return field

    def _events_and_links(self, events: Any, links: Any, parts: List[bytes]) -> None:
        """Appends a span's events, links and their dropped counts (fields 11 to 14)."""
        dropped_events = getattr(events, "dropped", 0)
        dropped_links = getattr(links, "dropped", 0)
        for event in _sequence(events) or ():
            parts.append(_field(b"\x5a", self._event(event)))
        if dropped_events:
            parts.append(b"\x60" + varint(dropped_events))
        for link in _sequence(links) or ():
            parts.append(_field(b"\x6a", self._link(link)))
        if dropped_links:
            parts.append(b"\x70" + varint(dropped_links))

    @staticmethod
    def _status_field(status: Any) -> bytes:
        """A span's status field (15)."""
        if type(status) is _STATUS:
            unset = status._status_code is _UNSET and not status._description
        else:
            unset = status.status_code is _UNSET and not status.description
        return b"\x7a\x00" if unset else _field(b"\x7a", _status(status))

    def _span_fields(self, span: ReadableSpan) -> bytes:
        """One span as the body of a `Span` message, any span (see `span`)."""
        if type(span) in _SDK_SPANS:
            # the SDK's own span classes: their properties return these fields (or copy
            # and wrap them); reading them directly runs no Python function per field
            context: Any = span._context
            parent: Any = span._parent
            name = span._name
            kind = span._kind
            start_time = span._start_time
            end_time = span._end_time
            attributes: Any = span._attributes
            # events and links: the deque inside the SDK's `BoundedList` (see `_sequence`)
            events: Any = span._events
            links: Any = span._links
            dropped_events = getattr(events, "dropped", 0)
            dropped_links = getattr(links, "dropped", 0)
            inner = getattr(events, "_dq", None)
            if type(inner) is deque:
                events = inner
            inner = getattr(links, "_dq", None)
            if type(inner) is deque:
                links = inner
            status: Any = span._status
            dropped_attributes = getattr(attributes, "dropped", 0)
        else:
            context = span.get_span_context()
            parent = span.parent
            name = span.name
            kind = span.kind
            start_time = span.start_time
            end_time = span.end_time
            attributes = span.attributes
            events = span.events
            links = span.links
            status = span.status
            dropped_attributes = span.dropped_attributes
            dropped_events = span.dropped_events
            dropped_links = span.dropped_links
        if type(context) is SpanContext:
            trace_id, span_id, _, _, trace_state, _ = context
        else:
            trace_id, span_id = context.trace_id, context.span_id
            trace_state = context.trace_state
        parts = [b"\x0a\x10", trace_id.to_bytes(16, "big"), b"\x12\x08", span_id.to_bytes(8, "big")]
        if trace_state is not _NO_STATE and trace_state:  # (the usual empty one: no __len__)
            parts.append(_text(b"\x1a", ",".join(f"{k}={v}" for k, v in trace_state.items())))
        remote = False
        if parent:
            if type(parent) is SpanContext:
                parent_id, remote = parent[1], parent[2]
            else:
                parent_id, remote = parent.span_id, parent.is_remote
            parts.append(b"\x22\x08" + parent_id.to_bytes(8, "big"))
        elif parent is not None:
            remote = parent.is_remote
        parts.append(self._names.get((name, id(kind))) or self._name_kind(name, kind))
        parts.append(_TIMES.pack(0x39, start_time or 0, 0x41, end_time or 0))
        if attributes is not None:
            self._span_attribute_fields(attributes, parts)
        if dropped_attributes:
            parts.append(b"\x50" + varint(dropped_attributes))
        if events:
            for event in events:
                parts.append(_field(b"\x5a", self._event(event)))
        if dropped_events:
            parts.append(b"\x60" + varint(dropped_events))
        if links:
            for link in links:
                parts.append(_field(b"\x6a", self._link(link)))
        if dropped_links:
            parts.append(b"\x70" + varint(dropped_links))
        if status is not None:
            parts.append(self._status_field(status))
        parts.append(_REMOTE_PARENT if remote else _LOCAL_PARENT)
        return b"".join(parts)

    def early(self, span: ReadableSpan) -> Optional[Encoded]:
        """`span` encoded now, for `encode` to take later in its place; None when its
        resource and scope get no number in `GROUPS`."""
        if type(span) in _SDK_SPANS:
            resource, scope = span._resource, span._instrumentation_scope or None
        else:
            resource, scope = _resource_and_scope(span)
        groups = GROUPS
        last = self._last_group  # (one tuple: threads may replace it at any time)
        group: Optional[int]
        if last[0] is resource and last[1] is scope and last[2] is groups:
            group = last[3]
        else:
            group = groups._numbers.get((id(resource), id(scope)))
            if group is None:
                group = groups.number(resource, scope)
                if group is None:
                    return None
            self._last_group = (resource, scope, groups, group)
        body = self.span(span)
        size = len(body)
        if size < 128:
            head = _SMALL_VARINTS[size]
        elif size < 16384:
            head = bytes(((size & 0x7F) | 0x80, size >> 7))
        else:
            head = varint(size)
        return (b"\x12" + head + body, group)

    def _event(self, event: Any) -> bytes:
        parts = [_EVENT_TIME.pack(0x09, event.timestamp or 0)]
        if event.name:
            parts.append(_text(b"\x12", event.name))
        parts += self.attributes(b"\x1a", event.attributes)
        dropped = getattr(event, "dropped_attributes", 0)
        if dropped:
            parts.append(b"\x20" + varint(dropped))
        return b"".join(parts)

    def _link(self, link: Any) -> bytes:
        context = link.context
        parts = [
            b"\x0a\x10",
            context.trace_id.to_bytes(16, "big"),
            b"\x12\x08",
            context.span_id.to_bytes(8, "big"),
        ]
        parts += self.attributes(b"\x22", link.attributes)
        dropped = getattr(link, "dropped_attributes", 0)
        if dropped:
            parts.append(b"\x28" + varint(dropped))
        flags = _HAS_IS_REMOTE | (_IS_REMOTE if context.is_remote else 0)
        parts.append(b"\x35" + _FLAGS.pack(flags))
        return b"".join(parts)

    # --- the request ------------------------------------------------------------------

    def encode(self, spans: Sequence[Any]) -> bytes:
        """An `ExportTraceServiceRequest` holding `spans` (SDK spans or `Encoded`
        pairs), serialized."""
        # resource id -> (resource, scope id -> (scope, encoded spans))
        groups: Dict[int, Tuple[Any, Dict[int, Tuple[Any, List[bytes]]]]] = {}
        step = self.slice_size
        encode_span = self.span
        pairs = GROUPS._pairs  # (`GROUPS.pair`, without its call)
        # the bucket of the previous span: consecutive spans mostly share it
        last_resource: Any = _NOTHING
        last_scope: Any = _NOTHING
        last_group: Any = None  # the group of the previous `Encoded` pair, if that was one
        bucket: List[bytes] = []
        for start in range(0, len(spans), step):
            if start:
                time.sleep(0)  # let the application's threads run between slices
            for span in spans[start : start + step]:
                field: Optional[bytes] = None
                if type(span) is tuple:
                    field, group = span
                    if group == last_group:  # the previous pair's bucket
                        bucket.append(field)
                        continue
                    last_group = group
                    resource, scope = pairs[group]
                else:
                    last_group = None
                    resource, scope = _resource_and_scope(span)
                if resource is not last_resource or scope is not last_scope:
                    by_scope = groups.get(id(resource))
                    if by_scope is None:
                        by_scope = groups[id(resource)] = (resource, {})
                    known = by_scope[1].get(id(scope))
                    if known is None:
                        known = by_scope[1][id(scope)] = (scope, [])
                    bucket = known[1]
                    last_resource, last_scope = resource, scope
                if field is None:
                    body = encode_span(span)
                    field = b"\x12" + _length(len(body)) + body
                bucket.append(field)
        # each message's length worked out from its parts', so the request is joined once
        out: List[bytes] = []
        for resource, scopes in groups.values():
            parts = [self._resource(resource)]
            size = len(parts[0])
            for scope, encoded in scopes.values():
                # the scope's schema_url (field 3) rides with its head; field order is free
                head = self._scope(scope)
                inner = len(head) + sum(map(len, encoded))  # `ScopeSpans`
                length = _length(inner)
                parts.append(b"\x12" + length + head)
                parts += encoded
                size += 1 + len(length) + inner
            schema_url = getattr(resource, "schema_url", None)
            if schema_url:
                parts.append(_text(b"\x1a", schema_url))
                size += len(parts[-1])
            out.append(b"\x0a" + _length(size))  # `ResourceSpans`
            out += parts
        return b"".join(out)


def _resource_and_scope(span: Any) -> Tuple[Any, Any]:
    """A span's resource and instrumentation scope (None for an empty one); the SDK's own
    span classes read directly."""
    if type(span) in _SDK_SPANS:
        return span._resource, span._instrumentation_scope or None
    return span.resource, getattr(span, "instrumentation_scope", None) or None


def _ints_exact(attributes: Dict[str, Any], keys: Tuple[str, ...]) -> bool:
    """Whether the values of `keys` are exact ints (an equal bool or float is not)."""
    for key in keys:  # noqa: SIM110 - a loop: `all` over a generator costs more
        if type(attributes[key]) is not int:
            return False
    return True


#: a span field its maker may set to the dict the span's attributes were copied from (the
#: lean DB-API path: the same query's spans share it). It only selects which kept fields to
#: try: they are used when the span's pairs equal the kept copy, in the same order, with
#: exact str and int values; otherwise the span is encoded as any other.
ATTRIBUTES_HINT = "_lumigo_attributes"
#: a span field `_leanstart.SpanBuilder` sets True on a span it built without its event and
#: link lists (made when first read, `_lazylists`): the span has no events or links
LISTS_UNMADE = "_lumigo_lists_unmade"
_NOTHING = object()
#: value types whose pairs the cache holds as they are (see `_pair_field`)
_PLAIN = frozenset({str, int})
_LOCAL_PARENT = _FLAGS_TAG + _FLAGS.pack(_HAS_IS_REMOTE)
_REMOTE_PARENT = _FLAGS_TAG + _FLAGS.pack(_HAS_IS_REMOTE | _IS_REMOTE)
#: an unset status (field 15, empty) and the parent flags, as a span ends with them
_UNSET_LOCAL = b"\x7a\x00" + _LOCAL_PARENT
_UNSET_REMOTE = b"\x7a\x00" + _REMOTE_PARENT


_KIND = {
    0: b"\x30\x01",  # SpanKind.INTERNAL -> SPAN_KIND_INTERNAL
    1: b"\x30\x02",  # SERVER
    2: b"\x30\x03",  # CLIENT
    3: b"\x30\x04",  # PRODUCER
    4: b"\x30\x05",  # CONSUMER
}


def _kinds_by_identity() -> Dict[int, bytes]:
    """`SpanKind` members by `id()`: an enum's `.value` and `__hash__` run Python code."""
    from opentelemetry.trace import SpanKind

    return {id(kind): _KIND[kind.value] for kind in SpanKind}


def _unset_status() -> Any:
    from opentelemetry.trace import StatusCode

    return StatusCode.UNSET


def _empty_trace_state() -> Any:
    """The API's default (empty) `TraceState`, which span contexts share; a fresh object
    (matching no span's) if it is not empty."""
    from opentelemetry.trace.span import DEFAULT_TRACE_STATE

    return DEFAULT_TRACE_STATE if len(DEFAULT_TRACE_STATE) == 0 else object()


def _status_type() -> Any:
    """The API's `Status`, whose properties are plain reads of `_status_code` and
    `_description`."""
    from opentelemetry.trace import Status

    return Status


def _bounded_types() -> Tuple[Any, Any]:
    """The API's attribute map and the SDK's event and link list (`_items`, `_sequence`)."""
    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.sdk.util import BoundedList

    return BoundedAttributes, BoundedList


def _sdk_span_types() -> Tuple[type, ...]:
    """The SDK's span classes whose properties are plain reads of their `_` fields."""
    from opentelemetry.sdk import trace

    found = [getattr(trace, name, None) for name in ("ReadableSpan", "Span", "_Span")]
    return tuple(cls for cls in found if isinstance(cls, type))


_KIND_BY_ID = _kinds_by_identity()
_SDK_SPANS = frozenset(_sdk_span_types())
_UNSET = _unset_status()
_STATUS = _status_type()
_NO_STATE = _empty_trace_state()
_BOUNDED_ATTRIBUTES, _BOUNDED_LIST = _bounded_types()


def _status(status: Any) -> bytes:
    parts = []
    description = status.description
    if description:
        parts.append(_text(b"\x12", description))
    code = status.status_code.value
    if code:
        parts.append(b"\x18" + varint(code))
    return b"".join(parts)
