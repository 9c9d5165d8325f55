"""Every capture site x every secret shape, on real spans.

Sites: a Flask app under gunicorn and a FastAPI app under uvicorn, called with a real
HTTP client (query, headers, JSON bodies, response headers and body, `process.environ`;
Flask also through its span dump); an outgoing `requests` call from the Flask app; pymysql
against MariaDB; pymongo against the wire-protocol test server; boto3 (SQS) against moto.
Each scenario runs once, carrying a unique secret per shape; each row of the tables below
asserts where one secret should have landed (masked) at one site, and every scenario is
checked for not carrying any of its secrets anywhere.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from lumigo_opentelemetry.config import Config
from tests.helpers.app_venv import TEST_TOKEN, AppProcess, app_venv, run_app
from tests.helpers.data_tracing import instrumented, tracing
from tests.helpers.mongo_server import MongoWireServer
from tests.helpers.moto_server import MotoServer, moto_server
from tests.helpers.need import tcp_service
from tests.helpers.versions import rows
from tests.helpers.web_apps import MASKED, WEB, call, server_span

__all__ = ["moto_server"]

pytestmark = pytest.mark.slow

NONCE = uuid.uuid4().hex[:10]
URL_ATTRIBUTES = ("http.target", "http.url", "url.query", "url.full")
HOST_ATTRIBUTES = ("http.host", "net.host.name", "http.server_name", "server.address", "http.url")
ENVIRON = "process.environ"
CONFIG = Config.from_environ({"LUMIGO_TRACER_TOKEN": TEST_TOKEN})


def secret(tag: str) -> str:
    return f"sec-{tag}-{NONCE}"


@dataclass
class Captured:
    """What reached the backend for one scenario: the attributes of its main span
    (`process.environ` from the resource), other spans' attributes, and its secrets."""

    attributes: dict[str, Any]
    secrets: dict[str, str]
    others: list[dict[str, Any]] = field(default_factory=list)

    def everything(self) -> str:
        return json.dumps([self.attributes, *self.others], default=str)


def from_received(span: ReceivedSpan) -> dict[str, Any]:
    return {**span.attributes, ENVIRON: span.resource.get(ENVIRON)}


# -- the web apps ---------------------------------------------------------------------------

WEB_SECRETS = {
    name: secret(name)
    for name in (
        "q-token",
        "q-access",
        "q-password",
        "h-auth-token",
        "h-amz",
        "h-authz",
        "h-cookie",
        "h-userinfo",
        "host-userinfo",
        "b-token",
        "b-access",
        "b-refresh",
        "b-authz",
        "b-jwt",
        "b-userinfo",
        "b-cut-json",
        "h-cut-json",
        "env-github",
        "env-aws",
        "env-db",
        "out",
    )
}
WEB_SECRETS["tracer"] = TEST_TOKEN
APP_ENV = {
    "GITHUB_TOKEN": WEB_SECRETS["env-github"],
    "AWS_SESSION_TOKEN": WEB_SECRETS["env-aws"],
    "DATABASE_URL": f"postgres://user:{WEB_SECRETS['env-db']}@db.local/app",
    "APP_CALL_PASSWORD": WEB_SECRETS["out"],
}


def echo_request(app: AppProcess) -> tuple[str, dict[str, str]]:
    """POST /echo with a secret of every shape; returns the test id and the secrets."""
    s = WEB_SECRETS
    query = (
        f"token={s['q-token']}&access_token={s['q-access']}&password={s['q-password']}"
        f"&note={TEST_TOKEN}&q=ok"
    )
    headers = {
        "X-Auth-Token": s["h-auth-token"],
        "X-Amz-Security-Token": s["h-amz"],
        "Authorization": f"Bearer {s['h-authz']}",
        "Cookie": f"sid={s['h-cookie']}",
        "X-Note": f"v {TEST_TOKEN}",
        "X-Origin": f"https://u:{s['h-userinfo']}@example.invalid/",
        # userinfo in the incoming URL's authority: it lands in `http.host` and the like
        "Host": f"u:{s['host-userinfo']}@127.0.0.1:{app.port}",
        # JSON text cut short in a header value: its pairs are masked one by one
        "X-Context": f'{{"user": "ann", "password": "{s["h-cut-json"]}", "n',
    }
    body = {
        "token": s["b-token"],
        "access_token": s["b-access"],
        "refresh_token": s["b-refresh"],
        "authorization": s["b-authz"],
        "jwt": s["b-jwt"],
        "db": f"postgres://user:{s['b-userinfo']}@host/db",
        "note": f"x {TEST_TOKEN}",
        "user": "ann",
        # JSON text cut short held by a string (a forwarded message, a stored event)
        "event": f'{{"user": "ann", "password": "{s["b-cut-json"]}", "n',
    }
    test_id, resp = call(app, "POST", f"/echo?{query}", headers=headers, json=body)
    assert resp.status_code == 200
    assert resp.json()["echo"] == body  # the app gets its data unmasked
    assert resp.headers["x-auth-token"] == f"{test_id}-response"
    return test_id, {**s, "response": f"{test_id}-response"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rec:
        yield rec


def newest(lib: str) -> list[str]:
    return rows(lib, which=("newest",))[0][1]


@pytest.fixture(scope="module")
def flask_run(
    receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Captured, Captured, Captured]]:
    """(server span at the receiver, the same span in the dump, the outgoing call's span)."""
    venv = app_venv([*newest("flask"), "gunicorn>=22"])
    logs = tmp_path_factory.mktemp("masking-flask")
    dump = logs / "spans.jsonl"
    argv = ["gunicorn", "-b", "127.0.0.1:{port}", "-w", "1", "--threads", "4", "--chdir", str(WEB)]
    env = {**APP_ENV, "LUMIGO_DEBUG_SPANDUMP": str(dump)}
    with run_app(
        venv, [*argv, "masking_flask:app"], receiver_url=receiver.url, log_dir=logs, env=env
    ) as app:
        test_id, secrets = echo_request(app)
        span = server_span(receiver, test_id)
        call_id, resp = call(app, "GET", "/call")
        assert resp.text == "called: hello"
        caller = server_span(receiver, call_id)
        spans = receiver.wait_for_spans(3, where=lambda s: s.trace_id == caller.trace_id)
    client = [s for s in spans if s.kind == "CLIENT"]
    assert len(client) == 1, spans
    others = [from_received(s) for s in receiver.spans()]
    otlp = Captured(from_received(span), secrets, others)
    dumped = [json.loads(line) for line in dump.read_text().splitlines()]
    mine = [d for d in dumped if test_id in d["attributes"].get("http.request.headers", "")]
    assert len(mine) == 1
    dump_captured = Captured(
        {**mine[0]["attributes"], ENVIRON: mine[0]["resource"]["attributes"].get(ENVIRON)},
        secrets,
        [d["attributes"] for d in dumped] + [d["resource"]["attributes"] for d in dumped],
    )
    outgoing = Captured(from_received(client[0]), secrets, others)
    yield otlp, dump_captured, outgoing


@pytest.fixture(scope="module")
def fastapi_run(receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory) -> Captured:
    venv = app_venv(newest("fastapi"))
    logs = tmp_path_factory.mktemp("masking-fastapi")
    argv = ["uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--app-dir", str(WEB)]
    with run_app(
        venv, [*argv, "masking_fastapi:app"], receiver_url=receiver.url, log_dir=logs, env=APP_ENV
    ) as app:
        test_id, secrets = echo_request(app)
        span = server_span(receiver, test_id)
    return Captured(from_received(span), secrets, [from_received(s) for s in receiver.spans()])


# -- the in-process clients ---------------------------------------------------------------


@pytest.fixture(scope="module")
def module_receiver() -> Iterator[OtlpReceiver]:
    """The session tracer provider of tests/helpers/data_tracing, exporting here."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    with OtlpReceiver() as rec:
        exporter = tracing().exporter
        exporter.target = OTLPSpanExporter(endpoint=rec.url, timeout=10)
        try:
            yield rec
        finally:
            exporter.target = None


DATA_SECRETS = {
    name: secret(name)
    for name in (
        "lit-password",
        "lit-token",
        "lit-userinfo",
        "param-password",
        "param-token",
        "param-userinfo",
        "token",
        "access",
        "refresh",
        "authz",
        "jwt",
        "userinfo",
        "aws-session",
    )
}
DATA_SECRETS["tracer"] = TEST_TOKEN


def secret_document() -> dict[str, str]:
    s = DATA_SECRETS
    return {
        "user": "ann",
        "token": s["token"],
        "access_token": s["access"],
        "refresh_token": s["refresh"],
        "authorization": s["authz"],
        "jwt": s["jwt"],
        "conn": f"mongodb://app:{s['userinfo']}@db.local/app",
        "note": f"x {TEST_TOKEN}",
    }


def spans_by(
    receiver: OtlpReceiver, count: int, where: Callable[[ReceivedSpan], bool]
) -> list[ReceivedSpan]:
    return receiver.wait_for_spans(count, where=where)


@pytest.fixture(scope="module")
def pymysql_run(module_receiver: OtlpReceiver) -> tuple[Captured, Captured]:
    """(the UPDATE with inline literals, the INSERT with parameters)."""
    tcp_service("127.0.0.1", 3306, "MariaDB")
    import pymysql

    s = DATA_SECRETS
    table = f"masking_{NONCE}"
    with instrumented("pymysql", CONFIG):
        conn = pymysql.connect(
            host="127.0.0.1", port=3306, user="root", password="", database="test"
        )
        try:
            with tracing().tracer.start_as_current_span("pymysql-masking"), conn.cursor() as cur:
                cur.execute(
                    f"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(80),"
                    " password VARCHAR(80), api_token VARCHAR(80), dsn VARCHAR(120))"
                )
                cur.execute(
                    f"INSERT INTO {table} (id, name, password, api_token, dsn)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (
                        1,
                        "ann",
                        s["param-password"],
                        s["param-token"],
                        f"mysql://u:{s['param-userinfo']}@h/db",
                    ),
                )
                cur.execute(
                    f"UPDATE {table} SET password = '{s['lit-password']}',"
                    f" api_token='{s['lit-token']}',"
                    f" dsn = 'mysql://app:{s['lit-userinfo']}@db.local/app',"
                    f" name = 'ann {TEST_TOKEN}' WHERE id = 1"
                )
                cur.execute(f"SELECT password FROM {table} WHERE id = 1")
                assert cur.fetchall() == ((s["lit-password"],),)  # the app sees real data
                cur.execute(f"DROP TABLE {table}")
            conn.commit()
        finally:
            conn.close()
    spans = spans_by(
        module_receiver, 5, lambda sp: table in str(sp.attributes.get("db.statement", ""))
    )
    everything = [sp.attributes for sp in spans]
    update = [a for a in everything if str(a["db.statement"]).startswith("UPDATE")]
    insert = [a for a in everything if str(a["db.statement"]).startswith("INSERT")]
    assert len(update) == 1 and len(insert) == 1
    return Captured(update[0], s, everything), Captured(insert[0], s, everything)


@pytest.fixture(scope="module")
def pymongo_run(module_receiver: OtlpReceiver) -> tuple[Captured, Captured]:
    """(the insert command, the find reply)."""
    import pymongo

    collection = f"users_{NONCE}"
    with instrumented("pymongo", CONFIG), MongoWireServer() as server:
        client: Any = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000)
        try:
            with tracing().tracer.start_as_current_span("pymongo-masking"):
                client.shop[collection].insert_one(secret_document())
                found = client.shop[collection].find_one({"user": "ann"})
        finally:
            client.close()
    assert found is not None and found["jwt"] == DATA_SECRETS["jwt"]
    spans = spans_by(
        module_receiver,
        2,
        lambda sp: sp.attributes.get("db.mongodb.collection") == collection,
    )
    insert = [sp for sp in spans if sp.name.endswith(".insert")]
    find = [sp for sp in spans if sp.name.endswith(".find")]
    assert len(insert) == 1 and len(find) == 1
    everything = [sp.attributes for sp in spans]
    return (
        Captured(insert[0].attributes, DATA_SECRETS, everything),
        Captured(
            {"db.response.body": find[0].attributes["db.response.body"]}, DATA_SECRETS, everything
        ),
    )


@pytest.fixture(scope="module")
def botocore_run(
    module_receiver: OtlpReceiver, moto_server: MotoServer
) -> tuple[Captured, Captured]:
    """(SQS SendMessage, SQS ReceiveMessage), with a session token on the client."""
    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=moto_server.url,
        region_name=moto_server.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token=DATA_SECRETS["aws-session"],
    )
    with instrumented("botocore", CONFIG):
        url = sqs.create_queue(QueueName=f"masking-{NONCE}")["QueueUrl"]
        with tracing().tracer.start_as_current_span("botocore-masking"):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(secret_document()))
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0)
    assert json.loads(got["Messages"][0]["Body"])["jwt"] == DATA_SECRETS["jwt"]
    spans = spans_by(
        module_receiver,
        2,
        lambda sp: (
            sp.name in ("SQS.SendMessage", "SQS.ReceiveMessage")
            and f"masking-{NONCE}" in json.dumps(dict(sp.attributes), default=str)
        ),
    )
    send = [sp for sp in spans if sp.name == "SQS.SendMessage"]
    receive = [sp for sp in spans if sp.name == "SQS.ReceiveMessage"]
    assert len(send) == 1 and len(receive) == 1
    everything = [sp.attributes for sp in spans]
    return (
        Captured(send[0].attributes, DATA_SECRETS, everything),
        Captured(receive[0].attributes, DATA_SECRETS, everything),
    )


# -- the tables -----------------------------------------------------------------------------


def message_body(text: str) -> str:
    """SendMessage's captured body: the message alone, as upstream sends it."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return str(value["MessageBody"]) if isinstance(value, dict) and "MessageBody" in value else text


def received_body(text: str) -> str:
    return str(json.loads(text)["Messages"][0]["Body"])


@dataclass(frozen=True)
class Row:
    """`secret` must not appear in `attribute` (any URL attribute for `URL`), and
    `masked` must (where the secret was, now masked), read through `view`."""

    shape: str
    attribute: str
    masked: str
    secret: str
    view: Callable[[str], str] = str


URL = "<url>"
HOST = "<host>"
SERVER_ROWS = [
    Row("query token", URL, f"token={MASKED}&", "q-token"),
    Row("query access_token", URL, f"access_token={MASKED}&", "q-access"),
    Row("query password", URL, f"password={MASKED}&", "q-password"),
    Row("query tracer token", URL, f"note={MASKED}&", "tracer"),
    Row(
        "header X-Auth-Token", "http.request.headers", f'"x-auth-token":"{MASKED}"', "h-auth-token"
    ),
    Row(
        "header X-Amz-Security-Token",
        "http.request.headers",
        f'"x-amz-security-token":"{MASKED}"',
        "h-amz",
    ),
    Row("header Authorization", "http.request.headers", f'"authorization":"{MASKED}"', "h-authz"),
    Row("header Cookie", "http.request.headers", f'"cookie":"{MASKED}"', "h-cookie"),
    Row("header tracer token", "http.request.headers", f'"x-note":"v {MASKED}"', "tracer"),
    Row(
        "header URL userinfo",
        "http.request.headers",
        f"https://{MASKED}@example.invalid/",
        "h-userinfo",
    ),
    Row(
        "Host header userinfo",
        "http.request.headers",
        f'"host":"{MASKED}@127.0.0.1:',
        "host-userinfo",
    ),
    Row("incoming URL authority userinfo", HOST, f"{MASKED}@127.0.0.1:", "host-userinfo"),
    Row("body token", "http.request.body", f'"token":"{MASKED}"', "b-token"),
    Row("body access_token", "http.request.body", f'"access_token":"{MASKED}"', "b-access"),
    Row("body refresh_token", "http.request.body", f'"refresh_token":"{MASKED}"', "b-refresh"),
    Row("body authorization", "http.request.body", f'"authorization":"{MASKED}"', "b-authz"),
    Row("body jwt", "http.request.body", f'"jwt":"{MASKED}"', "b-jwt"),
    Row("body URL userinfo", "http.request.body", f"postgres://{MASKED}@host/db", "b-userinfo"),
    Row("body tracer token", "http.request.body", f'"note":"x {MASKED}"', "tracer"),
    Row(
        "body JSON text cut short in a string",
        "http.request.body",
        f'\\"password\\": \\"{MASKED}\\"',
        "b-cut-json",
    ),
    Row(
        "header JSON text cut short",
        "http.request.headers",
        f'\\"password\\": \\"{MASKED}\\"',
        "h-cut-json",
    ),
    Row("response X-Auth-Token", "http.response.headers", f'"x-auth-token":"{MASKED}"', "response"),
    Row("response Set-Cookie", "http.response.headers", f'"set-cookie":"{MASKED}"', "response"),
    Row(
        "response header userinfo",
        "http.response.headers",
        f"https://{MASKED}@backend.local/",
        "response",
    ),
    Row("response access_token", "http.response.body", f'"access_token":"{MASKED}"', "response"),
    Row("response jwt", "http.response.body", f'"jwt":"{MASKED}"', "response"),
    Row("response tracer token", "http.response.body", f"issued with {MASKED}", "tracer"),
    Row("environ LUMIGO_TRACER_TOKEN", ENVIRON, f'"LUMIGO_TRACER_TOKEN": "{MASKED}"', "tracer"),
    Row("environ GITHUB_TOKEN", ENVIRON, f'"GITHUB_TOKEN": "{MASKED}"', "env-github"),
    Row("environ AWS_SESSION_TOKEN", ENVIRON, f'"AWS_SESSION_TOKEN": "{MASKED}"', "env-aws"),
    Row("environ DATABASE_URL password", ENVIRON, f"postgres://{MASKED}@db.local/app", "env-db"),
    Row("environ APP_CALL_PASSWORD", ENVIRON, f'"APP_CALL_PASSWORD": "{MASKED}"', "out"),
]
OUTGOING_ROWS = [
    Row("URL userinfo", URL, f"http://{MASKED}@127.0.0.1:", "out"),
    Row("query password", URL, f"?password={MASKED}&", "out"),
    Row("query token", URL, f"&token={MASKED}&", "out"),
    Row("query access_token", URL, f"&access_token={MASKED}&", "out"),
    Row("query tracer token", URL, f"&note={MASKED}&", "tracer"),
]
SQL_UPDATE_ROWS = [
    Row("literal password", "db.statement", f"password = '{MASKED}'", "lit-password"),
    Row("literal api_token", "db.statement", f"api_token='{MASKED}'", "lit-token"),
    Row("literal URL userinfo", "db.statement", f"mysql://{MASKED}@db.local/app", "lit-userinfo"),
    Row("literal tracer token", "db.statement", f"name = 'ann {MASKED}'", "tracer"),
]
SQL_INSERT_ROWS = [
    Row(f"parameter {name}", "db.statement", "VALUES (%s, %s, %s, %s, %s)", name)
    for name in ("param-password", "param-token", "param-userinfo")
]


def document_rows(
    attribute: str, view: Callable[[str], str] = str, compact: bool = False
) -> list[Row]:
    sep = ":" if compact else ": "
    pair = '"{}"' + sep + '"' + MASKED + '"'
    return [
        Row("JSON token", attribute, pair.format("token"), "token", view),
        Row("JSON access_token", attribute, pair.format("access_token"), "access", view),
        Row("JSON refresh_token", attribute, pair.format("refresh_token"), "refresh", view),
        Row("JSON authorization", attribute, pair.format("authorization"), "authz", view),
        Row("JSON jwt", attribute, pair.format("jwt"), "jwt", view),
        Row("URL userinfo", attribute, f"mongodb://{MASKED}@db.local/app", "userinfo", view),
        Row("tracer token", attribute, f'"note"{sep}"x {MASKED}"', "tracer", view),
    ]


AWS_HEADER_ROWS = [
    Row(
        "header X-Amz-Security-Token",
        "http.request.headers",
        f'"x-amz-security-token":"{MASKED}"',
        "aws-session",
    ),
    Row(
        "header Authorization (signature)",
        "http.request.headers",
        f'"authorization":"{MASKED}"',
        "aws-session",
    ),
]

SCENARIOS: dict[str, Callable[[pytest.FixtureRequest], Captured]] = {
    "flask": lambda r: r.getfixturevalue("flask_run")[0],
    "flask-spandump": lambda r: r.getfixturevalue("flask_run")[1],
    "fastapi": lambda r: r.getfixturevalue("fastapi_run"),
    "requests-outgoing": lambda r: r.getfixturevalue("flask_run")[2],
    "pymysql-update": lambda r: r.getfixturevalue("pymysql_run")[0],
    "pymysql-insert": lambda r: r.getfixturevalue("pymysql_run")[1],
    "pymongo-command": lambda r: r.getfixturevalue("pymongo_run")[0],
    "pymongo-reply": lambda r: r.getfixturevalue("pymongo_run")[1],
    "sqs-send": lambda r: r.getfixturevalue("botocore_run")[0],
    "sqs-receive": lambda r: r.getfixturevalue("botocore_run")[1],
}
TABLE: list[tuple[str, Row]] = [
    *[(site, row) for site in ("flask", "flask-spandump", "fastapi") for row in SERVER_ROWS],
    *[("requests-outgoing", row) for row in OUTGOING_ROWS],
    *[("pymysql-update", row) for row in SQL_UPDATE_ROWS],
    *[("pymysql-insert", row) for row in SQL_INSERT_ROWS],
    *[("pymongo-command", row) for row in document_rows("db.request.body")],
    *[("pymongo-reply", row) for row in document_rows("db.response.body")],
    *[("sqs-send", row) for row in AWS_HEADER_ROWS],
    *[("sqs-send", row) for row in document_rows("http.request.body", message_body, compact=True)],
    *[
        ("sqs-receive", row)
        for row in document_rows("http.response.body", received_body, compact=True)
    ],
]


@pytest.mark.parametrize(("site", "row"), TABLE, ids=[f"{site}:{row.shape}" for site, row in TABLE])
def test_each_secret_is_masked_where_it_was_captured(
    request: pytest.FixtureRequest, site: str, row: Row
) -> None:
    captured = SCENARIOS[site](request)
    keys = {URL: URL_ATTRIBUTES, HOST: HOST_ATTRIBUTES}.get(row.attribute, (row.attribute,))
    values = [
        value
        for key in keys
        if isinstance(value := captured.attributes.get(key), str)
        # a URL row looks at the URL attributes that carry the query, a HOST row at the
        # host attributes that carried the userinfo
        and (row.attribute != URL or key == "url.query" or "?" in value)
        and (row.attribute != HOST or "@" in value)
    ]
    assert values, f"{site} has no {row.attribute}: {sorted(captured.attributes)}"
    hidden = captured.secrets[row.secret]
    for value in values:
        shown = row.view(value)
        assert hidden not in shown
        assert row.masked in shown, f"{row.masked!r} not in {shown!r}"


@pytest.mark.parametrize("site", sorted(SCENARIOS))
def test_no_secret_of_a_scenario_reaches_the_backend_anywhere(
    request: pytest.FixtureRequest, site: str
) -> None:
    captured = SCENARIOS[site](request)
    everything = captured.everything()
    leaked = [name for name, value in captured.secrets.items() if value in everything]
    assert leaked == []
