"""Payload capture helpers shared by the HTTP and AWS instrumentations.

Turn headers, bodies and URLs into span attribute values: masked by
`Masking.apply` for their site (request/response headers and bodies, query
parameters), decoded to text (or a placeholder for binary data) and truncated to
`config.attribute_length_limit` characters. Pure functions plus a bounded recorder
for streams; none of them reads from a stream the application owns.
"""

from __future__ import annotations

import codecs
import functools
import logging
import operator
from collections import abc
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from lumigo_opentelemetry.masking import MASKED, Masking
from lumigo_opentelemetry.masking import Site as Site  # re-exported for the capture sites

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from lumigo_opentelemetry.config import Config

logger = logging.getLogger("lumigo-opentelemetry")

REQUEST_HEADERS = "http.request.headers"
REQUEST_BODY = "http.request.body"
RESPONSE_HEADERS = "http.response.headers"
RESPONSE_BODY = "http.response.body"
#: a database client's command document and reply (upstream's names)
DB_REQUEST_BODY = "db.request.body"
DB_RESPONSE_BODY = "db.response.body"

_BINARY_TYPES = ("image/", "audio/", "video/", "font/")
_BINARY_SUBTYPES = frozenset(
    {
        "octet-stream",
        "zip",
        "gzip",
        "x-gzip",
        "x-tar",
        "pdf",
        "protobuf",
        "x-protobuf",
        "grpc",
        "msgpack",
        "x-msgpack",
        "vnd.apache.avro",
        "wasm",
    }
)
#: span attributes that may hold a query string or a host with userinfo (a client can
#: send `Host: user:pw@host`)
URL_ATTRIBUTES = (
    "http.target",
    "http.url",
    "url.query",
    "url.full",
    "http.host",
    "net.host.name",
    "http.server_name",
    "server.address",
)
_UTF8_NAMES = frozenset({None, "utf-8", "utf8"})
#: WSGI environ keys already turned into header names, None for other keys (bounded: keys
#: come from requests)
_ENVIRON_HEADER_NAMES: Dict[str, Optional[str]] = {}
_UNSEEN: Any = object()
_ENVIRON_CACHE_SIZE = 512
#: (site, header pairs) -> (masking, limit, attribute text) of header sets seen before
_HEADER_TEXTS: Dict[Tuple[Any, ...], Tuple[Any, int, str]] = {}
_HEADER_TEXTS_SIZE = 256
#: (header names, values) of a WSGI environ -> (masking, limit, request headers text)
_WSGI_HEADER_TEXTS: Dict[Tuple[Any, ...], Tuple[Any, int, str]] = {}
#: environ keys (in order) -> (the keys that are headers, their header names)
#: (a plan's values getter: `operator.itemgetter` of its two or more header keys, every
#: one of them in an environ with those keys; None: read one by one)
_HEADER_PLANS: Dict[Tuple[str, ...], Tuple[Tuple[str, ...], Tuple[str, ...], Any]] = {}
_HEADER_PLANS_SIZE = 64
#: header names of a plan -> whether they are distinct, stripped and lower-case
_PLAIN_NAMES: Dict[Tuple[str, ...], bool] = {}
_STR_ONLY = frozenset({str})


class Attributes(Dict[str, Any]):
    """Attributes gathered before a span exists, filled by the same capture helpers
    that set attributes on spans (`set_attribute`, `attributes`)."""

    def set_attribute(self, key: str, value: Any) -> None:
        self[key] = value

    @property
    def attributes(self) -> Dict[str, Any]:
        return self


HeaderSource = Union[Mapping[str, str], Iterable[Tuple[Union[str, bytes], Union[str, bytes]]]]


def set_captured(
    span: Span, key: str, compute: Callable[..., Optional[str]], *args: Any, **kwargs: Any
) -> None:
    """Set attribute `key` to `compute(*args, **kwargs)` (None: not set); on any error in
    `compute` the attribute is dropped and the error logged at debug, never raised."""
    try:
        value = compute(*args, **kwargs)
        if value is not None:
            span.set_attribute(key, value)
    except Exception:
        logger.debug("capturing %s failed; attribute dropped", key, exc_info=True)


def mask_span_urls(span: Span, config: Config) -> None:
    """Mask the span's URL attributes (secret query parameters, userinfo, the token);
    never raises. If masking fails, the query strings are replaced by `****` as a whole."""
    try:
        attributes = getattr(span, "attributes", None)
        if attributes:
            for key, value in masked_url_attributes(attributes, config).items():
                span.set_attribute(key, value)
    except Exception:
        logger.debug("masking URL attributes failed; query strings dropped", exc_info=True)
        try:
            for key in URL_ATTRIBUTES:
                value = span.attributes.get(key)  # type: ignore[attr-defined]
                if isinstance(value, str) and (key == "url.query" or "?" in value):
                    kept = "" if key == "url.query" else value.partition("?")[0] + "?"
                    span.set_attribute(key, kept + MASKED)
        except Exception:
            logger.debug("dropping query strings failed", exc_info=True)


def url_masked(attributes: Mapping[str, Any], config: Config) -> Dict[str, Any]:
    """A copy of `attributes` with their URL attributes masked: what `mask_span_urls`
    makes of an `Attributes` copy (never raises), without its per-key calls."""
    try:
        changed = masked_url_attributes(attributes, config)
    except Exception:
        masked = Attributes(attributes)
        mask_span_urls(masked, config)  # type: ignore[arg-type]  # its fallback
        return dict(masked)
    copy = dict(attributes)
    if changed:
        copy.update(changed)  # keys already there: their places kept
    return copy


def url_value_masked(key: str, value: Any, config: Config) -> Any:
    """`url_masked({key: value}, config)[key]` for one URL attribute (`http.target`,
    `http.url`) of a server span, without a dictionary: the one attribute a request's
    target or query decides. Never raises."""
    try:
        masking = config.masking
        if type(value) is not str or key not in _URL_VALUE_KEYS:
            return url_masked({key: value}, config)[key]
        token = masking.token
        if "?" not in value and "@" not in value and not (token and token in value):
            return value  # what `masked_url_attributes` leaves as it is
        return masking.apply(Site.HTTP_QUERY_PARAMS, value)
    except Exception:
        return url_masked({key: value}, config)[key]


#: URL attributes `masked_url_attributes` masks as whole URLs
_URL_VALUE_KEYS = frozenset(URL_ATTRIBUTES) - {"url.query"}


def _text(value: Union[str, bytes]) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters."""
    return text if len(text) <= limit else text[:limit]


def headers_attribute(
    headers: HeaderSource,
    config: Config,
    site: Site = Site.HTTP_REQUEST_HEADERS,
    *,
    memo: bool = True,
) -> str:
    """Headers as a JSON object (lower-case names, repeated names joined with ", "),
    masked for `site` (request or response headers), truncated to the attribute
    length limit.

    A header set seen before (same pairs, same masking and limit) takes its text from a
    bounded memo; only texts in which nothing was masked are kept there, so the memo
    never holds a value the rules call secret. `memo=False`: the caller keeps its own."""
    kind = type(headers)
    if kind is list or kind is tuple:  # no ABC check for the usual pairs
        pairs = tuple(headers)
    else:
        pairs = tuple(headers.items() if isinstance(headers, abc.Mapping) else headers)
    if not memo:
        return _headers_text(pairs, config.masking, config.attribute_length_limit, site)
    key: Optional[Tuple[Any, ...]] = (id(site), pairs)  # a Site member's hash runs Python
    try:
        known = _HEADER_TEXTS.get(key)  # type: ignore[arg-type]
    except TypeError:  # unhashable pairs: no memo
        key, known = None, None
    masking = config.masking
    limit = config.attribute_length_limit
    if known is not None and known[0] is masking and known[1] == limit:
        return known[2]
    text = _headers_text(pairs, masking, limit, site)
    if key is not None and MASKED not in text:
        if len(_HEADER_TEXTS) >= _HEADER_TEXTS_SIZE:
            _HEADER_TEXTS.clear()
        _HEADER_TEXTS[key] = (masking, limit, text)
    return text


def _headers_text(pairs: Iterable[Any], masking: Any, limit: int, site: Site) -> str:
    """`headers_attribute` without its memo."""
    merged: Dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name = (raw_name if type(raw_name) is str else _text(raw_name)).strip().lower()
        if name in merged:
            merged[name] = f"{merged[name]}, {_text(raw_value)}"
        else:
            merged[name] = raw_value if type(raw_value) is str else _text(raw_value)
    text = _composed(merged, masking, site) if merged else None
    if text is None:
        text = masking.apply(site, merged)
    return truncate(text, limit)


def merged_headers_text(merged: Dict[str, str], config: Config, site: Site) -> str:
    """What `headers_attribute` gives for headers already merged as it merges them
    (stripped lower-case names, repeated names' values joined with ", "), without memo."""
    masking = config.masking
    text = _composed(merged, masking, site) if merged else None
    if text is None:
        text = masking.apply(site, merged)
    return truncate(text, config.attribute_length_limit)


class _Fragments:
    """The masked JSON member (`"name":"value"`) of header pairs seen before, for one
    `Masking` (bounded), by site and header name (`tables[id(site)][name]`): a name
    masked whatever its value has its member there (no value is kept); any other name
    a table of the members of its values in which nothing was masked (each name's
    bounded on its own, so that a name with a new value per request, a request id or
    an incoming trace, does not push out the members of the others)."""

    def __init__(self, masking: Masking) -> None:
        self.masking = masking
        self.tables: Dict[int, Dict[str, Any]] = {}
        self.composable: Dict[int, bool] = {}
        self.count = 0  # values kept over all tables

    def table(self, site_id: int) -> Dict[str, Any]:
        table = self.tables.get(site_id)
        if table is None:
            table = self.tables[site_id] = {}
        return table

    def keep(self, table: Dict[str, Any], name: str, value: Optional[str], member: str) -> None:
        """Remember `member` for `name` (and `value`; None: any value)."""
        if self.count >= _FRAGMENTS_SIZE or len(table) >= _FRAGMENT_NAMES:
            for each in self.tables.values():
                each.clear()
            self.count = 0
        values = table.get(name)
        if value is None:
            if type(values) is dict:
                self.count -= len(values)
            table[name] = member
            return
        if type(values) is not dict or len(values) >= _FRAGMENT_VALUES:
            if type(values) is dict:
                self.count -= len(values)
            values = table[name] = {}
        values[value] = member
        self.count += 1


_FRAGMENTS: List[_Fragments] = []
_FRAGMENTS_SIZE = 2048
_FRAGMENT_NAMES = 256  # header names per site
_FRAGMENT_VALUES = 64  # values per header name
_PROBE_VALUE = "x"


def _composed(merged: Dict[str, str], masking: Masking, site: Site) -> Optional[str]:
    """`masking.apply(site, merged)` put together from each header's own masked member,
    or None when that cannot be sure to give the same text.

    Masking a header object masks each member on its own (its name's rules, its value's
    content), and compact JSON of an object is its members joined by commas in braces;
    only the time bound of the user's regexes spans the whole object, so rules with any
    such regex (anything but the `.*word.*` shape and `all`) are not composed."""
    return _composed_seen(merged, masking, site)[0]


def _composed_seen(
    merged: Dict[str, str], masking: Masking, site: Site
) -> Tuple[Optional[str], bool]:
    """`_composed`, and whether every member was remembered from before (a header
    set with a value never seen, such as a request id, is seldom seen again)."""
    memos = _FRAGMENTS[0] if _FRAGMENTS else None
    if memos is None or memos.masking is not masking:
        memos = _Fragments(masking)
        _FRAGMENTS[:] = [memos]
    site_id = id(site)  # a Site member's hash runs Python
    composable = memos.composable.get(site_id)
    if composable is None:
        rules = masking.rules(site)
        composable = memos.composable[site_id] = getattr(rules, "_patterns", None) == ()
    if not composable:
        return None, False
    table = memos.table(site_id)
    seen = True
    members: List[str] = []
    for name, value in merged.items():
        known = table.get(name)
        if known is not None:
            if type(known) is str:  # masked by its name
                members.append(known)
                continue
            member = known.get(value)
            if member is not None:
                members.append(member)
                continue
        member = _member(memos, table, site, name, value)
        if member is None:
            return None, False
        seen = False
        members.append(member)
    return "{" + ",".join(members) + "}", seen


def _member(
    memos: _Fragments, table: Dict[str, Any], site: Site, name: str, value: str
) -> Optional[str]:
    """One header's masked JSON member, remembered when it may be (see `_Fragments`)."""
    masking = memos.masking
    member = masking.header_member(site, name, value)  # None: `apply` must say
    if member is None:
        text = masking.apply(site, {name: value})
        if len(text) < 2 or text[0] != "{" or text[-1] != "}":
            return None  # masked as a whole: the whole object would be too
        member = text[1:-1]
    if MASKED not in member:
        memos.keep(table, name, value, member)
        return member
    # masked by its name? then a harmless value is masked the same way (`x` is not
    # masked for what it holds unless it holds the token)
    token = masking.token
    if token and token in _PROBE_VALUE:
        return member
    if masking.apply(site, {name: _PROBE_VALUE})[1:-1] == member:
        memos.keep(table, name, None, member)
    return member


def wsgi_headers_attribute(
    environ: Mapping[str, object], config: Config, keep_empty_content: bool = False
) -> str:
    """`headers_attribute(wsgi_request_headers(environ, keep_empty_content), config)`, in
    fewer steps.

    When every header value is a non-empty `str` (the usual environ), the text is kept in
    a bounded memo keyed on the header names (shared by every environ with the same keys)
    and values: that is all it depends on, with the masking and limit. As in
    `headers_attribute`, only texts in which nothing was masked are kept, and of the
    texts put together from their members (`_composed`), only those with no value seen
    for the first time: a set with a request id or trace of its own would not be asked
    for again, and would push out those that are. Such a set costs the members of its
    new values alone (the others are remembered per header)."""
    keys = tuple(environ)
    plan = _HEADER_PLANS.get(keys)
    if plan is None:
        plan = _header_plan(keys)
    header_keys, names, getter = plan
    values = getter(environ) if getter is not None else tuple(map(environ.get, header_keys))
    if "" in values or not _STR_ONLY.issuperset(map(type, values)):
        return headers_attribute(_request_headers_one_by_one(environ, keep_empty_content), config)
    key = (names, values)  # (no empty value: the same text whether or not it keeps them)
    known = _WSGI_HEADER_TEXTS.get(key)
    masking = config.masking
    limit = config.attribute_length_limit
    if known is not None and known[0] is masking and known[1] == limit:
        return known[2]
    seen = True  # False: a value never seen before, not worth keeping the text for
    if _plain_names(names):  # what `_headers_text` would merge them into, as they are
        merged: Dict[str, str] = dict(zip(names, values))  # type: ignore[arg-type]
        site = Site.HTTP_REQUEST_HEADERS
        text, seen = _composed_seen(merged, masking, site) if merged else (None, True)
        if text is None:
            text = masking.apply(site, merged)
            seen = True
        text = truncate(text, limit)
    else:
        text = headers_attribute(list(zip(names, values)), config, memo=False)  # type: ignore[arg-type]
    if seen and MASKED not in text:
        if len(_WSGI_HEADER_TEXTS) >= _HEADER_TEXTS_SIZE:
            _WSGI_HEADER_TEXTS.clear()
        _WSGI_HEADER_TEXTS[key] = (masking, limit, text)
    return text


def _plain_names(names: Tuple[str, ...]) -> bool:
    """Whether header `names` are distinct and already stripped and lower-case (as
    `_headers_text` makes them), remembered (bounded)."""
    known = _PLAIN_NAMES.get(names)
    if known is None:
        known = len(set(names)) == len(names) and all(
            type(n) is str and n == n.strip().lower() for n in names
        )
        if len(_PLAIN_NAMES) >= _HEADER_PLANS_SIZE:
            _PLAIN_NAMES.clear()
        _PLAIN_NAMES[names] = known
    return known


def wsgi_request_headers(
    environ: Mapping[str, object], keep_empty_content: bool = False
) -> List[Tuple[str, str]]:
    """The request headers of a WSGI environ, as (name, value) pairs; an empty
    `CONTENT_TYPE` / `CONTENT_LENGTH` is no header unless `keep_empty_content` (Django's
    `request.headers` keeps them).

    Environs with the same keys in the same order (one client's requests) share a plan
    (which keys are headers, their names), kept in a bounded memo: the values are then
    read in C, and only an environ with a non-`str` header value (or an empty one, unless
    `keep_empty_content`) goes key by key."""
    keys = tuple(environ)
    plan = _HEADER_PLANS.get(keys)
    if plan is None:
        plan = _header_plan(keys)
    header_keys, names, getter = plan
    values = getter(environ) if getter is not None else tuple(map(environ.get, header_keys))
    if (keep_empty_content or "" not in values) and _STR_ONLY.issuperset(map(type, values)):
        return list(zip(names, values))
    return _request_headers_one_by_one(environ, keep_empty_content)


def _header_plan(keys: Tuple[str, ...]) -> Tuple[Tuple[str, ...], Tuple[str, ...], Any]:
    header_keys = []
    names = []
    for key in keys:
        name = _environ_header_name(key) if type(key) is str else None
        if name is not None:
            header_keys.append(key)
            names.append(name)
    getter = operator.itemgetter(*header_keys) if len(header_keys) >= 2 else None
    plan = (tuple(header_keys), tuple(names), getter)
    if len(_HEADER_PLANS) >= _HEADER_PLANS_SIZE:
        _HEADER_PLANS.clear()
    _HEADER_PLANS[keys] = plan
    return plan


def _request_headers_one_by_one(
    environ: Mapping[str, object], keep_empty_content: bool = False
) -> List[Tuple[str, str]]:
    names = _ENVIRON_HEADER_NAMES
    pairs: List[Tuple[str, str]] = []
    for key, value in environ.items():
        name = names.get(key, _UNSEEN)  # one lookup per key: a header's name, or None
        if name is None:
            continue
        if type(value) is not str and not isinstance(value, str):
            continue
        if name is _UNSEEN:
            name = _environ_header_name(key)
            if name is None:
                continue
        if value or keep_empty_content or not key.startswith("CONTENT_"):
            pairs.append((name, value))
    return pairs


def _environ_header_name(key: str) -> Optional[str]:
    """The header name of an environ key (None: not a header), remembered (bounded)."""
    if key.startswith("HTTP_"):
        name: Optional[str] = key[5:].replace("_", "-").lower()
    elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        name = key.replace("_", "-").lower()
    else:
        name = None
    names = _ENVIRON_HEADER_NAMES
    if len(names) >= _ENVIRON_CACHE_SIZE:
        names.clear()
    names[key] = name
    return name


def header_value(headers: HeaderSource, name: str) -> Optional[str]:
    """The first value of header `name` (case-insensitive), if any."""
    pairs = headers.items() if isinstance(headers, abc.Mapping) else headers
    wanted = name.lower()
    try:
        wanted_bytes: Optional[bytes] = wanted.encode("latin-1")
    except UnicodeEncodeError:
        wanted_bytes = None  # no latin-1 name matches it: the general comparison says so
    for raw_name, raw_value in pairs:
        if wanted_bytes is not None and type(raw_name) is bytes:  # ASGI: no decoding
            if raw_name.lower() == wanted_bytes:
                return _text(raw_value)
            if raw_name[:1].isalnum() and raw_name[-1:].isalnum():
                continue  # nothing to strip: the comparison above was the whole answer
        if _text(raw_name).strip().lower() == wanted:
            return _text(raw_value)
    return None


@functools.lru_cache(maxsize=256)
def _media_type(content_type: Optional[str]) -> Tuple[str, Optional[str]]:
    """(lower-case media type, charset or None) of a Content-Type value."""
    if not content_type:
        return "", None
    parts = content_type.split(";")
    charset = None
    for param in parts[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"').lower()
    return parts[0].strip().lower(), charset


def _is_binary_type(media_type: str) -> bool:
    if media_type.startswith(_BINARY_TYPES):
        return True
    subtype = media_type.partition("/")[2]
    return subtype in _BINARY_SUBTYPES


def _decode(body: bytes, charset: Optional[str]) -> Optional[str]:
    """Decode body text; a multi-byte character cut at the end is dropped.
    None when the bytes are not text in that charset."""
    if charset in _UTF8_NAMES:
        # the common case, a complete UTF-8 body: the same text the incremental decoder gives
        try:
            whole = body.decode("utf-8")
            return None if "\x00" in whole else whole
        except UnicodeDecodeError:
            pass  # maybe a character cut at the end: the incremental decoder drops it
    try:
        decoder = codecs.getincrementaldecoder(charset or "utf-8")(errors="strict")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        text: str = decoder.decode(body, final=False)
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    return text


def masked_url_attributes(attributes: Mapping[str, Any], config: Config) -> Dict[str, str]:
    """New values for the URL attributes (`http.target`, `http.url`, `url.query`,
    `url.full`) that masking changes (secret query parameters, userinfo, the token);
    empty when it changes none."""
    changed: Dict[str, str] = {}
    masking = config.masking
    apply = masking.apply
    token = masking.token
    for key in URL_ATTRIBUTES:
        value = attributes.get(key)
        if not isinstance(value, str):
            continue
        if (
            key != "url.query"
            and "?" not in value
            and "@" not in value
            and not (token and token in value)
        ):
            continue  # what `apply` leaves unchanged: no query, no userinfo, no token
        if key == "url.query":
            new = apply(Site.HTTP_QUERY_PARAMS, "?" + value)
            new = new[1:] if new.startswith("?") else new
        else:
            new = apply(Site.HTTP_QUERY_PARAMS, value)
        if new != value:
            changed[key] = new
    return changed


def body_attribute(
    body: Union[bytes, bytearray, str, None],
    config: Config,
    content_type: Optional[str] = None,
    *,
    total_size: Optional[int] = None,
    site: Site = Site.HTTP_REQUEST_BODIES,
) -> Optional[str]:
    """A body as an attribute value, or None for no/empty body.

    Text is decoded (Content-Type charset, else UTF-8) and masked for `site` (request
    or response bodies); binary data becomes a placeholder `<binary body: N bytes>`;
    the result is cut to the attribute length limit. `total_size` is the full body size
    when `body` is only its recorded beginning.
    """
    if body is None or len(body) == 0:
        return None
    media_type, charset = _media_type(content_type)
    if isinstance(body, str):
        text = body
    else:
        raw = body if type(body) is bytes else bytes(body)
        size = total_size if total_size is not None else len(raw)
        decoded = None if _is_binary_type(media_type) else _decode(raw, charset)
        if decoded is None:
            return f"<binary body: {size} bytes>"
        text = decoded
    masked = config.masking.apply(site, text, media_type)
    return truncate(masked, config.attribute_length_limit)


class BoundedBody:
    """Records the first `limit` bytes of a body seen chunk by chunk, and its total size.

    Used by stream wrappers: they pass each chunk through to the application
    untouched and give a copy of its beginning to the recorder.
    """

    __slots__ = ("_chunks", "_kept", "limit", "total")

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.total = 0
        self._kept = 0
        self._chunks: List[bytes] = []

    def add(self, chunk: Union[bytes, bytearray, memoryview, str, None]) -> None:
        if not chunk:
            return
        data = chunk.encode("utf-8") if isinstance(chunk, str) else chunk
        if isinstance(data, memoryview):
            data = data.cast("B")
        self.total += len(data)
        room = self.limit - self._kept
        if room > 0:
            # copy only what is kept: the rest of a large chunk is just counted
            piece = bytes(data[:room])
            self._chunks.append(piece)
            self._kept += len(piece)

    @property
    def data(self) -> bytes:
        return b"".join(self._chunks)

    @property
    def truncated(self) -> bool:
        return self.total > self._kept

    def attribute(
        self,
        config: Config,
        content_type: Optional[str] = None,
        site: Site = Site.HTTP_REQUEST_BODIES,
    ) -> Optional[str]:
        """What was recorded, as `body_attribute` renders it."""
        return body_attribute(self.data, config, content_type, total_size=self.total, site=site)
