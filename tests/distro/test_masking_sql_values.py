"""The rows of an SQL INSERT masked by column (`lumigo_opentelemetry.sql_values`, through
`Masking.apply(Site.DB, ...)`): a secret column's value holding a literal becomes '****' in
every row, everything else is kept byte for byte. End-to-end through the real drivers:
test_sql_literal_masking.py."""

from __future__ import annotations

import re
from typing import List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lumigo_opentelemetry.masking import MASKED, Masking, Rules, Site

DEFAULT = Masking.default()
M = f"'{MASKED}'"


def masking(**env: str) -> Masking:
    built, warnings = Masking.from_environ(env)
    assert warnings == []
    return built


def _marked(text: str) -> Tuple[str, str]:
    """A statement written with its masked values marked `<<...>>`: (as sent, as masked)."""
    return text.replace("<<", "").replace(">>", ""), re.sub(r"<<.*?>>", M, text, flags=re.S)


@pytest.mark.parametrize(
    "marked",
    [
        "INSERT INTO users (id, name, password) VALUES (1, 'Ada', <<'hunter2'>>)",
        # every row; lower case keywords
        "insert into users (id, api_key, name) values (1, <<'k1'>>, 'a'), (2, <<'k2'>>, 'b'),"
        "(3,<<'k3'>>,'c')",
        # quoted names, schema-qualified tables
        """INSERT INTO "public"."users" ("id", "Password") VALUES (1, <<'x'>>)""",
        "INSERT INTO app.users (`id`, `token`) VALUES (1, <<'x'>>)",
        "INSERT INTO [dbo].[users] ([id], [my password]) VALUES (1, <<'x'>>)",
        "INSERT INTO users (id, users.secret, data[1]) VALUES (1, <<'x'>>, 'y')",
        # string literals with '' and backslash escapes, commas and parentheses inside
        "INSERT INTO u (note, password, n) VALUES ('a,(b', <<'it''s, (x)'>>, 'c''d)'),"
        " ('e\\\\f', <<'g\\\\'>>, ')')",
        # a value expression is masked whole; numbers too
        "INSERT INTO u (id, password) VALUES (1, <<crypt('x', gen_salt('bf'))>>)",
        "INSERT INTO u (id, pin_secret) VALUES (1, <<-1234>>), (2, <<5.5e3>>),"
        " (3, <<'x'::text>>), (4, <<E'a\\'b'>>)",
        "INSERT INTO u (id, key_hex) VALUES (1, <<X'DEADBEEF'>>), (2, <<0xBEEF>>),"
        " (3, <<$$a'b$$>>), (4, <<$t$x$t$>>)",
        # no literal, nothing to mask: placeholders, NULL, DEFAULT, columns, calls
        "INSERT INTO u (id, password, token, api_key, jwt, session)"
        " VALUES (%s, %s, NULL, DEFAULT, now(), $1::text)",
        "INSERT INTO u (password, token, secret) VALUES (%(password)s, ?, :token)",
        # whitespace, newlines, comments
        "INSERT /* c */ INTO users\n  (id,\n   password -- the hash\n  )\n"
        "VALUES\n  (1, /* x */ <<'hunter2'>> /* y */ )",
        # REPLACE, MySQL's VALUE and ROW(...), PARTITION, OVERRIDING ... VALUE
        "REPLACE INTO t (a, secret) VALUE ROW(1, <<'x'>>), ROW(2, <<'y'>>)",
        "INSERT IGNORE INTO t PARTITION (p0, p1) (a, secret) VALUES (1, <<'x'>>)",
        "INSERT INTO t AS x (id, token) OVERRIDING SYSTEM VALUE VALUES (1, <<'x'>>)",
        # the update part is pair-shaped: masked by the pair rule
        "INSERT INTO t (id, password) VALUES (1, <<'x'>>)"
        " ON CONFLICT (id) DO UPDATE SET password = <<'y'>> RETURNING id",
        "INSERT INTO t (id, password) VALUES (1, <<'x'>>) AS n"
        " ON DUPLICATE KEY UPDATE password = n.password",
        # an INSERT in a CTE; several statements
        "WITH n AS (INSERT INTO t (id, token) VALUES (1, <<'x'>>) RETURNING id)"
        " SELECT 'values' FROM n",
        "INSERT INTO a (v) VALUES ('insert'); INSERT INTO b (secret) VALUES (<<'s'>>);"
        " INSERT INTO c (v) VALUES ('t')",
        # a column count that does not match: every value holding a literal is masked
        "INSERT INTO t (id, password) VALUES (<<1>>, <<'x'>>, <<'y'>>), (<<2>>), (3, <<'z'>>),"
        " (NULL, <<'a'>>, %s)",
        # cut short by a recording limit: in the secret value, in a call, before it
        "INSERT INTO t (id, password) VALUES (1, <<'hunt>>",
        "INSERT INTO t (id, password) VALUES (1, <<crypt('hunter2', gen_sa>>",
        "INSERT INTO t (id, password) VALUES (1, <<'a'>>), (2",
        # `#` starts a comment in MySQL, not in PostgreSQL (three values): what either masks
        "INSERT INTO t (id, password) VALUES (<<1>>, <<# 'x'>>,\n<<'hunter2'>>)",
        "INSERT INTO u (password, n) VALUES (<<'a'>>, 'b'), (<<'C:\\', 'x')>>",
        "INSERT INTO t (id, password) VALUES (1, <<'x'>>), ",
        "INSERT INTO t (password, id) VALUES (<<'x'>>, 1",
        "INSERT INTO t (password, id) VALUES (<<'x'>>, <<1>>, <<2>>",
        # MySQL: INTO is optional; a table name in backquotes
        "INSERT `users` (id, password) VALUES (1, <<'x'>>)",
        # an empty value is a value: the one after it is for the note
        "INSERT INTO t (password, note) VALUES (, 'x')",
        # nothing to mask: no secret column, no literal, no VALUES
        "INSERT INTO orders (id, total, status) VALUES (7, 19.99, 'paid')",
        "INSERT INTO t (id, name) VALUES (1, 'password')",
        "SELECT * FROM t WHERE kind IN ('value', 'password')",
        "INSERT INTO t () VALUES ()",
        "INSERT INTO secrets_log (a, b) VALUES (1, 2, 3)",
        "INSERT INTO t SET note = 'values'",
        "INSERT INTO t SET password = <<'values'>>",  # the pair rule's
        "INSERT INTO t (id, password) VALUES",
        "SELECT replace(password, 'a', 'b') FROM t WHERE k IN (VALUES ('x'))",  # a call
        # no column list: every value holding a literal, in every row
        "INSERT INTO users VALUES (<<1>>, <<'Ada'>>, <<'hunter2'>>), (<<2>>, NULL, DEFAULT)",
        "insert into t values (%s, %s, $1, ?, :name, NULL, DEFAULT, TRUE, now())",
        "INSERT INTO t PARTITION (p_secret) VALUES (<<1>>, <<'x'>>)",
        "REPLACE `t` VALUE ROW(<<crypt('x', gen_salt('bf'))>>, lower(%s))",
        'INSERT INTO "s"."t" /* (a) */ VALUES (<<\'a\\\\\'>>, <<$$b$$>>) RETURNING id',
        "INSERT INTO t VALUES (<<'it''s'>>, <<'cut>>",
        "INSERT INTO t VALUES (<<1>>) ON CONFLICT (id) DO UPDATE SET note = 'n'",
        "INSERT INTO a VALUES (%s); INSERT INTO b VALUES (<<'x'>>); SELECT 'y'",
        # INSERT ... SELECT: the select list's items by position, as a row's values
        "INSERT INTO users (id, name, password) SELECT 1, 'Ada', <<'hunter2'>>",
        "insert into t (id, token) select distinct id, <<'x'>> AS token from u where a = 'b'",
        "INSERT INTO t (id, token) SELECT DISTINCT ON (id, 'k') id, <<upper('x')>> FROM u",
        "INSERT INTO t (id, token) (SELECT 1, <<'x'>>) ON CONFLICT DO NOTHING",
        "INSERT INTO t (id, token) SELECT 1, <<'a'>> UNION ALL SELECT 2, <<'b'>>; SELECT 'c', 'd'",
        "INSERT INTO t (id, token) SELECT id, <<'x' || name>> FROM u"
        " WHERE id IN (SELECT id FROM v WHERE k = 'c') ORDER BY 1 LIMIT 2",
        "INSERT INTO t (id, token) WITH s AS (SELECT 1 AS a, <<'x'>> AS b) SELECT a, b FROM s",
        "INSERT INTO t (id, token) SELECT * FROM (VALUES (1, <<'x'>>)) AS v (a, b)",
        "INSERT INTO t (id, token) OVERRIDING USER VALUE SELECT 1, <<'x'>>",
        "WITH n AS (INSERT INTO t (id, token) SELECT 1, <<'x'>> RETURNING id) SELECT 'y' FROM n",
        "INSERT INTO t (id, token) SELECT 1, <<'x'>> FROM u WHERE password = <<'y'>>",
        "INSERT INTO t (id, token) SELECT 1, <<'cut>>",
        "INSERT INTO t (token, id) SELECT DISTINCT <<'x'>>, 1",
        "INSERT INTO t (token, id) SELECT ALL <<upper ('x')>>, 1",
        "INSERT INTO t (id, token) SELECT DISTINCT ON",
        "INSERT INTO t (id, token) SELECT DISTINCT ON 1, <<'x'>>",
        "INSERT INTO t (token, id) SELECT DISTINCT ON (id) <<1>>, 'x'",
        "INSERT INTO t (id, password) SELECT 1, <<'x'>> UNION VALUES",
        "INSERT INTO t (id, token) SELECT 1, <<'a'>> FROM (SELECT <<2>>) s"
        " WHERE a = 1 UNION ALL SELECT 3, <<'b'>>",
        "WITH n AS (INSERT INTO t (id, token) SELECT 1, <<'x'>> FROM (SELECT <<2>>) s"
        " RETURNING id) SELECT 'y' FROM n",
        "INSERT INTO t (",
        # the fast reject: a statement starting with S, U or D is read only after a `;`
        "select 1; insert into t values (<<'x'>>)",
        "Update t SET a = 1;\n /* c */ REPLACE t VALUES (<<'x'>>)",
        "  INSERT INTO t VALUES (<<'x'>>)",
        "WITH a AS (SELECT 1) SELECT replace(password, 'a', 'b') FROM a UNION VALUES ('x', 1, 2)",
        "INSERT INTO t PARTITION (p_secret, p1) VALUES (<<1>>, <<'x'>>)",
        # positions that cannot be matched: every item holding a literal
        "INSERT INTO t (token, id) SELECT , <<'x'>>, <<1>>",
        "INSERT INTO t (token, id) SELECT *, <<'x'>> FROM u",
        "INSERT INTO t (token, id) SELECT u.*, <<2>> FROM u",
        "INSERT INTO t (id, token) SELECT <<1>>, <<'x'>>, <<'y'>>",
        "INSERT INTO t (id, token) SELECT *, <<'x'>> FROM u",
        "INSERT INTO t (id, token) SELECT u.*, <<2>> FROM u",
        "INSERT INTO users SELECT <<1>>, <<'Ada'>>, <<'hunter2'>>, %s, NULL FROM dual",
        "INSERT INTO archive SELECT * FROM orders WHERE status = 'paid'",
        # no secret column in the list: kept as written
        "INSERT INTO t (id, name) SELECT 1, 'x' UNION SELECT 2, 'y'",
        "INSERT INTO t (id, name) SELECT id, name FROM u WHERE password = <<'y'>>",  # a pair
    ],
)
def test_secret_columns_of_insert_rows_are_masked(marked: str) -> None:
    sql, expected = _marked(marked)
    assert DEFAULT.apply(Site.DB, sql) == expected


def test_a_backslash_before_a_quote_masks_what_either_dialect_would() -> None:
    """`\\'` escapes the quote in MySQL and ends the string in PostgreSQL: the row is masked
    as both read it, so a neighbour of the secret value may be masked too, never less."""
    mysql = "INSERT INTO u (note, password, n) VALUES ('it\\'s, ok', 'hunter2', 'x')"
    # PostgreSQL reads `'it\\'`, `s`, then a row cut short from `ok` on
    assert (
        DEFAULT.apply(Site.DB, mysql) == f"INSERT INTO u (note, password, n) VALUES ('it\\'s, {M}"
    )
    # PostgreSQL reads one string `'a\\'', '` for the note: only MySQL's reading finds the
    # password
    doubled = "INSERT INTO u (note, password) VALUES ('a\\'', 'hunter2')"
    assert DEFAULT.apply(Site.DB, doubled) == f"INSERT INTO u (note, password) VALUES ('a\\'', {M})"
    # the same in a later row: PostgreSQL's span there holds MySQL's
    rows = (
        "INSERT INTO u (note, password, n) VALUES ('a', 'b', 'c'), ('it\\'s, ok', 'hunter2', 'x')"
    )
    assert DEFAULT.apply(Site.DB, rows) == (
        f"INSERT INTO u (note, password, n) VALUES ('a', {M}, 'c'), ('it\\'s, {M}"
    )
    # MySQL reads one string from `'C:\\', '` on for the password: masked up to the end
    path = "INSERT INTO u (password, n) VALUES ('C:\\', 'x')"
    assert DEFAULT.apply(Site.DB, path) == f"INSERT INTO u (password, n) VALUES ({M}"
    postgres = "INSERT INTO u (note, password, n) VALUES ('C:\\', 'hunter2', 'x')"
    # MySQL reads one string up to `, '`, then a row cut short: the note's, not masked
    assert DEFAULT.apply(Site.DB, postgres) == (
        f"INSERT INTO u (note, password, n) VALUES ('C:\\', {M}, 'x')"
    )


def test_rows_without_columns_are_masked_unless_the_rules_call_nothing_secret() -> None:
    """Values not matched to columns may be any column's: masked whenever the rules may call
    a name secret (any setting but an empty list), kept with an empty list."""
    rows = "INSERT INTO people VALUES (1, '123-45-6789')"
    select = "INSERT INTO people (id, ssn) SELECT 1, '123-45-6789'"
    ssn = masking(LUMIGO_SECRET_MASKING_REGEX='["^ssn$"]')
    assert ssn.apply(Site.DB, rows) == f"INSERT INTO people VALUES ({M}, {M})"
    assert ssn.apply(Site.DB, select) == f"INSERT INTO people (id, ssn) SELECT 1, {M}"
    assert DEFAULT.apply(Site.DB, select) == select
    nothing = masking(LUMIGO_SECRET_MASKING_REGEX="[]")
    assert nothing.apply(Site.DB, rows) == rows
    assert nothing.apply(Site.DB, select) == select


def test_the_rules_decide_which_columns_are_secret() -> None:
    sql = "INSERT INTO t (pin, spin, password) VALUES ('1', '2', '3')"
    assert masking(LUMIGO_SECRET_MASKING_REGEX='["pin"]').apply(Site.DB, sql) == (
        f"INSERT INTO t (pin, spin, password) VALUES ({M}, '2', '3')"
    )
    assert masking(LUMIGO_SECRET_MASKING_REGEX='["^s?pin$"]').apply(Site.DB, sql) == (
        f"INSERT INTO t (pin, spin, password) VALUES ({M}, {M}, '3')"
    )
    assert masking(LUMIGO_SECRET_MASKING_REGEX="all").apply(Site.DB, sql) == (
        f"INSERT INTO t (pin, spin, password) VALUES ({M}, {M}, {M})"
    )
    assert masking(LUMIGO_SECRET_MASKING_REGEX="[]").apply(Site.DB, sql) == sql
    # the per-site settings are for HTTP and the environment: SQL follows the general one
    site_only = masking(LUMIGO_SECRET_MASKING_REGEX_HTTP_REQUEST_BODIES='["pin"]')
    assert (
        site_only.apply(Site.DB, sql)
        == f"INSERT INTO t (pin, spin, password) VALUES ('1', '2', {M})"
    )


def test_a_statement_with_nothing_masked_is_remembered_and_one_masked_is_not() -> None:
    fresh = Masking.default()
    plain = "INSERT INTO orders (id, status) VALUES (7, 'paid')"
    secret = "INSERT INTO users (id, password) VALUES (7, 'hunter2')"
    assert fresh.apply(Site.DB, plain) == plain
    assert fresh.remembered_texts == 1
    assert fresh.apply(Site.DB, secret) == f"INSERT INTO users (id, password) VALUES (7, {M})"
    assert fresh.apply(Site.DB, secret) == f"INSERT INTO users (id, password) VALUES (7, {M})"
    assert fresh.remembered_texts == 1


def test_a_failing_rule_masks_the_whole_statement() -> None:
    """A user pattern out of time on a column name costs the statement, as everywhere."""
    slow = Masking(Rules(["(a|aa)+$"], time_bound=0.0))
    sql = "INSERT INTO t (" + "a" * 30 + "!, b) VALUES ('x', 'y')"
    assert slow.apply(Site.DB, sql) == MASKED


# -- properties ------------------------------------------------------------------------

_SECRET_MARK = "Q"  # only secret values hold it
_TEXT = st.text(alphabet="ab ,()'-#;/*\\\n", max_size=8).map(
    lambda t: t.replace("\\", "\\\\").replace("'", "''")  # both dialects read it alike
)
_PLAIN_VALUES = st.one_of(
    _TEXT.map(lambda t: f"'{t}'"),
    st.integers(-999, 999).map(str),
    st.sampled_from(["NULL", "DEFAULT", "%s", "$1", "?", "now()", "lower(%(name)s)"]),
    st.tuples(_TEXT, _TEXT).map(lambda p: f"concat('{p[0]}', upper('{p[1]}'))"),
)
_SECRET_VALUES = st.one_of(
    _TEXT.map(lambda t: f"'{_SECRET_MARK}{t}'"),
    st.integers(0, 999).map(lambda n: f"{n}{_SECRET_MARK}"),  # a number (`1Q`: a literal)
    _TEXT.map(lambda t: f"crypt('{_SECRET_MARK}{t}', gen_salt('bf'))"),
    st.sampled_from(["NULL", "%s", "DEFAULT"]),  # no literal: kept
)
_COLUMNS = st.lists(
    st.tuples(st.sampled_from(["id", "name", "note", '"email"', "`age`"]), st.just(False))
    | st.tuples(st.sampled_from(["password", '"api_key"', "`Token`", "[secret]"]), st.just(True)),
    min_size=1,
    max_size=4,
)
_SPACES = st.sampled_from(["", " ", "\n  ", " /* (x, 'y') */ ", " -- c\n"])


_NO_LITERAL = ("NULL", "DEFAULT", "%s", "$1", "?", "now()", "lower(%(name)s)")


_FORMS = ("values", "bare", "select")


@st.composite
def _statements(draw: st.DrawFn, mismatch: bool = False, form: str = "values") -> Tuple[str, str]:
    """An INSERT with random columns and rows, and its text with the values of the secret
    columns that hold a literal masked. With `mismatch`, one row has a value more or less
    than there are columns: every value of it holding a literal is masked. `form`: rows
    after VALUES, the same without a column list (every value holding a literal masked),
    or the column list and select lists (`SELECT ... UNION ALL SELECT ...`, items maybe
    aliased, maybe a FROM and WHERE after them)."""
    columns = draw(_COLUMNS)
    space = draw(_SPACES)
    rows_in: List[str] = []
    rows_out: List[str] = []
    count = draw(st.integers(1, 3))
    odd = draw(st.integers(0, count - 1)) if mismatch else -1
    any_secret = any(secret for _n, secret in columns)
    for row in range(count):
        values = [draw(_SECRET_VALUES if secret else _PLAIN_VALUES) for _n, secret in columns]
        if row == odd:
            if len(values) > 1 and draw(st.booleans()):
                values.pop(draw(st.integers(0, len(values) - 1)))
            else:
                values.insert(draw(st.integers(0, len(values))), draw(_PLAIN_VALUES))
        if form == "bare" or (row == odd and any_secret):
            masked = [v if v in _NO_LITERAL else M for v in values]
        elif not any_secret:
            masked = list(values)
        else:
            masked = [
                v if not secret or v in _NO_LITERAL else M
                for v, (_n, secret) in zip(values, columns)
            ]
        if form == "select":
            aliases = [
                draw(st.sampled_from(["", f" AS a{i}", ' AS "password"']))
                for i in range(len(values))
            ]
            values = [v + alias for v, alias in zip(values, aliases)]
            masked = [v + alias for v, alias in zip(masked, aliases)]
            rows_in.append(("," + space).join(values))
            rows_out.append(("," + space).join(masked))
        else:
            rows_in.append("(" + ("," + space).join(values) + ")")
            rows_out.append("(" + ("," + space).join(masked) + ")")
    names = "(" + ", ".join(n for n, _ in columns) + ")"
    if form == "select":
        head = f"INSERT INTO s.t{space}{names}{space}SELECT{space or ' '}"
        tail = draw(st.sampled_from(["", " FROM u", f"{space or ' '}FROM u WHERE a = %s LIMIT 1"]))
        joint = f"{space or ' '}UNION ALL{space or ' '}SELECT{space or ' '}"
        return head + joint.join(rows_in) + tail, head + joint.join(rows_out) + tail
    names = names if form == "values" else " "  # a space at least between table and VALUES
    head = f"INSERT INTO s.t{space}{names}{space}VALUES{space}"
    return head + ", ".join(rows_in), head + ", ".join(rows_out)


@given(st.sampled_from(_FORMS).flatmap(lambda form: _statements(form=form)))
def test_secret_columns_are_masked_in_every_row_and_the_rest_kept(pair: Tuple[str, str]) -> None:
    """Random rows (after VALUES, without a column list, select lists): no secret column's
    literal is left (no literal at all without a column list), every other byte is kept."""
    sql, expected = pair
    out = DEFAULT.apply(Site.DB, sql)
    assert _SECRET_MARK not in out
    assert out == expected


@given(st.sampled_from(_FORMS).flatmap(lambda form: _statements(form=form)), st.integers(0, 10_000))
def test_a_statement_cut_anywhere_keeps_no_secret_value(pair: Tuple[str, str], cut: int) -> None:
    """Cut short by a recording limit at any point: nothing of a secret value is left."""
    sql = pair[0][:cut]
    assert _SECRET_MARK not in DEFAULT.apply(Site.DB, sql)


@given(st.sampled_from(_FORMS).flatmap(lambda form: _statements(mismatch=True, form=form)))
def test_a_row_of_another_length_keeps_no_literal(pair: Tuple[str, str]) -> None:
    """A value more (or one less) in a row (or select list) than columns: which value is for
    which column cannot be told, so no literal of that row is left (when a column is
    secret; a statement without one is kept)."""
    sql, expected = pair
    out = DEFAULT.apply(Site.DB, sql)
    assert _SECRET_MARK not in out
    assert out == expected
