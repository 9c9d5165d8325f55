"""The issue-14 libraries end to end: an unmodified script in its own venv (the oldest and
newest rows of tests/helpers/versions.py), injected by environment only, against the
real services; spans checked at the OTLP receiver after the script exits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.data_apps import run_data_app, venv_for
from tests.helpers.need import tcp_service
from tests.helpers.versions import rows

pytestmark = pytest.mark.slow

APPS: dict[str, str] = {
    "psycopg2": """
import json, psycopg2
conn = psycopg2.connect("host=127.0.0.1 dbname=test user=postgres")
cur = conn.cursor()
cur.execute("SELECT %s::int + 1", (41,))
print(json.dumps(cur.fetchone()[0]))
""",
    "psycopg": """
import json, psycopg
with psycopg.connect("host=127.0.0.1 dbname=test user=postgres") as conn:
    print(json.dumps(conn.execute("SELECT %s::int + 1", (41,)).fetchone()[0]))
""",
    "redis": """
import json, redis
r = redis.Redis(host="127.0.0.1")
r.set("lumigo-matrix:x", "41")
print(json.dumps(r.incr("lumigo-matrix:x")))
""",
    "pika": """
import json, pika
conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1"))
ch = conn.channel(); ch.queue_declare("lumigo-matrix", auto_delete=True)
ch.basic_publish("", "lumigo-matrix", b'{"n": 42}')
method, props, body = next(ch.consume("lumigo-matrix", inactivity_timeout=10))
ch.basic_ack(method.delivery_tag)
ch.cancel()
conn.close()
print(json.dumps(json.loads(body)["n"]))
""",
    "grpc": """
import json, grpc
from concurrent import futures
server = grpc.server(futures.ThreadPoolExecutor(2))
add = grpc.unary_unary_rpc_method_handler(lambda req, ctx: str(int(req) + 1).encode())
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("m.S", {"Add": add}),))
port = server.add_insecure_port("127.0.0.1:0"); server.start()
with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
    print(json.dumps(int(ch.unary_unary("/m.S/Add")(b"41"))))
server.stop(None)
""",
    "httpx": """
import json, threading, httpx
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"42")
    def log_message(self, *a): pass
s = HTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=s.serve_forever, daemon=True).start()
print(json.dumps(int(httpx.get("http://127.0.0.1:%d/" % s.server_address[1]).text)))
""",
    "requests": """
import json, threading, requests
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"42")
    def log_message(self, *a): pass
s = HTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=s.serve_forever, daemon=True).start()
url = "http://127.0.0.1:%d/" % s.server_address[1]
print(json.dumps(int(requests.post(url, json={"password": "hunter2"}).text)))
""",
    "langchain": """
import json
from langchain_core.language_models.fake_chat_models import FakeListChatModel
print(json.dumps(int(FakeListChatModel(responses=["42"]).invoke("answer?").content)))
""",
    "django": """
import json
from django.conf import settings
db = {"ENGINE": "django.db.backends.postgresql", "HOST": "127.0.0.1", "NAME": "test",
      "USER": "postgres"}
settings.configure(ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, INSTALLED_APPS=[],
                   DATABASES={"default": db})
import django; django.setup()
from django.db import connection
from django.http import JsonResponse
from django.urls import path
def view(request):
    with connection.cursor() as c:
        c.execute("SELECT %s::int + 1", [41]); return JsonResponse({"n": c.fetchone()[0]})
urlpatterns = [path("n/", view)]
from django.test import Client
print(json.dumps(Client().get("/n/").json()["n"]))
""",
}
SERVICES = {
    "psycopg2": 5432, "psycopg": 5432, "django": 5432, "redis": 6379, "pika": 5672,
}  # fmt: skip


def _expected(lib: str, spans: list[Any]) -> None:
    kinds = {s.kind for s in spans}
    if lib in ("psycopg2", "psycopg"):
        [sql] = spans
        assert sql.attributes["db.statement"] == "SELECT %s::int + 1"
    elif lib == "redis":
        assert [s.attributes["db.statement"] for s in spans] == [
            "SET lumigo-matrix:x 41", "INCRBY lumigo-matrix:x 1"]  # fmt: skip
    elif lib == "pika":
        assert kinds == {"PRODUCER", "CONSUMER"}
    elif lib == "grpc":
        assert kinds == {"CLIENT", "SERVER"}
        assert all(s.attributes["rpc.request.payload"] == "41" for s in spans)
    elif lib == "httpx":
        assert [s.kind for s in spans] == ["CLIENT"]
    elif lib == "requests":
        [client] = spans
        assert client.kind == "CLIENT"
        assert client.attributes["http.request.body"] == '{"password":"****"}'

    elif lib == "langchain":
        assert [s.name for s in spans] == ["FakeListChatModel.chat"]
    elif lib == "django":
        server = next(s for s in spans if s.kind == "SERVER")
        assert server.attributes["http.route"] == "n/"
        sql = [s for s in spans if s.attributes.get("db.statement") == "SELECT %s::int + 1"]
        assert [s.parent_span_id for s in sql] == [server.span_id]


@pytest.mark.parametrize(
    ("lib", "requirements"),
    [pytest.param(lib, reqs, id=f"{lib}-{label}") for lib in APPS for label, reqs in rows(lib)],
)
def test_library_is_traced_in_its_own_venv(
    lib: str, requirements: list[str], otlp_receiver: Any, tmp_path: Path
) -> None:
    if lib in SERVICES:
        tcp_service("127.0.0.1", SERVICES[lib], lib)
    venv = venv_for(requirements)
    service = f"matrix-{lib}"
    run = run_data_app(venv, "-c", otlp_receiver.url, service, None, ["-c", APPS[lib]])
    assert run.output == 42
    assert "not instrumented" not in run.stderr, run.stderr
    spans = [s for s in otlp_receiver.spans() if s.service == service]
    ours = [s for s in spans if s.attributes.get("db.statement") != "SELECT 1" and (
        lib != "django" or s.kind == "SERVER" or "db.statement" in s.attributes)]  # fmt: skip
    _expected(lib, ours)


def test_a_release_older_than_the_oldest_tested_is_still_traced_as_upstream_does(
    otlp_receiver: Any,
) -> None:
    # redis 4.5 is inside upstream's range (`redis >= 2.6`) but older than the oldest row
    # (4.6): like the upstream distro, ours traces it (a team switching loses no spans)
    tcp_service("127.0.0.1", 6379, "redis")
    venv = venv_for(["redis==4.5.5"])
    run = run_data_app(venv, "-c", otlp_receiver.url, "old-redis", None, ["-c", APPS["redis"]])
    assert run.output == 42
    assert "not instrumented" not in run.stderr, run.stderr
    _expected("redis", [s for s in otlp_receiver.spans() if s.service == "old-redis"])


def test_the_python_3_9_llm_chain_instrumentation_runs_on_wrapt_2(otlp_receiver: Any) -> None:
    # Python 3.9 resolves the LangChain instrumentation to its last 3.9 release (0.50), which
    # calls wrapt with wrapt 1's keywords; the distro adapts them to wrapt 2
    venv = venv_for(rows("langchain", ("newest",))[0][1], python="3.9")
    run = run_data_app(venv, "-c", otlp_receiver.url, "lc-py39", None, ["-c", APPS["langchain"]])
    assert run.output == 42
    assert "not instrumented" not in run.stderr, run.stderr
    spans = [s for s in otlp_receiver.spans() if s.service == "lc-py39"]
    _expected("langchain", spans)
