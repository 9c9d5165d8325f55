"""The demo, step by step: build, inject, receive, run, call, show, clean up."""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from lumigo_devtools.demo.apps import DemoError, RunningApp, app_venv, free_port
from lumigo_devtools.demo.diff import document_diff
from lumigo_devtools.demo.pods import PlanError, StandIns, plan_container
from lumigo_devtools.demo.progress import Progress
from lumigo_devtools.demo.waterfall import group_traces, render, services
from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan

DEMO_TOKEN = "t_demo0000000000000000"  # the local stand-in for the lumigo-credentials Secret
SECRET_VALUE = "hunter2"  # sent in a `password` field; must never reach the receiver
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass
class DemoOptions:
    manifest: Path
    namespace: str = "default"
    receiver_port: int = 0
    workdir: Path | None = None
    color: bool = False


def default_manifest() -> Path:
    """`examples/kubernetes/shop.yaml` of the source tree (or the copy shipped in the wheel)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "examples" / "kubernetes" / "shop.yaml"
        if candidate.exists():
            return candidate
    return here.with_name("shop.yaml")


def load_documents(path: Path) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise DemoError(f"cannot read manifest {path}: {exc}") from exc
    if not all(isinstance(d, dict) for d in docs):
        raise DemoError(f"{path}: every YAML document must be a mapping")
    return docs


def inject_documents(
    docs: list[dict[str, Any]], endpoint: str | None = None
) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    """(original, injected, reason) per document, through the webhook's own mutation."""
    from lumigo_injector.k8s.mutation import InjectionSettings, inject

    settings = InjectionSettings(endpoint=endpoint) if endpoint else InjectionSettings()
    out = []
    for doc in docs:
        result = inject(doc, settings)
        out.append((doc, result.obj, result.reason))
    return out


def preview(manifest: Path, out: TextIO, color: bool) -> int:
    """`demo --manifest FILE`: print the injection diff only."""
    docs = load_documents(manifest)
    for original, injected, reason in inject_documents(docs):
        name = f"{original.get('kind')}/{original.get('metadata', {}).get('name')}"
        if original == injected:
            out.write(f"= {name}: unchanged ({reason})\n")
        else:
            out.write(document_diff(original, injected, color) + "\n\n")
    return 0


# ---------------------------------------------------------------------------------------


def _config_maps(docs: list[dict[str, Any]]) -> dict[str, Mapping[str, str]]:
    return {d["metadata"]["name"]: d.get("data", {}) for d in docs if d.get("kind") == "ConfigMap"}


def _service_ports(docs: list[dict[str, Any]]) -> list[tuple[str, int, dict[str, str], int]]:
    """(service name, port, selector, targetPort) for each Service port."""
    out = []
    for d in docs:
        if d.get("kind") != "Service":
            continue
        selector = d.get("spec", {}).get("selector", {})
        for port in d.get("spec", {}).get("ports", []):
            target = port.get("targetPort", port["port"])
            out.append((d["metadata"]["name"], int(port["port"]), selector, int(target)))
    return out


@dataclass
class _Workload:
    name: str
    doc: dict[str, Any]
    template: dict[str, Any]
    container: dict[str, Any]
    port: int
    local_port: int = 0


def _workloads(injected: list[dict[str, Any]]) -> list[_Workload]:
    found = []
    for doc in injected:
        if doc.get("kind") not in WORKLOAD_KINDS:
            continue
        template = doc["spec"]["template"]
        container = template["spec"]["containers"][0]
        ports = container.get("ports") or []
        if not ports:
            raise DemoError(f"{doc['metadata']['name']}: the demo runs containers with a port")
        found.append(
            _Workload(doc["metadata"]["name"], doc, template, container, ports[0]["containerPort"])
        )
    return found


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _prepare_volumes(
    work: _Workload, config_maps: dict[str, Mapping[str, str]], root: Path, layer: Path
) -> tuple[dict[str, str], str, str]:
    """Local directories for the pod's volumes; returns (mounts, app requirements, delivery).

    An emptyDir is a fresh directory (the init container's copy of the layer goes there); an
    image volume of the layer's image is the built layer directory itself, used as it is:
    no copy, as the kubelet mounts the image read-only.
    """
    from lumigo_injector.layer import copy_layer
    from lumigo_injector.spec.names import LAYER_IMAGE_SUBPATH

    spec = work.template["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    local: dict[str, Path] = {}
    images: dict[str, Path] = {}
    requirements = ""
    for name, volume in volumes.items():
        if "image" in volume:
            images[name] = layer
            continue
        path = root / work.name / "volumes" / name
        path.mkdir(parents=True)
        if "configMap" in volume:
            data = config_maps.get(volume["configMap"]["name"])
            if data is None:
                raise DemoError(f"ConfigMap {volume['configMap']['name']} is not in the manifest")
            for key, text in data.items():
                (path / key).write_text(text)
            requirements += data.get("requirements.txt", "")
        elif "emptyDir" not in volume:
            raise DemoError(
                f"{work.name}: volume {name} is neither a ConfigMap, an emptyDir nor an image"
            )
        local[name] = path
    # The init containers' step: the layer image copies the layer into the shared volume.
    for init in spec.get("initContainers", []):
        for mount in init.get("volumeMounts", []):
            copy_layer(layer, local[mount["name"]])
    mounts: dict[str, str] = {}
    for mount in work.container.get("volumeMounts", []):
        name = mount["name"]
        if name in images:
            if mount.get("subPath") != LAYER_IMAGE_SUBPATH:
                raise DemoError(f"{work.name}: image volume {name} without the layer's subPath")
            mounts[mount["mountPath"]] = str(images[name])
        else:
            mounts[mount["mountPath"]] = str(local[name])
    delivery = "image volume (the layer read-only, no copy)" if images else "init container copy"
    return mounts, requirements, delivery


def _stand_ins(
    work: _Workload,
    mounts: dict[str, str],
    rewrites: dict[str, str],
    namespace: str,
    receiver: OtlpReceiver,
) -> StandIns:
    pod_name = f"{work.name}-{uuid.uuid4().hex[:10]}-{uuid.uuid4().hex[:5]}"
    env_names = {e["name"] for e in work.container.get("env", [])}
    overrides = {
        # Where the receiver listens locally, and a short batch delay so the demo is quick.
        "LUMIGO_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    if "PORT" in env_names:
        overrides["PORT"] = str(work.local_port)
    return StandIns(
        mounts=mounts,
        field_refs={
            "metadata.name": pod_name,
            "metadata.namespace": namespace,
            "metadata.uid": str(uuid.uuid4()),
            "spec.nodeName": "demo-node",
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
            "spec.serviceAccountName": "default",
        },
        secrets={("lumigo-credentials", "token"): DEMO_TOKEN},
        rewrites=rewrites,
        overrides=overrides,
    )


def _request(url: str, body: Mapping[str, Any] | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=15) as resp:
        return resp.status, resp.read().decode()


def _crossing_checkout(spans: list[ReceivedSpan]) -> bool:
    for trace in group_traces(spans):
        if len(services(trace)) >= 2 and any(
            "lumigo.execution_tags.order_id" in s.attributes for s in trace
        ):
            return True
    return False


def run(options: DemoOptions, out: TextIO) -> int:
    """The full demo. Raises DemoError with a clear message when a step fails."""
    from lumigo_injector.layer import cached_layer

    progress = Progress(6, out)
    with ExitStack() as stack:
        root = options.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        python = f"{sys.version_info.major}.{sys.version_info.minor}"

        with progress.step(f"Build the layer for Python {python} (cached after the first run)"):
            try:
                layer = cached_layer(pythons=[python])
            except Exception as exc:
                raise DemoError(f"layer build failed: {exc}") from exc
            progress.note(f"layer: {layer}")

        docs = load_documents(options.manifest)
        with progress.step(f"Inject {options.manifest.name} (the webhook's mutation)"):
            injected = inject_documents(docs)
        for original, mutated, reason in injected:
            if original != mutated:
                out.write(document_diff(original, mutated, options.color) + "\n")
            else:
                kind, name = original.get("kind"), original.get("metadata", {}).get("name")
                progress.note(f"{kind}/{name}: unchanged ({reason})")

        with progress.step("Start the embedded OTLP/HTTP receiver"):
            try:
                receiver = OtlpReceiver(port=options.receiver_port)
            except OSError as exc:
                raise DemoError(
                    f"cannot listen on 127.0.0.1:{options.receiver_port} ({exc}); "
                    "free the port or pass --receiver-port 0"
                ) from exc
            stack.enter_context(receiver)
            progress.note(f"receiver: {receiver.url}")

        workloads = _workloads([m for _, m, _ in injected])
        for work in workloads:
            work.local_port = free_port()
        rewrites: dict[str, str] = {}
        for svc, port, selector, target in _service_ports(docs):
            for work in workloads:
                labels = work.template.get("metadata", {}).get("labels", {})
                if _matches(selector, labels) and target == work.port:
                    rewrites[f"http://{svc}:{port}"] = f"http://127.0.0.1:{work.local_port}"
        config_maps = _config_maps(docs)
        running: list[RunningApp] = []
        stack.callback(_stop_all, running)

        with progress.step("Run each container as its pod would (layer, env, own venv)"):
            for work in workloads:
                mounts, requirements, delivery = _prepare_volumes(work, config_maps, root, layer)
                venv = app_venv(requirements)
                stand_ins = _stand_ins(work, mounts, rewrites, options.namespace, receiver)
                base_env = {
                    "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                    "HOME": str(root / work.name),
                    "LANG": "C.UTF-8",
                }
                try:
                    process = plan_container(work.container, stand_ins, base_env)
                except PlanError as exc:
                    raise DemoError(f"{work.name}: {exc}") from exc
                app = RunningApp(process, work.name, root)
                running.append(app)
                progress.note(
                    f"{work.name}: pid {app.popen.pid}, 127.0.0.1:{work.local_port}, "
                    f"service {process.env.get('OTEL_SERVICE_NAME', '?')}, layer by {delivery}"
                )
            for work, app in zip(workloads, running):
                app.wait_listening(work.local_port)

        front = next((w for w in workloads if w.name == "frontend"), workloads[0])
        base = f"http://127.0.0.1:{front.local_port}"
        with progress.step("Send requests (one carries a password)"):
            for path, body in (
                ("/", None),
                ("/checkout", {"item": "book", "qty": 2, "password": SECRET_VALUE}),
                ("/", None),
            ):
                status, text = _request(base + path, body)
                progress.note(f"{'POST' if body else 'GET '} {path} -> {status} {text.strip()}")
            try:
                spans = receiver.wait_for(_crossing_checkout, timeout=30)
            except TimeoutError as exc:
                logs = "\n".join(f"--- {a.workload}\n{a.log_tail()}" for a in running)
                raise DemoError(f"the traces did not arrive: {exc}\n{logs}") from exc
            time.sleep(0.5)  # let the last batch land
            spans = receiver.spans()

        with progress.step("Show the traces"):
            out.write(render(spans) + "\n")
        leaked = [s for s in spans if SECRET_VALUE in json.dumps(s.attributes)]
        crossing = [t for t in group_traces(spans) if len(services(t)) >= 2]
        out.write(
            f"\n{len(spans)} spans in {len(group_traces(spans))} traces; "
            f"{len(crossing)} cross both services; "
            f"password {'LEAKED' if leaked else 'masked'} in every payload.\n"
        )
        if leaked:
            raise DemoError("a password value reached the receiver unmasked")
    out.write("All demo processes stopped.\n")
    return 0


def _stop_all(apps: list[RunningApp]) -> None:
    for app in reversed(apps):
        app.stop()
