"""The rows of an SQL `INSERT` (or `REPLACE`), masked by the column each value is for.

`INSERT INTO users (id, name, password) VALUES (1, 'Ada', 'hunter2')` names its columns
once and gives the values by position. `mask_rows` masks, in every row, the value of each
column whose name `is_secret` calls secret: `VALUES (1, 'Ada', '****')`. A value is masked
as a whole (`crypt('x', gen_salt('bf'))` becomes `'****'`) when it holds a literal: a
string, a number, a dollar-quoted string. A value without one is kept: a placeholder
(`%s`, `%(name)s`, `$1`, `?`, `:name`), `NULL`, `DEFAULT`, `TRUE`, a column or a call
without literals. Values that cannot be matched to columns have every value holding a
literal masked: a row whose value count differs from the column count, and every row of
a statement without a column list (`INSERT INTO t VALUES (1, 'x')`: the caller calls
`mask_rows` only when its rules may call some name secret).

`INSERT INTO t (cols) SELECT ...` gives its rows by the items of a select list: each
select list of the statement (also after `UNION`, in a subquery or in parentheses; a
`VALUES` list there too) is a row, its items masked as a `VALUES` row's (an item as far
as its `AS alias`), all of them holding a literal when positions cannot be matched (no
column list, another count, `*` or `t.*`). The rest (`FROM`, `WHERE`, ...) is left to
the other rules. A statement whose column list names no secret column is kept as written.

The text is read as PostgreSQL (`''` in a string is a quote, a backslash is itself but in
`E'...'`, `$$` quotes a string, `--` starts a comment) and, when it holds a backslash, `#`
or `--`, also as MySQL (a backslash escapes the next character, `#` and `-- ` start a
comment): what either reading masks is masked (so a value beside a secret one may be
masked too, when the readings differ on where a string ends).
"""

from __future__ import annotations

import re
from typing import Callable, List, Optional, Tuple

MASKED_VALUE = "'****'"
# the dialects' strings; a string may be cut short (no closing quote) by a recording limit
_MYSQL_STRINGS = r"""'(?:[^'\\]|\\.|'')*'?|"(?:[^"\\]|\\.|"")*"?"""
_POSTGRES_STRINGS = (
    r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|[Ee]'(?:[^'\\]|\\.|'')*'?"""
    r"|\$(?P<tag>(?:[^\W\d]\w*)?)\$.*?(?:\$(?P=tag)\$|\Z)"
)


def _tokens(strings: str, comments: str) -> re.Pattern[str]:
    return re.compile(
        r"\s*(?:(?P<mark>%(?:\([^)]*\))?[sbt]|\$\d+|:[^\W\d]\w*|:\d+|\?)"
        rf"|(?P<literal>{strings}|\d[\w.]*|\.\d[\w.]*|\$)"
        r"|(?P<word>[^\W\d][\w$]*)|(?P<comma>,)|(?P<open>[(\[])|(?P<close>[)\]])"
        rf"|(?P<comment>{comments}|/\*.*?(?:\*/|\Z))"
        r"|(?P<name>`(?:[^`]|``)*`?)"
        r"|(?P<other>\S))",
        re.S,
    )


_MYSQL = _tokens(_MYSQL_STRINGS, r"--(?=\s|\Z)[^\n]*|\#[^\n]*")
_POSTGRES = _tokens(_POSTGRES_STRINGS, r"--[^\n]*")
# an item that is one placeholder, name or number up to its comma or parenthesis (most are):
# read at once, as the tokens would read it (a number is a literal)
_PLAIN_ITEM = re.compile(
    r"\s*(%(?:\([^)]*\))?[sbt]|\$\d+|\?|:[^\W\d]\w*|[^\W\d][\w$]*|-?\d[\w.]*)\s*([,)])"
)
# what every literal holds (a quote, `$`, a digit), and the placeholders that may hold `$` or
# a digit: text without the one once the other is taken out has no value to mask
_LITERAL_MARK = re.compile(r"['\"$\d]")
_PLACEHOLDER = re.compile(r"%(?:\(\w*\))?[sbt]|\$\d+")
# the names in a column of the column list: quoted (`x`, "x", [x]) or bare
_NAMES = re.compile(r'`((?:[^`]|``)*)`|"((?:[^"]|"")*)"|\[([^\]]*)\]|([^\W\d][\w$]*)')
_STATEMENTS = frozenset({"INSERT", "REPLACE"})
_ROWS = frozenset({"VALUES", "VALUE"})
_QUERIES = frozenset({"SELECT", "WITH"})
# the words before a select list's first item, and those that end it (at its own depth)
_SELECT_MODIFIERS = frozenset(
    {"ALL", "DISTINCT", "DISTINCTROW", "HIGH_PRIORITY", "STRAIGHT_JOIN", "SQL_NO_CACHE"}
    | {"SQL_SMALL_RESULT", "SQL_BIG_RESULT", "SQL_BUFFER_RESULT", "SQL_CALC_FOUND_ROWS"}
)
_SELECT_ENDS = frozenset(
    {"FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FETCH", "WINDOW"}
    | {"UNION", "INTERSECT", "EXCEPT", "MINUS", "INTO", "FOR", "LOCK", "RETURNING", "ON"}
)
#: the first letters of statements that hold no INSERT but after a `;` (SELECT, SET, SHOW,
#: UPDATE, DELETE, DROP, ...; an INSERT or REPLACE, a WITH, a comment start otherwise): the
#: caller's fast reject, so that they do not pay for the rows of an INSERT
NO_INSERT_INITIALS = "SsUuDd"
#: characters after which the dialects may read a text differently
_DIALECT_MARKS = ("\\", "#", "--")

# an item of a parenthesized list: where its tokens start and end, whether one is a literal
_Item = Tuple[int, int, bool]
_Token = Tuple[str, int, int]


def mask_rows(text: str, lowered: str, is_secret: Callable[[str], bool]) -> str:
    """`text` with the values of its secret columns masked (`lowered` is `text.lower()`)."""
    spans: List[Tuple[int, int]] = []
    _read(text, lowered, _POSTGRES, is_secret, spans)
    if any(mark in text for mark in _DIALECT_MARKS):
        _read(text, lowered, _MYSQL, is_secret, spans)
    if not spans:
        return text
    merged: List[Tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:  # the other reading's span overlaps it
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    out: List[str] = []
    copied = 0
    for start, end in merged:
        out.append(text[copied:start])
        out.append(MASKED_VALUE)
        copied = end
    out.append(text[copied:])
    return "".join(out)


def _next(text: str, tokens: re.Pattern[str], pos: int) -> Optional[_Token]:
    """The next token from `pos` that is no comment: (kind, start, end)."""
    while True:
        match = tokens.match(text, pos)
        if match is None:  # the end (maybe after spaces)
            return None
        kind = match.lastgroup or ""
        if kind != "comment":
            return kind, match.start(kind), match.end()
        pos = match.end()


def _read(
    text: str,
    lowered: str,
    tokens: re.Pattern[str],
    is_secret: Callable[[str], bool],
    spans: List[Tuple[int, int]],
) -> None:
    """Add to `spans` where the values of secret columns are, `text` read with `tokens`."""
    pos = 0
    last = max(lowered.rfind("insert"), lowered.rfind("replace"))
    while pos <= last:  # no INSERT or REPLACE word after pos: nothing to mask
        token = _next(text, tokens, pos)
        if token is None:
            return
        kind, start, pos = token
        if kind == "word" and text[start:pos].upper() in _STATEMENTS:
            pos = _insert(text, tokens, pos, is_secret, spans)


def _insert(
    text: str,
    tokens: re.Pattern[str],
    pos: int,
    is_secret: Callable[[str], bool],
    spans: List[Tuple[int, int]],
) -> int:
    """Read one statement from after its `INSERT`; return where reading goes on."""
    columns: Optional[List[bool]] = None  # None: no column list
    partition = named = False
    while True:  # the table (and partitions) up to the column list, then up to the rows
        token = _next(text, tokens, pos)
        if token is None:
            return len(text)
        kind, start, pos = token
        word = text[start:pos].upper() if kind == "word" else ""
        if word in _ROWS:  # rows follow (not so after `OVERRIDING SYSTEM VALUE`)
            following = _row(text, tokens, pos)
            if following and following[0] == "open" and text[following[1]] == "(":
                if columns is not None and not any(columns):
                    return pos
                if not _LITERAL_MARK.search(_PLACEHOLDER.sub("", text[pos:])):
                    return len(text)  # placeholders only (an ORM's bulk INSERT): no row to read
                return _rows(text, tokens, pos, columns, spans)
        if word in _QUERIES:
            return _query(text, tokens, start, columns, spans)
        if kind == "open":
            if not named:  # `replace(...)`: a call, no statement
                return start
            if _word(text, _next(text, tokens, pos)) in _QUERIES:  # `(SELECT ...)`
                return _query(text, tokens, start, columns, spans)
            items, pos, _closed = _items(text, tokens, pos)
            if columns is None and not partition and text[start] == "(":
                columns = [_secret_column(text[s:e], is_secret) for s, e, _lit in items]
            partition = False
        elif kind == "word":
            partition = word == "PARTITION"
            named = True
        elif kind == "name" or text[start] in '".':  # a quoted name, `schema.table`
            named = True
        else:
            return start


def _rows(
    text: str,
    tokens: re.Pattern[str],
    pos: int,
    columns: Optional[List[bool]],
    spans: List[Tuple[int, int]],
) -> int:
    """The rows after a `VALUES` word: `(...)` or `ROW(...)`, separated by commas."""
    while True:
        token = _row(text, tokens, pos)
        if token is None or token[0] != "open":
            return pos
        items, pos, closed = _items(text, tokens, token[2])
        _mask_row(items, columns, closed, spans)
        token = _next(text, tokens, pos)
        if token is None or token[0] != "comma":
            return pos
        pos = token[2]


def _query(
    text: str,
    tokens: re.Pattern[str],
    pos: int,
    columns: Optional[List[bool]],
    spans: List[Tuple[int, int]],
) -> int:
    """The rows of `INSERT ... SELECT` from `pos` to the statement's end (a `;`, or a
    parenthesis closing what the statement is in): every select list and `VALUES` list."""
    if columns is not None and not any(columns):
        return pos
    depth = 0
    while True:
        token = _next(text, tokens, pos)
        if token is None:
            return len(text)
        kind, start, pos = token
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
            if depth < 0:
                return start
        elif kind == "word":
            word = text[start:pos].upper()
            if word == "SELECT":
                pos = _select_list(text, tokens, pos, columns, spans)
            elif word in _ROWS:
                pos = _rows(text, tokens, pos, columns, spans)
        elif kind == "other" and text[start] == ";":
            return start


def _select_list(
    text: str,
    tokens: re.Pattern[str],
    pos: int,
    columns: Optional[List[bool]],
    spans: List[Tuple[int, int]],
) -> int:
    """Mask the items of the select list after a `SELECT` word as a row's values; return
    where it ends (the word, `;` or parenthesis after it, or the text's end)."""
    items: List[_Item] = []
    depth = 0
    start = end = -1
    literal = aliased = False
    first = True  # before the first item: modifiers (`DISTINCT ON (...)`) are skipped
    while True:
        token = _next(text, tokens, pos)
        if token is None:  # the statement's end, or a cut: counted as a whole list
            at = len(text)
            if start >= 0 or items:
                items.append((start, end, literal))
            break
        kind, at, pos = token
        word = text[at:pos].upper() if kind == "word" else ""
        if first and word in _SELECT_MODIFIERS:
            if word == "DISTINCT":
                pos = _past_on(text, tokens, pos)
            continue
        first = False
        if depth == 0 and (
            kind == "comma"
            or kind == "close"
            or word in _SELECT_ENDS
            or (kind == "other" and text[at] == ";")
        ):
            if kind == "comma" or start >= 0 or items:
                items.append((start, end, literal))
            if kind != "comma":
                break
            start = end = -1
            literal = aliased = False
            continue
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
        elif kind == "literal" and not aliased:
            literal = True
        elif word == "AS" and depth == 0:
            aliased = True
        if start < 0:
            start = at
        if not aliased:
            end = pos
    star = any(text[s:e] == "*" or text[s:e].endswith(".*") for s, e, _lit in items)
    _mask_row(items, None if star else columns, True, spans)
    return at


def _past_on(text: str, tokens: re.Pattern[str], pos: int) -> int:
    """Where a select list starts after `DISTINCT` at `pos`: past `ON (...)` if one follows."""
    on = _next(text, tokens, pos)
    if _word(text, on) != "ON" or on is None:
        return pos
    opening = _next(text, tokens, on[2])
    if opening is None or opening[0] != "open":
        return on[2]
    return _items(text, tokens, opening[2])[1]


def _word(text: str, token: Optional[_Token]) -> str:
    """The word a token is, in upper case ("" for no word)."""
    return text[token[1] : token[2]].upper() if token and token[0] == "word" else ""


def _row(text: str, tokens: re.Pattern[str], pos: int) -> Optional[_Token]:
    """The next token, after a `ROW` keyword if one comes first (MySQL's `VALUES ROW(...)`)."""
    token = _next(text, tokens, pos)
    if token and token[0] == "word" and text[token[1] : token[2]].upper() == "ROW":
        return _next(text, tokens, token[2])
    return token


def _secret_column(column: str, is_secret: Callable[[str], bool]) -> bool:
    """Whether a column of the column list is secret: one of its names is (`t.password`,
    `"password"`, `` `password` ``, `[password]`, `passwords[1]`)."""
    for match in _NAMES.finditer(column):
        backquoted, quoted, bracketed, bare = match.groups()
        if backquoted is not None:
            name = backquoted.replace("``", "`")
        elif quoted is not None:
            name = quoted.replace('""', '"')
        else:
            name = bracketed if bracketed is not None else bare
        if is_secret(name):
            return True
    return False


def _items(text: str, tokens: re.Pattern[str], pos: int) -> Tuple[List[_Item], int, bool]:
    """The comma-separated items of the list opened before `pos`, where reading goes on,
    and whether the list was closed (False: the text ends first)."""
    items: List[_Item] = []
    depth = 0
    start = end = -1
    literal = False
    while True:
        plain = _PLAIN_ITEM.match(text, pos) if start < 0 else None
        if plain is not None:
            value = plain.group(1)
            items.append((plain.start(1), plain.end(1), value[0] in "-0123456789"))
            pos = plain.end()
            if plain.group(2) == ")":
                return items, pos, True
            continue
        token = _next(text, tokens, pos)
        if token is None:
            if start >= 0 or items:
                items.append((start, end, literal))
            return items, len(text), False
        kind, first, pos = token
        if depth == 0 and (kind == "comma" or kind == "close"):
            if kind == "comma" or start >= 0 or items:
                items.append((start, end, literal))
            if kind == "close":
                return items, pos, True
            start = end = -1
            literal = False
            continue
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
        elif kind == "literal":
            literal = True
        if start < 0:
            start = first
        end = pos


def _mask_row(
    items: List[_Item],
    columns: Optional[List[bool]],
    closed: bool,
    spans: List[Tuple[int, int]],
) -> None:
    """Add the spans of a row's values that are masked: a secret column's value holding a
    literal; every value holding one when there is no column list or the counts differ (a
    row cut short by the end of the text counts its values so far)."""
    if columns is not None and (
        len(items) == len(columns) if closed else len(items) <= len(columns)
    ):
        for (start, end, literal), secret in zip(items, columns):
            if literal and secret:
                spans.append((start, end))
    else:
        spans.extend((start, end) for start, end, literal in items if literal)
