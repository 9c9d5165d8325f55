"""The injector's layers: imports run one way, `spec/` does no I/O, production never imports
the development tools, and the operator image's dependencies carry no development package."""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "injector" / "src" / "lumigo_injector"

#: For each part, the parts it may import (besides itself and the package's `__version__`).
ALLOWED = {
    "spec": set(),
    "k8s": {"spec"},
    "ecs": {"spec"},
    "serve": {"k8s", "spec"},
    "layer": set(),
    "commands": {"spec", "k8s", "ecs", "serve", "layer"},
    "cli": {"commands"},
}
#: Modules that would mean I/O (files, processes, network, cluster, cloud) in the pure core.
IO_MODULES = {
    "os", "io", "pathlib", "shutil", "subprocess", "socket", "urllib", "http", "asyncio",
    "aiohttp", "kopf", "kubernetes", "boto3", "botocore", "yaml", "logging", "time",
}  # fmt: skip


def _part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.name == "cli.py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path: Path) -> None:
    part = _part(path)
    allowed = ALLOWED[part] | {part}
    wrong = set()
    for name in _imports(path):
        if name.startswith("lumigo_devtools"):
            wrong.add(name)
        elif name.startswith("lumigo_injector."):
            target = name.split(".")[1]
            if target not in allowed and target != "__version__":
                wrong.add(name)
    assert not wrong, f"{part}/ may import only {sorted(allowed)}; found {sorted(wrong)}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "spec").glob("*.py")), ids=lambda p: p.name)
def test_spec_does_no_io(path: Path) -> None:
    io = {name for name in _imports(path) if name.split(".")[0] in IO_MODULES}
    assert not io, f"spec/{path.name} imports {sorted(io)}"


def test_layer_names_agree_with_the_injection_paths() -> None:
    """`layer/` stands alone, so it spells its folder names; they must match `spec.names`."""
    from lumigo_injector.layer.copy import DEFAULT_DESTINATION
    from lumigo_injector.layer.manifest import BOOTSTRAP_DIR
    from lumigo_injector.spec import names

    assert names.MOUNT_PATH == DEFAULT_DESTINATION
    assert f"{names.MOUNT_PATH}/{BOOTSTRAP_DIR}" == names.BOOTSTRAP_PATH


def _closure(lock: dict[str, list[dict[str, object]]], root: str) -> set[str]:
    packages = {p["name"]: p for p in lock["package"]}
    seen, queue = {root}, deque([root])
    while queue:
        for dep in packages[queue.popleft()].get("dependencies", []):  # type: ignore[union-attr]
            name = str(dep["name"])  # type: ignore[index]
            if name not in seen:
                seen.add(name)
                queue.append(name)
    return seen


def test_operator_image_installs_no_development_dependency() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    operator = _closure(lock, "lumigo-injector")
    for dev in ("opentelemetry-proto", "lumigo-devtools", "lumigo-opentelemetry", "protobuf"):
        assert dev not in operator
    assert "opentelemetry-proto" in _closure(lock, "lumigo-devtools")  # the check can fail

    stages = (ROOT / "Dockerfile").read_text().split("\nFROM ")
    injector = next(s for s in stages if " AS injector" in s.splitlines()[0])
    installs = [line for line in injector.splitlines() if "pip install" in line]
    assert installs == ["RUN pip install --no-cache-dir ./injector"]
    assert "devtools" not in injector and "COPY distro" not in injector
