"""`inject -f` writes what it read: strings stay strings for a YAML 1.1 reader, and input
beyond the bounds (alias bombs, deep nesting, text that is not text) exits 2 in one line."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lumigo_injector.k8s.manifest_io import MAX_ALIAS_NODES, dump_documents, load_documents
from lumigo_injector.spec.limits import MAX_DEPTH
from tests.helpers.helm import helm_binary, helm_env

PROG = "lumigo-injector inject"

#: Strings a YAML 1.1 reader (kubectl's go-yaml, PyYAML) takes for another type when plain.
TRICKY = [
    *("y", "Y", "n", "N", "yes", "No", "OFF", "on", "true", "False", "~", "null", "NULL", ""),
    *("1e3", "1e-5", "1E+3", "-2.5e10", "0o17", "0O17", "0x1F", "-0x1f", "0b101", "1_000"),
    *("0_17", "017", "12:30", "1:20:30.5", "+1", "-0", ".5", "1.", "-.inf", ".NaN", "+.INF"),
    *("2001-1-2", "2024-01-31", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5"),
    *("<<", "="),
]
#: Look-alikes that are strings to every reader (must round-trip too, quoted or not).
PLAIN = ["yes please", "Y2K", "0xZZ", "1e", "e3", "inf", "NaN", "12:30pm", "v1.2.3", "1.2.3"]


# ------------------------------------------------------------------ a YAML 1.1 reader oracle


class NotAString:
    """What the oracle reads when a scalar written plain resolves to a non-string."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"NotAString({self.text!r})"


class Yaml11Reader(yaml.SafeLoader):
    """PyYAML's YAML 1.1 resolver, plus what go-yaml v2 (kubectl, helm) resolves beyond it:
    the spec's one-letter booleans and Go's base-prefixed, underscored, dotless numbers."""


_OTHER = "tag:lumigo.test,2026:not-a-string"


def _go_number(text: str) -> bool:
    plain = text.replace("_", "")
    try:
        int(plain, 0)
        return True
    except ValueError:
        pass
    if re.fullmatch(r"[-+]?0[0-7]+", plain):  # Go reads a leading 0 as octal
        return True
    return bool(re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", plain))


def _construct_other(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    text = loader.construct_scalar(node)  # type: ignore[arg-type]
    if text in ("y", "Y", "n", "N") or _go_number(text):
        return NotAString(text)
    return text


Yaml11Reader.add_implicit_resolver(
    _OTHER, re.compile(r"^(?:[yYnN]|[-+.0-9][-+._0-9a-zA-Z]*)$"), list("yYnN-+.0123456789")
)
Yaml11Reader.add_constructor(_OTHER, _construct_other)


def read_yaml11(text: str) -> list[Any]:
    return [doc for doc in yaml.load_all(text, Loader=Yaml11Reader) if doc is not None]


def test_the_oracle_reads_what_pyyaml_writes_plain_as_another_type() -> None:
    """Guard for the oracle: PyYAML's own dumper leaves these plain, and they do not survive."""
    for text in ("y", "N", "1e3", "1e-5", "0o17"):
        assert yaml.safe_dump({"v": text}) == f"v: {text}\n"
        assert not isinstance(read_yaml11(yaml.safe_dump({"v": text}))[0]["v"], str)


# ------------------------------------------------------------------ round trips


def manifests(values: list[str]) -> list[dict[str, Any]]:
    """A ConfigMap with the values as data keys and as data values, and an annotated
    Deployment with them as env values."""
    env = [{"name": f"V{i}", "value": v} for i, v in enumerate(values)]
    data = {**{f"k{i}": v for i, v in enumerate(values)}, **{v: "as-key" for v in values}}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": data},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {
                        "labels": {"app": "web"},
                        "annotations": {"lumigo.io/inject": "python"},
                    },
                    "spec": {"containers": [{"name": "web", "image": "web:1", "env": env}]},
                },
            },
        },
    ]


def env_values(deployment: dict[str, Any]) -> dict[str, Any]:
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e.get("value") for e in env if re.fullmatch(r"V\d+", e["name"])}


def run_cli(
    *args: str, stdin: str | bytes, memory_limit: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The real CLI in a fresh interpreter; `memory_limit` caps its address space (bytes)."""

    def limit() -> None:
        if memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.run(
        [sys.executable, "-m", "lumigo_injector.cli", "inject", *args],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        timeout=120,  # a hang guard, not a speed target
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        preexec_fn=limit,
        check=False,
    )


def test_cli_output_keeps_every_string_a_string_for_a_yaml11_reader() -> None:
    values = TRICKY + PLAIN
    text = yaml.safe_dump_all(manifests(values))
    result = run_cli("-f", "-", stdin=text)
    assert result.returncode == 0, result.stderr.decode()
    configmap, deployment = read_yaml11(result.stdout.decode())
    assert configmap["data"] == manifests(values)[0]["data"]
    assert env_values(deployment) == {f"V{i}": v for i, v in enumerate(values)}
    assert "lumigo.io/injected" in deployment["spec"]["template"]["metadata"]["annotations"]
    # and PyYAML's own YAML 1.1 loader (timestamps included) agrees
    assert next(iter(yaml.safe_load_all(result.stdout)))["data"] == configmap["data"]


def test_kubectls_yaml_reader_gets_the_strings_back(tmp_path: Path) -> None:
    """helm reads values with sigs.k8s.io/yaml, the reader kubectl uses: render them as JSON."""
    values = TRICKY + PLAIN
    written = dump_documents(manifests(values)[:1], "yaml")
    chart = tmp_path / "echo"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: echo\nversion: 0.1.0\n")
    (chart / "templates" / "values.json").write_text("{{ toJson .Values }}\n")
    (tmp_path / "values.yaml").write_text(written)
    proc = subprocess.run(
        [helm_binary(), "template", "echo", str(chart), "-f", str(tmp_path / "values.yaml")],
        capture_output=True,
        text=True,
        env=helm_env(tmp_path / "helm-home"),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rendered = json.loads(proc.stdout.split("\n", 2)[2])
    assert rendered["data"] == manifests(values)[0]["data"]


_tricky_text = st.one_of(
    st.sampled_from(TRICKY + PLAIN),
    st.text(max_size=12),
    st.from_regex(r"\A[-+]?[0-9_]{1,4}([.:eExXoObB][-+]?[0-9a-fA-F_]{0,4}){0,2}\Z"),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_tricky_text, min_size=1, max_size=8))
def test_any_string_round_trips_through_a_yaml11_reader(values: list[str]) -> None:
    documents = manifests(values)
    text = dump_documents(documents, "yaml")
    assert read_yaml11(text) == documents
    assert load_documents(text)[0] == documents


# ------------------------------------------------------------------ bounded input


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  " + "\n  ".join(lines)


#: Address space for the CLI (its Python, PyYAML and boto3 fit in well under this); an
#: unbounded expansion runs into it with a MemoryError and a traceback instead of exit 2.
MEMORY_LIMIT = 1 << 30


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (billion_laughs(), f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes"),
        ("a: " + "[" * 100_000 + "]" * 100_000, f"nested deeper than {MAX_DEPTH} levels"),
        ("- " * 10_000 + "x", f"nested deeper than {MAX_DEPTH} levels"),
        ("[" * 10_000 + "]" * 10_000, f"nested deeper than {MAX_DEPTH} levels"),
        ('{"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "x\\ud800"}}', "lone surrogate"),
        ('{"apiVersion": "v1", "kind": "ConfigMap", "data": {"\\udfff": "x"}}', "lone surrogate"),
        (b"apiVersion: v1\nkind: ConfigMap\ndata: {a: \xff\xfe}\n", "not UTF-8 text"),
    ],
    ids=["alias-bomb", "deep-yaml-flow", "deep-yaml-block", "deep-json", "surrogate-value",
         "surrogate-key", "invalid-utf8"],
)  # fmt: skip
def test_input_beyond_the_bounds_exits_2_in_one_line(stdin: str | bytes, message: str) -> None:
    result = run_cli("-f", "-", stdin=stdin, memory_limit=MEMORY_LIMIT)
    stderr = result.stderr.decode()
    assert (result.returncode, result.stdout) == (2, b""), stderr[-2000:]
    assert stderr.startswith(f"{PROG}: error: stdin: ") and stderr.count("\n") == 1, stderr
    assert message in stderr


def test_aliases_within_the_bound_still_expand() -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {lumigo.io/inject: python}
    spec:
      containers:
      - name: web
        image: web:1
        env: &env [{name: MODE, value: "y"}, {name: LEVEL, value: "1e3"}]
      - name: worker
        image: web:1
        env: *env
"""
    result = run_cli("-f", "-", stdin=text, memory_limit=MEMORY_LIMIT)
    assert result.returncode == 0, result.stderr.decode()
    (deployment,) = read_yaml11(result.stdout.decode())
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert (env["MODE"], env["LEVEL"]) == ("y", "1e3")
        assert "PYTHONPATH" in env
