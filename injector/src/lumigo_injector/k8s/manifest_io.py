"""Manifest text in and out: YAML or JSON streams, read the way the API server sees them.

Reading is bounded (see `spec.limits`): nesting beyond MAX_DEPTH, YAML aliases that would
expand to more than MAX_ALIAS_NODES nodes ("billion laughs") and strings that are not text
are a ManifestError, found before anything is built, in time and memory linear in the input.
Timestamps stay strings, as in Kubernetes.

Writing keeps every value's type for a YAML 1.1 reader such as kubectl's (go-yaml): a string
that such a reader would take for a boolean, null, number or timestamp (`y`, `N`, `off`, `~`,
`1e3`, `0o17`, `0x1F`, `1_000`, `12:30`, `2001-1-2`, ...) is written quoted.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import yaml

from lumigo_injector.spec.limits import MAX_DEPTH, InputError, check_plain, too_deep_message

Format = Literal["yaml", "json"]

#: Nodes that YAML aliases may add to a stream when expanded (each alias counts the whole
#: subtree it stands for). Real manifests use a handful of aliases; kubectl bounds them too.
MAX_ALIAS_NODES = 100_000


class ManifestError(ValueError):
    """Input that cannot be processed; the message is meant for the user as is."""


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _KubernetesLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe YAML loading with timestamps kept as strings, as Kubernetes does."""


_KubernetesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def detect_format(text: str) -> Format:
    """JSON when the first meaningful character opens a JSON object or array."""
    stripped = text.lstrip(" \t\r\n\ufeff")
    return "json" if stripped[:1] in ("{", "[") else "yaml"


# --------------------------------------------------------------------------------- reading


def _load_json(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    documents: list[Any] = []
    position = 0
    text = text.lstrip("\ufeff")
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position >= len(text):
            return documents
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ManifestError(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except RecursionError:
            raise ManifestError(f"invalid JSON: {too_deep_message()}") from None
        documents.append(document)


_COLLECTION_START = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_COLLECTION_END = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def check_yaml_bounds(text: str) -> None:
    """Raise ManifestError before composing YAML that nests or expands beyond the bounds.

    Walks the parser's events once, keeping per anchor the size of the subtree it names, so
    the expanded size of every alias is known without expanding anything.
    """
    sizes: dict[str, int] = {}
    open_nodes: list[list[Any]] = []  # [expanded node count so far, anchor]
    alias_nodes = 0
    for event in yaml.parse(text, Loader=_KubernetesLoader):
        if isinstance(event, yaml.DocumentStartEvent):
            sizes.clear()
        elif isinstance(event, _COLLECTION_START):
            if len(open_nodes) >= MAX_DEPTH:
                raise ManifestError(f"invalid YAML: {too_deep_message()}")
            open_nodes.append([1, event.anchor])
        elif isinstance(event, _COLLECTION_END):
            count, anchor = open_nodes.pop()
            if anchor:
                sizes[anchor] = count
            if open_nodes:
                open_nodes[-1][0] += count
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                sizes[event.anchor] = 1
            if open_nodes:
                open_nodes[-1][0] += 1
        elif isinstance(event, yaml.AliasEvent):
            size = sizes.get(event.anchor or "", 1)
            alias_nodes += size
            if alias_nodes > MAX_ALIAS_NODES:
                mark = event.start_mark
                where = f"at line {mark.line + 1}, " if mark else ""
                raise ManifestError(
                    f"invalid YAML: aliases expand to more than {MAX_ALIAS_NODES:,} nodes "
                    f"({where}alias *{event.anchor})"
                )
            if open_nodes:
                open_nodes[-1][0] += size


def _load_yaml(text: str) -> list[Any]:
    try:
        check_yaml_bounds(text)
        return list(yaml.load_all(text, Loader=_KubernetesLoader))
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML{_yaml_location(exc)}") from None


def _yaml_location(exc: yaml.YAMLError) -> str:
    """` at line L, column C: problem (context started at line ...)` from a YAML error."""
    mark = getattr(exc, "problem_mark", None)
    text = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    text += f": {getattr(exc, 'problem', None) or exc}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark:
        line, column = context_mark.line + 1, context_mark.column + 1
        text += f" ({context} started at line {line}, column {column})"
    return text


def _as_json(document: dict[str, Any], number: int) -> dict[str, Any]:
    """The document as plain JSON data, the way the API server sees it.

    YAML anchors become independent copies, and non-string keys become strings (as kubectl's
    YAML-to-JSON conversion does). Values JSON cannot carry (binary, NaN) are an error.
    """
    try:
        plain: dict[str, Any] = json.loads(json.dumps(document, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"document {number} has a value JSON cannot represent: {exc}") from None
    return plain


def load_documents(text: str) -> tuple[list[dict[str, Any]], Format]:
    """Parse YAML or JSON text into its documents (empty YAML documents are dropped).

    Raises ManifestError for a syntax error, input beyond the bounds, or a document that is
    not an object.
    """
    fmt = detect_format(text)
    raw = _load_json(text) if fmt == "json" else _load_yaml(text)
    documents: list[dict[str, Any]] = []
    for number, document in enumerate(raw, start=1):
        if document is None:
            continue
        try:
            check_plain(document)
        except InputError as exc:
            raise ManifestError(f"document {number}: {exc}") from None
        if not isinstance(document, dict) or not all(isinstance(k, str) for k in document):
            raise ManifestError(
                f"document {number} is not a Kubernetes object "
                f"(expected a mapping with apiVersion and kind, got {type(document).__name__})"
            )
        documents.append(_as_json(document, number))
    return documents, fmt


# --------------------------------------------------------------------------------- writing

# What a YAML 1.1 reader (go-yaml v2, as in kubectl and helm) resolves to another type than
# string. PyYAML's own resolver already quotes most; these are the ones it misses, and more.
_WORDS = frozenset(
    [
        *("y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO"),
        *("true", "True", "TRUE", "false", "False", "FALSE"),
        *("on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL"),
    ]
)
_NUMBER = re.compile(  # matched after removing every "_", as go-yaml does
    r"[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+"
    r"|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?)"
)
_SPECIAL_FLOAT = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt \t].*)?", re.DOTALL)


def reads_as_other_type(text: str) -> bool:
    """True when a YAML 1.1 reader would not read `text`, written unquoted, as this string."""
    if not text or text in _WORDS:
        return True
    if text[0] not in "+-.0123456789":
        return False
    return bool(
        _NUMBER.fullmatch(text.replace("_", ""))
        or _SPECIAL_FLOAT.fullmatch(text)
        or _SEXAGESIMAL.fullmatch(text)
        or _DATE.fullmatch(text)
    )


class _ManifestDumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """Block-style YAML whose strings read back as strings in any YAML 1.1 reader."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if reads_as_other_type(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="'")
    return dumper.represent_str(data)


_ManifestDumper.add_representer(str, _represent_str)


def dump_documents(documents: list[dict[str, Any]], fmt: Format) -> str:
    """Serialize documents: YAML separated by `---`, or one indented JSON value each."""
    if not documents:
        return ""
    if fmt == "json":
        return "".join(json.dumps(doc, indent=2, ensure_ascii=False) + "\n" for doc in documents)
    return yaml.dump_all(
        documents,
        Dumper=_ManifestDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 30,
    )
