"""Secret masking: the one function every capture site calls, `Masking.apply`.

What is masked (values become `****`):

- the value of every key a rule calls secret, at any depth: JSON keys (also in JSON
  held by a string, e.g. a message body or an SQL literal, after other text in a string,
  e.g. `login failed for {"password": ...}`, and pair by pair in JSON text that does not
  parse, wherever it is), form and query fields, multipart fields,
  header names, environment variables, `name = 'literal'` pairs in SQL and the columns
  of an SQL INSERT's column list (their values in every row, `sql_values`). A key is
  secret when one of the site's regexes matches at its start, case-insensitively
  (Python `re.match`, as the upstream distro). The default rules are
  `DEFAULT_REGEXES`; `LUMIGO_SECRET_MASKING_REGEX` (a JSON list, or `all`) replaces
  them, and `LUMIGO_SECRET_MASKING_REGEX_<SITE>` replaces that for one site;
- whatever the rules say: the credential headers `ALWAYS_MASKED_HEADERS`, the userinfo
  of every URL (`scheme://user:pw@host` -> `scheme://****@host`, also in a `Host` header
  and the host attributes) and the value of `LUMIGO_TRACER_TOKEN` wherever it appears.

It fails closed. User regexes run on the `regex` engine with a time bound per attribute
(`TIME_BOUND_SECONDS`, the GIL released while they run): a pattern that takes longer
costs that attribute, which becomes `****` as a whole, never the request. Any other
error while masking does the same. An invalid setting masks every key at its sites.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import time
from collections import abc
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from lumigo_opentelemetry.sql_values import NO_INSERT_INITIALS, mask_rows

logger = logging.getLogger("lumigo-opentelemetry")

MASKED = "****"
#: the upstream defaults (kept as they are) ...
SEED_REGEXES: Tuple[str, ...] = (
    ".*pass.*",
    ".*key.*",
    ".*secret.*",
    ".*credential.*",
    ".*passphrase.*",
)
#: ... plus what real secrets are called
DEFAULT_REGEXES: Tuple[str, ...] = (
    *SEED_REGEXES,
    ".*token.*",
    ".*auth.*",
    ".*jwt.*",
    ".*session.*",
    ".*cookie.*",
    ".*signature.*",
)
#: the special setting value: every key of the site is secret (as upstream)
MASK_ALL = "all"
#: header names whose values are masked whatever the rules say
ALWAYS_MASKED_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-amz-security-token",
        "x-auth-token",
    }
)
#: seconds the user's regexes may take over one attribute before it is masked as a whole
TIME_BOUND_SECONDS = 0.02
#: bound on the cached answers per rule set, and on the length of a key worth caching
CACHE_SIZE = 2048
CACHED_KEY_LENGTH = 256
GENERAL_SETTING = "LUMIGO_SECRET_MASKING_REGEX"


class Site(enum.Enum):
    """Where a value was captured; each HTTP/environment site has its own setting."""

    HTTP_REQUEST_BODIES = "HTTP_REQUEST_BODIES"
    HTTP_REQUEST_HEADERS = "HTTP_REQUEST_HEADERS"
    HTTP_RESPONSE_BODIES = "HTTP_RESPONSE_BODIES"
    HTTP_RESPONSE_HEADERS = "HTTP_RESPONSE_HEADERS"
    HTTP_QUERY_PARAMS = "HTTP_QUERY_PARAMS"
    ENVIRONMENT = "ENVIRONMENT"
    #: database statements and documents: the general setting only
    DB = "DB"

    @property
    def setting(self) -> Optional[str]:
        return None if self is Site.DB else f"{GENERAL_SETTING}_{self.value}"


_HEADER_SITES = frozenset({Site.HTTP_REQUEST_HEADERS, Site.HTTP_RESPONSE_HEADERS})
_BODY_SITES = frozenset({Site.HTTP_REQUEST_BODIES, Site.HTTP_RESPONSE_BODIES})
_NO_NAMES: frozenset[str] = frozenset()
_UNKNOWN: Any = object()
_SCALARS = frozenset({int, float, bool})


class _OutOfTime(Exception):
    """A user regex used up the attribute's time bound."""


class _Budget:
    """The time left for one attribute; the clock starts at the first uncached user regex."""

    __slots__ = ("bound", "deadline")

    def __init__(self, bound: float) -> None:
        self.bound = bound
        self.deadline: Optional[float] = None

    def remaining(self) -> float:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.bound
            return self.bound
        return self.deadline - time.monotonic()


# `.*word.*` (the defaults' shape) is a case-insensitive substring test: no regex needed
_CONTAINS = re.compile(r"\.\*([A-Za-z0-9_-]+)\.\*")


class _TimedPattern:
    """A user regex on the `regex` engine: bounded in time, the GIL released meanwhile."""

    __slots__ = ("_compiled",)

    def __init__(self, pattern: str) -> None:
        import regex

        self._compiled = regex.compile(pattern, regex.IGNORECASE | regex.VERSION0)

    def matches(self, key: str, budget: _Budget) -> bool:
        left = budget.remaining()
        if left <= 0:
            raise _OutOfTime
        try:
            return self._compiled.match(key, timeout=left, concurrent=True) is not None
        except TimeoutError:
            raise _OutOfTime from None


class _StdlibPattern:
    """Fallback when `regex` cannot be imported: the stdlib cannot be interrupted, so a
    pattern with nested repetition (the catastrophic kind) is not run: it matches
    every key (fail closed)."""

    __slots__ = ("_compiled", "_unsafe")

    def __init__(self, pattern: str) -> None:
        self._compiled = re.compile(pattern, re.IGNORECASE)
        self._unsafe = _has_nested_repeat(pattern)
        if self._unsafe:
            logger.warning(
                "masking regex %r may take exponential time and the `regex` package is"
                " missing: every key it is applied to is masked",
                pattern,
            )

    def matches(self, key: str, budget: _Budget) -> bool:
        return self._unsafe or self._compiled.match(key) is not None


def _has_nested_repeat(pattern: str) -> bool:
    """Whether `pattern` has a repeat inside a repeat, or an alternation under one, in
    any group, lookaround or conditional group (or cannot be parsed: assumed so)."""
    try:
        import re._parser as sre_parse
    except ImportError:  # Python < 3.11
        import sre_parse

    repeats = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}

    def walk(items: Any, inside_repeat: bool) -> bool:
        for op, arg in items:
            name = str(op)
            if name in repeats:
                nested = inside_repeat or walk(arg[2], True)
            elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
                nested = walk(arg if name == "ATOMIC_GROUP" else arg[-1], inside_repeat)
            elif name == "BRANCH":
                nested = inside_repeat or any(walk(b, inside_repeat) for b in arg[1])
            elif name in ("ASSERT", "ASSERT_NOT"):  # lookahead, lookbehind: (dir, pattern)
                nested = walk(arg[1], inside_repeat)
            elif name == "GROUPREF_EXISTS":  # (?(group)yes|no): (group, yes, no or None)
                nested = any(walk(arm, inside_repeat) for arm in arg[1:] if arm is not None)
            else:
                nested = False
            if nested:
                return True
        return False

    try:
        return walk(sre_parse.parse(pattern), False)
    except Exception:
        return True


def _compile(pattern: str) -> Any:
    try:
        return _TimedPattern(pattern)
    except ImportError:
        return _StdlibPattern(pattern)


class Rules:
    """The key rules of one site: every key (`mask_all`), or regexes matched at the
    start of the key, case-insensitively. Answers are cached (bounded)."""

    def __init__(
        self,
        regexes: Sequence[str],
        mask_all: bool = False,
        time_bound: float = TIME_BOUND_SECONDS,
    ) -> None:
        self.regexes = tuple(regexes)
        self.mask_all = mask_all
        self.time_bound = time_bound
        words: List[str] = []
        patterns: List[Any] = []
        for regex_text in self.regexes:
            contains = _CONTAINS.fullmatch(regex_text)
            if contains:
                words.append(contains.group(1).lower())
            else:
                patterns.append(_compile(regex_text))
        self._words = tuple(words)
        self._patterns = tuple(patterns)
        # key -> answer; None: the user's regexes ran out of time on this key
        self._answers: Dict[str, Optional[bool]] = {}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Rules)
            and other.regexes == self.regexes
            and other.mask_all == self.mask_all
        )

    def __hash__(self) -> int:
        return hash((self.regexes, self.mask_all))

    def __repr__(self) -> str:
        return f"Rules({MASK_ALL!r})" if self.mask_all else f"Rules({list(self.regexes)!r})"

    @property
    def cached_answers(self) -> int:
        """How many answers are cached (at most `CACHE_SIZE`)."""
        return len(self._answers)

    def is_secret(self, key: str, budget: Optional[_Budget] = None) -> bool:
        """Whether `key`'s value is masked; raises `_OutOfTime` past the budget."""
        if self.mask_all:
            return True
        answer = self._answers.get(key, _UNKNOWN)
        if answer is _UNKNOWN:
            answer = self._decide(key, budget)
        if answer is None:
            raise _OutOfTime
        return bool(answer)

    def _decide(self, key: str, budget: Optional[_Budget]) -> Optional[bool]:
        lowered = key.lower()
        answer: Optional[bool] = any(word in lowered for word in self._words)
        if not answer and self._patterns:
            budget = budget or _Budget(self.time_bound)
            try:
                answer = any(p.matches(key, budget) for p in self._patterns)
            except _OutOfTime:
                answer = None
        if len(key) <= CACHED_KEY_LENGTH:
            answers = self._answers
            if len(answers) >= CACHE_SIZE:
                answers.clear()
            answers[key] = answer
        return answer


def _parse_rules(raw: str, name: str, time_bound: float) -> Tuple[Rules, Optional[str]]:
    """A non-empty setting value as rules (or mask-all and a warning when invalid)."""
    value = raw.strip()
    if value.lower() == MASK_ALL:
        return Rules((), mask_all=True, time_bound=time_bound), None
    try:
        regexes = json.loads(value)
        if not isinstance(regexes, list) or not all(isinstance(r, str) for r in regexes):
            raise ValueError("expected a JSON list of strings or `all`")
        return Rules(regexes, time_bound=time_bound), None
    except Exception as exc:
        warning = f"{name} is invalid ({exc}); every key it applies to is masked"
        return Rules((), mask_all=True, time_bound=time_bound), warning


# userinfo of a URL: from `://` to the last `@` before the host's end
_USERINFO = re.compile(r"://[^/?#\s\"'<>\\]+@")
# `"key": value` pairs in text that is not (complete) JSON; the value may be cut short
# (a value is a string, maybe cut; the opening bracket of an object or list; or a scalar)
_PAIR = r'"((?:[^"\\]|\\.)*)"(\s*:\s*)("(?:[^"\\]|\\.)*"?|[{\[]|[^\s,{}\[\]"]+)'
_JSON_PAIR = re.compile(
    _PAIR + r'|("(?:[^"\\]|\\.)*"?)'  # or a string that is no key (in a list), maybe cut
)
# the same pairs in other text (a log line, an exception message): a string that is no key
# is read only when it holds escaped JSON (`"{\"key\"`, maybe indented), so a stray
# quote in the text (`5" tall`) cannot pair with the quote that opens a key and hide it
_EMBEDDED_PAIR = re.compile(
    _PAIR + r'|("(?=(?:\s|\\[nrt])*[{\[](?:[\s{\[]|\\[nrt])*\\")(?:[^"\\]|\\.)*"?)'
)
# what matters when looking for the end of an object or list: brackets and strings
_JSON_STRUCTURE = re.compile(r'[{\[\]}]|"(?:[^"\\]|\\.)*"?')
_JSON_START = re.compile(r"\s*[{\[]")
# every string of JSON text without escapes, in order, and whether it is a key
_JSON_STRINGS = re.compile(r'"([^"]*)"(\s*:)?')
# a string that starts like JSON (in JSON without escapes only an opening quote can)
_NESTED_JSON_STRING = re.compile(r'"\s*[{\[]')
# what a JSON string cut short may end in: half an escape (`\`, `\u12`)
_HALF_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\(?:u[0-9a-fA-F]{0,3})?$")
# `name = 'literal'` (or a number) in SQL
_SQL_PAIR = re.compile(
    r"([A-Za-z_][\w$]*)(\s*=\s*)('(?:[^'\\]|\\.|'')*'?|\"(?:[^\"\\]|\\.)*\"?|-?\d[\w.]*)"
)
# a string literal in SQL (its closing quote may be cut off)
_SQL_LITERAL = re.compile(r"'((?:[^'\\]|\\.|'')*)('?)")
_PART_NAME = re.compile(r'^content-disposition:.*?\bname="([^"]*)"', re.IGNORECASE)
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# a string `_JSON_ENCODER` writes as it is, in quotes (it escapes only these characters)
_PLAIN_JSON_STRING = re.compile(r'[^\x00-\x1f"\\]*')
_TOKEN_TAIL_MIN = 6
#: texts `Masking.apply` remembers its answer for: how many, and up to what length
TEXT_MEMO_SIZE = 256
TEXT_MEMO_LENGTH = 512
_warned: set[str] = set()


def compact_json(value: Any) -> str:
    """Compact JSON text (the default encoding of masked structures)."""
    return _JSON_ENCODER.encode(value)


def _looks_json(text: str) -> bool:
    """Whether a site's text is taken for JSON: an object or list, or a JSON string
    holding one (JSON encoded twice)."""
    return _JSON_START.match(text) is not None or _NESTED_JSON_STRING.match(text) is not None


def _compact_or_none(text: str) -> Optional[str]:
    try:
        return compact_json(json.loads(text))
    except (ValueError, RecursionError):
        return None


class Masking:
    """Every masking rule of the process: the general rules, per-site overrides, the
    tracer token. Parsed once by `Config`; `apply` is the only way values are masked."""

    def __init__(
        self,
        general: Optional[Rules] = None,
        sites: Optional[Mapping[Site, Rules]] = None,
        token: Optional[str] = None,
    ) -> None:
        self.general = general or Rules(DEFAULT_REGEXES)
        self.sites: Dict[Site, Rules] = dict(sites or {})
        self.token = token or None
        # beginnings of the token a recording limit may leave at the end of a text
        self._token_heads = tuple(
            (token or "")[:size] for size in range(len(token or "") - 1, _TOKEN_TAIL_MIN - 1, -1)
        )
        # (id(site), media type, text) -> the text `apply` gave for it, when nothing in
        # it was masked (so no value the rules call secret is kept): bodies and queries
        # repeat (health checks, fixed answers, parameterized SQL)
        self._texts: Dict[Tuple[int, str, str], str] = {}
        # (id(site), header name) -> its JSON member's beginning (`"name":`) when a value
        # the rules leave alone is kept as it is under that name (`header_member`), or None
        self._plain_names: Dict[Tuple[int, str], Optional[str]] = {}

    @property
    def remembered_texts(self) -> int:
        """How many texts `apply` remembers its answer for (at most `TEXT_MEMO_SIZE`)."""
        return len(self._texts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Masking) and (self.general, self.sites, self.token) == (
            other.general,
            other.sites,
            other.token,
        )

    def __hash__(self) -> int:
        return hash((self.general, tuple(sorted(self.sites.items(), key=lambda i: i[0].value))))

    def __repr__(self) -> str:
        return f"Masking(general={self.general!r}, sites={self.sites!r})"

    @classmethod
    def default(cls) -> Masking:
        return cls()

    @classmethod
    def from_environ(
        cls, env: Mapping[str, str], time_bound: float = TIME_BOUND_SECONDS
    ) -> Tuple[Masking, List[str]]:
        """The masking settings of `env`, and one warning per invalid setting.

        Unset or empty (also `[]` for a per-site setting) means: the general rules.
        """
        warnings: List[str] = []
        raw = env.get(GENERAL_SETTING)
        general = Rules(DEFAULT_REGEXES, time_bound=time_bound)
        if raw is not None and raw.strip():
            general, warning = _parse_rules(raw, GENERAL_SETTING, time_bound)
            if warning:
                warnings.append(warning)
        sites: Dict[Site, Rules] = {}
        for site in Site:
            name = site.setting
            raw = env.get(name) if name else None
            if raw is None or not raw.strip() or raw.strip() == "[]":
                continue
            sites[site], warning = _parse_rules(raw, name or "", time_bound)
            if warning:
                warnings.append(warning)
        token = (env.get("LUMIGO_TRACER_TOKEN") or "").strip() or None
        return cls(general, sites, token), warnings

    def rules(self, site: Site) -> Rules:
        return self.sites.get(site, self.general)

    def is_secret(self, key: str, site: Site = Site.DB) -> bool:
        """Whether `key`'s value is masked at `site` (True when the rules run out of time)."""
        try:
            return self.rules(site).is_secret(key)
        except _OutOfTime:
            return True

    # -- the one masking function -------------------------------------------------------

    def apply(
        self,
        site: Site,
        value: Any,
        media_type: str = "",
        encode: Callable[[Any], str] = compact_json,
    ) -> str:
        """`value` masked for `site`, as attribute text; never raises.

        A `str` is masked as that site's text: a URL (`HTTP_QUERY_PARAMS`), a body
        (JSON, form or multipart by `media_type` or shape), SQL (`DB`). A mapping or list
        (headers, environment, documents) is masked key by key at any depth and given to
        `encode`. When the user's regexes run out of time, or anything fails, the result
        is `****` as a whole.
        """
        if (
            site is Site.HTTP_QUERY_PARAMS
            and type(value) is str
            and "?" not in value
            and "@" not in value
            and not (self.token and self.token in value)
        ):
            return value  # a URL without query or userinfo: nothing to mask
        if type(value) is str and len(value) <= TEXT_MEMO_LENGTH:
            key = (id(site), media_type, value)
            known = self._texts.get(key)
            if known is not None:
                return known
            if site is Site.HTTP_QUERY_PARAMS and self._plain_url(value):
                masked = value
            else:
                masked = self._apply(site, value, media_type, encode)
            if MASKED not in masked:
                texts = self._texts
                if len(texts) >= TEXT_MEMO_SIZE:
                    texts.clear()
                texts[key] = masked
            return masked
        return self._apply(site, value, media_type, encode)

    def _apply(self, site: Site, value: Any, media_type: str, encode: Callable[[Any], str]) -> str:
        rules = self.rules(site)
        budget = _Budget(rules.time_bound)
        try:
            if isinstance(value, str):
                return self._text(site, value, rules, budget, media_type)
            header_site = site is Site.HTTP_REQUEST_HEADERS or site is Site.HTTP_RESPONSE_HEADERS
            names = ALWAYS_MASKED_HEADERS if header_site else _NO_NAMES
            return encode(self._structure(value, rules, budget, names))
        except _OutOfTime:
            _warn_once(
                f"time:{site.value}",
                "a masking regex ran out of its time bound; the attribute was masked as a"
                " whole (%s)",
                site.setting or GENERAL_SETTING,
            )
            return MASKED
        except Exception:
            logger.debug("masking failed; the attribute was masked as a whole", exc_info=True)
            return MASKED

    def _plain_url(self, url: str) -> bool:
        """Whether `_apply` gives a URL back as it is, told by a few checks: rules
        without user regexes (their time bound spans the URL), no `@` (userinfo), no
        token nor its beginning at the end, and no query field whose name is secret
        (names with escapes are left to `_apply`). False: `_apply` must say."""
        rules = self.rules(Site.HTTP_QUERY_PARAMS)
        if rules.mask_all or rules._patterns or "@" in url:
            return False
        token = self.token
        if token and (token in url or url.endswith(self._token_heads)):
            return False
        query = url.partition("?")[2].partition("#")[0]
        is_secret = rules.is_secret
        for field in query.split("&"):
            name, sep, _value = field.partition("=")
            if sep and ("%" in name or "+" in name or is_secret(name)):
                return False
        return True

    def header_member(self, site: Site, name: str, value: str) -> Optional[str]:
        """`apply(site, {name: value})` without its braces, when a few checks show that
        masking keeps the value as it is (no rule or always-masked set names the header,
        no `host` authority, no JSON, quote, escape or control character, no URL userinfo,
        no token: what `_structure` and `_leaf` look for); None when they cannot tell
        (call `apply`). Header sites only, for rules without user regexes (whose time
        bound spans the whole object)."""
        plain = self._plain_names
        head = plain.get((id(site), name), _UNKNOWN)
        if head is _UNKNOWN:
            head = self._plain_name(site, name)
        if head is None:
            return None
        first = value[:1]
        if (
            not first
            or first in "{["
            or first.isspace()
            or not (  # (printable ASCII, no quote or backslash: what the regex passes)
                (value.isascii() and value.isprintable() and '"' not in value and "\\" not in value)
                or _PLAIN_JSON_STRING.fullmatch(value) is not None
            )
            or ("://" in value and "@" in value)
            or (self.token and self.token in value)
        ):
            return None
        return f'{head}"{value}"'

    def _plain_name(self, site: Site, name: str) -> Optional[str]:
        """`header_member`'s verdict on a header name (remembered, bounded)."""
        head: Optional[str] = None
        if (
            (site is Site.HTTP_REQUEST_HEADERS or site is Site.HTTP_RESPONSE_HEADERS)
            and type(name) is str
            and len(name) <= CACHED_KEY_LENGTH
        ):
            rules = self.rules(site)
            lowered = name.lower()
            if (
                not rules.mask_all
                and not rules._patterns
                and lowered not in ALWAYS_MASKED_HEADERS
                and lowered != "host"
                and not rules.is_secret(name)
            ):
                head = compact_json(name) + ":"
        plain = self._plain_names
        if len(plain) >= CACHE_SIZE:
            plain.clear()
        plain[(id(site), name)] = head
        return head

    # -- internals ------------------------------------------------------------------------

    def _scrub(self, text: str, cut: bool = False) -> str:
        """Mask what no rule needs to name: URL userinfo and the tracer token (also its
        beginning at the end of a text that a recording limit may have `cut`)."""
        if "://" in text and "@" in text:
            text = _USERINFO.sub("://" + MASKED + "@", text)
        token = self.token
        if token:
            if token in text:
                text = text.replace(token, MASKED)
            heads = self._token_heads
            if cut and text.endswith(heads):
                size = next(len(head) for head in heads if text.endswith(head))
                text = text[:-size] + MASKED
        return text

    def _structure(self, value: Any, rules: Rules, budget: _Budget, names: frozenset[str]) -> Any:
        # exact-type checks first and leaves handled in the loop: most values are str,
        # ABC checks and a call per leaf are what masking a body costs
        kind = type(value)
        if kind is str:
            return self._leaf(value, rules, budget)
        if kind is dict or isinstance(value, (dict, abc.Mapping)):
            out = {}
            is_secret = rules.is_secret
            for key, item in value.items():
                if type(key) is str:
                    if names:
                        lowered = key.lower()
                        if lowered in names or is_secret(key, budget):
                            out[key] = MASKED
                            continue
                        if lowered == "host" and type(item) is str:
                            item = mask_authority(item)
                    elif is_secret(key, budget):
                        out[key] = MASKED
                        continue
                item_kind = type(item)
                if item_kind is str:
                    out[key] = self._leaf(item, rules, budget)
                elif item is None or item_kind in _SCALARS:
                    out[key] = item
                else:
                    out[key] = self._structure(item, rules, budget, names)
            return out
        if kind is list or kind is tuple or isinstance(value, (list, tuple)):
            return [self._structure(item, rules, budget, names) for item in value]
        if isinstance(value, str):
            return self._leaf(value, rules, budget)
        return value

    def _leaf(self, value: str, rules: Rules, budget: _Budget) -> str:
        first = value[:1]
        if first and (first in "{[" or ((first == '"' or first.isspace()) and _looks_json(value))):
            # JSON inside a string (a message body, a parameter): masked as JSON, its
            # pairs one by one when it does not parse (cut short), as at the top
            return self._scrub(self._json_text(value, rules, budget))
        if '"' in value and (":" in value or "\\" in value):
            # JSON after other text (`login failed for {"password": "x"}`): its pairs (a
            # pair needs a quote and a colon, JSON held by a JSON string an escaped quote)
            value = self._json_pairs(value, rules, budget, _EMBEDDED_PAIR)
        token = self.token
        if ("://" in value and "@" in value) or (token and token in value):
            return self._scrub(value)
        return value

    def _text(self, site: Site, text: str, rules: Rules, budget: _Budget, media_type: str) -> str:
        if site is Site.HTTP_QUERY_PARAMS:
            text = _mask_url_query(mask_authority(text), rules, budget)
        elif site is Site.HTTP_REQUEST_BODIES or site is Site.HTTP_RESPONSE_BODIES:
            if "json" in media_type or _looks_json(text):
                text = self._json_text(text, rules, budget)
            elif media_type == "application/x-www-form-urlencoded":
                text = _mask_form(text, rules, budget)
            elif media_type == "multipart/form-data":
                text = _mask_multipart(text, rules, budget)
        elif site is Site.DB:
            if _looks_json(text):
                text = self._json_text(text, rules, budget)
            else:
                # the rows of an INSERT (VALUES or SELECT): by the column of each value; no
                # SELECT, UPDATE, DELETE, ... holds one (but after a `;`)
                if (text[:1] not in NO_INSERT_INITIALS or ";" in text) and (
                    rules.mask_all or rules.regexes
                ):
                    lowered = text.lower()
                    if "insert" in lowered or "replace" in lowered:
                        text = mask_rows(text, lowered, lambda key: rules.is_secret(key, budget))
                text = _mask_pairs(_SQL_PAIR, text, rules, budget, "'" + MASKED + "'")
                if "'" in text and '"' in text:
                    text = _SQL_LITERAL.sub(lambda m: self._sql_literal(m, rules, budget), text)
        return self._scrub(text, cut=True)

    def _json_text(self, text: str, rules: Rules, budget: _Budget) -> str:
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return self._json_pairs(text, rules, budget)
        if type(parsed) is str:
            # JSON text encoded twice: the string may hold JSON text in turn
            inner = self._leaf(parsed, rules, budget)
            return text if inner == parsed else compact_json(inner)
        if not isinstance(parsed, (dict, list)):
            return text
        if self._unchanged_json(text, rules, budget):
            return compact_json(parsed)
        return compact_json(self._structure(parsed, rules, budget, _NO_NAMES))

    def _unchanged_json(self, text: str, rules: Rules, budget: _Budget) -> bool:
        """Whether `_structure` would give back the JSON parsed from `text` as it is,
        decided on the text (a scan in C instead of a call per value): no escapes (its
        strings are exactly what was parsed), no string that `_leaf` changes (nested
        JSON, URL userinfo, the token), no secret key."""
        token = self.token
        if (
            "\\" in text
            or "@" in text
            or (token and token in text)
            or _NESTED_JSON_STRING.search(text)
        ):
            return False
        is_secret = rules.is_secret
        for key, colon in _JSON_STRINGS.findall(text):
            if colon and is_secret(key, budget):
                return False
        return True

    def _json_pairs(
        self, text: str, rules: Rules, budget: _Budget, pairs: re.Pattern[str] = _JSON_PAIR
    ) -> str:
        """JSON text that does not parse (cut short), masked pair by pair: a secret key's
        value becomes `"****"` (a whole object or list, up to where the text ends), other
        objects and lists are scanned inside, other strings masked as `_leaf` masks.
        With `_EMBEDDED_PAIR`: the pairs in text that is not JSON, the rest kept."""
        out: List[str] = []  # the text up to `copied`, masked
        copied = at = 0
        search = pairs.search
        is_secret = rules.is_secret
        while True:
            match = search(text, at)
            if match is None:
                break
            at = match.end()
            key, _sep, string, lone = match.groups()
            if lone is not None:  # a string in a list
                string, start = lone, match.start()
            else:
                start = match.start(3)
            if lone is None and is_secret(key, budget):
                if string in ("{", "["):
                    at = _json_value_end(text, start)
                masked = '"' + MASKED + '"'
            elif string[0] == '"' and ("{" in string or "[" in string or "\\" in string):
                masked = self._json_string(string, rules, budget)
                if masked is string:
                    continue
            else:  # a scalar, or into an object or list: its pairs are matched in turn
                continue
            out.append(text[copied:start])
            out.append(masked)
            copied = at
        if not out:
            return text
        out.append(text[copied:])
        return "".join(out)

    def _sql_literal(self, match: re.Match[str], rules: Rules, budget: _Budget) -> str:
        """An SQL string literal holding JSON text (maybe after other text), masked as a
        string holding it is."""
        content = match.group(1)
        if '"' not in content:  # JSON without a string holds no key
            return match.group(0)
        masked = self._leaf(content, rules, budget)
        if masked == content or masked == _compact_or_none(content):
            return match.group(0)  # nothing masked: the statement is kept as written
        return f"'{masked}{match.group(2)}"

    def _json_string(self, raw: str, rules: Rules, budget: _Budget) -> str:
        """A string value of JSON text that does not parse (`"..."`, its end maybe cut
        off), masked as `_leaf` masks the string it holds: JSON text held by a string in
        a cut body has its pairs masked too (`_json_pairs` calls it only for a string with
        a bracket or an escape: one without holds no JSON)."""
        try:
            decoded = json.loads(raw)
            closed = True
        except ValueError:
            # cut short: drop a half escape at the end and close the string
            body = _HALF_ESCAPE.sub("", raw)
            try:
                decoded = json.loads(body + '"')
            except ValueError:
                return '"' + MASKED + '"'  # cannot tell what it holds: fail closed
            closed = False
        masked = self._leaf(decoded, rules, budget)
        if masked == decoded:
            return raw
        encoded = _JSON_ENCODER.encode(masked)
        return encoded if closed else encoded[:-1]


def _json_value_end(text: str, start: int) -> int:
    """Where the object or list opening at `start` ends (the text's end when cut short)."""
    depth = 0
    for token in _JSON_STRUCTURE.finditer(text, start):
        bracket = token.group(0)
        if bracket in ("{", "["):
            depth += 1
        elif bracket in ("}", "]"):
            depth -= 1
            if depth == 0:
                return token.end()
    return len(text)


def _mask_pairs(
    pattern: re.Pattern[str], text: str, rules: Rules, budget: _Budget, masked: str
) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if rules.is_secret(key, budget):
            return match.group(0)[: match.start(3) - match.start(0)] + masked
        return match.group(0)

    return pattern.sub(replace, text)


def mask_authority(text: str) -> str:
    """`user:pw@host:port` (a Host header, `http.host`) -> `****@host:port`; a URL with a
    scheme is left to the userinfo scrub, paths and query strings are left alone."""
    if "@" not in text or "://" in text or text.startswith(("/", "?")):
        return text
    authority, sep, rest = text.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or "?" in userinfo:
        return text
    return f"{MASKED}@{host}{sep}{rest}"


def _mask_form(text: str, rules: Rules, budget: _Budget) -> str:
    from urllib.parse import unquote_plus  # not at start-up: only when a query is masked

    fields = []
    for part in text.split("&"):
        key, sep, _value = part.partition("=")
        secret = sep and rules.is_secret(unquote_plus(key), budget)
        fields.append(f"{key}={MASKED}" if secret else part)
    return "&".join(fields)


def _mask_url_query(url: str, rules: Rules, budget: _Budget) -> str:
    base, sep, rest = url.partition("?")
    if not sep:
        return url
    query, hash_sep, fragment = rest.partition("#")
    return f"{base}?{_mask_form(query, rules, budget)}{hash_sep}{fragment}"


def _mask_multipart(text: str, rules: Rules, budget: _Budget) -> str:
    """Mask the values of multipart/form-data fields whose name is secret."""
    out: List[str] = []
    state = "body"  # body -> headers (after a boundary) -> secret value / body
    secret = False
    for line in text.splitlines(keepends=True):
        if line.startswith("--"):
            state, secret = "headers", False
            out.append(line)
        elif state == "headers":
            match = _PART_NAME.search(line)
            if match and rules.is_secret(match.group(1), budget):
                secret = True
            if not line.strip():
                state = "value"
                if secret:
                    out.append(line)
                    out.append(MASKED + "\r\n")
                    continue
            out.append(line)
        elif not (state == "value" and secret):
            out.append(line)
    return "".join(out)


def _warn_once(key: str, message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)
