"""pymysql end to end: an unmodified app in its own venv (pymysql 1.0 and newest), env-injected,
against the MariaDB at 127.0.0.1:3306; spans checked at the OTLP receiver. Also the
version gate, with a PyMySQL 2.0 (out of the supported range) on the app's path."""

from __future__ import annotations

from pathlib import Path

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.data_apps import run_data_app, venv_for, venv_params
from tests.helpers.need import tcp_service
from tests.helpers.versions import rows

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=venv_params("pymysql"))
def venv(request: pytest.FixtureRequest) -> Path:
    return venv_for(request.param)


def test_mysql_app_is_traced_with_its_statements(venv: Path, otlp_receiver: OtlpReceiver) -> None:
    tcp_service("127.0.0.1", 3306, "MariaDB")
    run = run_data_app(venv, "mysql_app.py", otlp_receiver.url, "mysql-app")
    out = run.output
    assert out["rows"] == [["A-7"]]
    assert out["lazy"]["before_import"] == {"distro_active": True, "loaded": []}
    after = out["lazy"]["after_import"]["loaded"]
    assert "pymysql" in after and "lumigo_opentelemetry.instrumentations.pymysql" in after

    table = out["table"]
    expected = [
        f"CREATE TABLE {table} (id INT PRIMARY KEY, sku VARCHAR(20))",
        f"INSERT INTO {table} (id, sku) VALUES (%s, %s)",
        f"SELECT sku FROM {table} WHERE id = %s",
        f"DROP TABLE {table}",
    ]
    spans = otlp_receiver.wait_for_spans(4, where=lambda s: "db.statement" in s.attributes)
    assert [s.attributes["db.statement"] for s in spans] == expected
    for span in spans:
        assert span.kind == "CLIENT"
        assert span.service == "mysql-app"
        assert span.attributes["db.system"] == "mysql"
        assert span.attributes["db.name"] == "test"
        assert span.parent_span_id == ""
    assert [s.name for s in spans][1:3] == ["INSERT", "SELECT"]


FAKE_PYMYSQL = '''"""Stands in for a PyMySQL release outside the supported range."""
class _Connection:
    def ping(self):
        return "pong"
def connect(*args, **kwargs):
    return _Connection()
'''


def test_an_out_of_range_pymysql_is_left_alone_with_one_info_line(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    (tmp_path / "pymysql").mkdir()
    (tmp_path / "pymysql" / "__init__.py").write_text(FAKE_PYMYSQL)
    info = tmp_path / "PyMySQL-2.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: PyMySQL\nVersion: 2.0.0\n")
    venv = venv_for(rows("pymysql", ("newest",))[0][1])
    code = (
        "import json, pymysql; "
        "print(json.dumps({'ping': pymysql.connect().ping(), "
        "'wrapped': hasattr(pymysql.connect, '__wrapped__')}))"
    )
    run = run_data_app(
        venv, "-c", otlp_receiver.url, "mysql-app", {"PYTHONPATH": str(tmp_path)}, ["-c", code]
    )
    assert run.output == {"ping": "pong", "wrapped": False}
    gate_lines = [line for line in run.stderr.splitlines() if "pymysql" in line.lower()]
    assert len(gate_lines) == 1, run.stderr
    assert "INFO" in gate_lines[0] and "2.0.0" in gate_lines[0]
