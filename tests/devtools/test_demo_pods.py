"""The demo's local pod runner keeps Kubernetes env semantics."""

from __future__ import annotations

import pytest

from lumigo_devtools.demo.pods import PlanError, StandIns, plan_container
from lumigo_devtools.demo.waterfall import render
from lumigo_devtools.receiver import ReceivedSpan

STAND_INS = StandIns(
    mounts={"/lumigo-otel": "/tmp/x/otel", "/app": "/tmp/x/app"},
    field_refs={"metadata.name": "web-1", "metadata.namespace": "shop"},
    secrets={("lumigo-credentials", "token"): "t_1"},
    rewrites={"http://orders:8000": "http://127.0.0.1:5555"},
    overrides={"PORT": "6000"},
)


def test_env_in_order_with_var_expansion_fieldrefs_and_secrets() -> None:
    container = {
        "name": "web",
        "command": ["python", "/app/main.py"],
        "env": [
            {"name": "PORT", "value": "8080"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "ATTRS", "value": "k8s.pod.name=$(POD),x=$(LATER),ns=$(NS)"},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "PYTHONPATH", "value": "/lumigo-otel/bootstrap:/app"},
            {"name": "ORDERS_URL", "value": "http://orders:8000/x"},
            {
                "name": "LUMIGO_TRACER_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "lumigo-credentials", "key": "token"}},
            },
            {
                "name": "OPTIONAL",
                "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
            },
        ],
    }
    proc = plan_container(container, STAND_INS, {"PATH": "/bin"})
    assert proc.argv == ["python", "/tmp/x/app/main.py"]
    env = proc.env
    # Only earlier entries expand; an unknown reference stays as written (Kubernetes rule).
    assert env["ATTRS"] == "k8s.pod.name=web-1,x=$(LATER),ns=$(NS)"
    assert env["PYTHONPATH"] == "/tmp/x/otel/bootstrap:/tmp/x/app"
    assert env["ORDERS_URL"] == "http://127.0.0.1:5555/x"
    assert env["LUMIGO_TRACER_TOKEN"] == "t_1"
    assert "OPTIONAL" not in env
    assert env["PORT"] == "6000"
    assert env["PATH"] == "/bin"


def test_missing_stand_in_is_a_clear_error() -> None:
    container = {
        "name": "web",
        "command": ["python"],
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}],
    }
    with pytest.raises(PlanError, match="unsupported valueFrom"):
        plan_container(container, STAND_INS, {})
    with pytest.raises(PlanError, match="no command"):
        plan_container({"name": "web"}, STAND_INS, {})


def _span(name: str, span_id: str, parent: str, service: str, start: int, end: int) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id="ab" * 16,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind="SERVER",
        start_ns=start,
        end_ns=end,
        attributes={"http.route": "/x"},
        resource={"service.name": service},
        scope="s",
        status="UNSET",
    )


def test_waterfall_nests_children_under_parents() -> None:
    text = render(
        [
            _span("child", "02", "01", "orders", 2_000_000, 8_000_000),
            _span("root", "01", "", "frontend", 0, 10_000_000),
        ]
    )
    lines = text.splitlines()
    assert "2 spans" in lines[0] and "frontend, orders" in lines[0]
    root_line = next(i for i, line in enumerate(lines) if "root" in line)
    child_line = next(i for i, line in enumerate(lines) if "child" in line)
    assert root_line < child_line
    assert lines[child_line].startswith("    child")  # indented one level
    assert "10.0 ms" in lines[root_line] and "6.0 ms" in lines[child_line]
