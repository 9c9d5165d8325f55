"""The `init` image, assembled from the Dockerfile's stage and run the way a pod runs it.

One root filesystem (busybox-static + the built layer where the Dockerfile copies it) serves
both deliveries: its entrypoint, run as the init container would (chroot, uid 65532, no
capabilities, the emptyDir the only writable path), copies the layer that then serves an
app; and the same tree's layer folder, mounted read-only at the subPath the mutation uses,
serves an app as the image volume, with nothing copied and nothing written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_injector.k8s.mutation import InjectionSettings, inject
from lumigo_injector.k8s.steps import init_container
from lumigo_injector.spec import names as c
from tests.helpers.init_image import (
    assemble_rootfs,
    init_stage,
    read_only_mount,
    run_in_container,
)
from tests.helpers.layer_apps import (
    Exercise,
    RunningApp,
    exercise,
    injected_env,
    layer_for_tests,
    make_venv,
    plain_env,
    tree_entries,
    write_flask_app,
)

pytestmark = pytest.mark.slow

HELLO_PATHS = ("/hello/alpha", "/hello/beta")


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield assemble_rootfs(tmp_path_factory.mktemp("init-image") / "rootfs", layer_for_tests())


def _shape(root: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mode bits), comparable between a tree and its copy."""
    shape = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            info = os.lstat(os.path.join(folder, name))
            shape[os.path.relpath(os.path.join(folder, name), root)] = (info.st_size, info.st_mode)
    return shape


def _served(
    receiver: OtlpReceiver,
    layer_at: Path,
    service: str,
    tmp_path: Path,
    wrapper: Sequence[str] = (),
) -> Exercise:
    """Run a Flask app with the layer at `layer_at`: same answers as without, traced."""
    venv = make_venv("3.11", ["flask"])
    script = write_flask_app(tmp_path / "app")
    baseline = exercise(venv, script, plain_env(), HELLO_PATHS)

    def spans_arrive(_app: RunningApp) -> None:
        where = lambda s: s.service == service and s.kind == "SERVER"  # noqa: E731
        receiver.wait_for_spans(len(HELLO_PATHS), timeout=30, where=where)

    injected = exercise(
        venv, script, injected_env(layer_at, receiver.url, service), HELLO_PATHS,
        while_running=spans_arrive, wrapper=wrapper,
    )  # fmt: skip
    assert injected.bodies == baseline.bodies
    assert injected.output.stdout == baseline.output.stdout
    assert injected.output.layer_warnings() == [], injected.output.stderr
    assert "Traceback" not in injected.output.stderr
    return injected


def test_the_layer_lies_where_the_image_volume_subpath_points() -> None:
    stage = init_stage()
    assert stage.layer_path == "/" + c.LAYER_IMAGE_SUBPATH
    assert stage.user == f"{c.INIT_CONTAINER_USER}:{c.INIT_CONTAINER_USER}"
    assert stage.entrypoint == ["/bin/sh", f"{stage.layer_path}/copy-layer.sh"]
    assert stage.cmd == [c.MOUNT_PATH]


def test_init_container_copies_the_layer_as_uid_65532_into_the_empty_dir_only(
    rootfs: Path, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """The pod's init container: the image's ENTRYPOINT with the args the mutation sets."""
    stage = init_stage()
    spec = init_container(InjectionSettings(), {})
    [mount] = spec["volumeMounts"]
    empty_dir = tmp_path / "empty-dir"
    empty_dir.mkdir(mode=0o777)
    os.chmod(empty_dir, 0o777)  # as the kubelet creates an emptyDir
    image_before = tree_entries(rootfs)
    done = run_in_container(
        rootfs, [*stage.entrypoint, *spec["args"]], {mount["mountPath"]: empty_dir}, stage.user
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"lumigo-otel layer copied to {c.MOUNT_PATH}"
    layer_in_image = rootfs / c.LAYER_IMAGE_SUBPATH
    assert _shape(empty_dir) == _shape(layer_in_image)
    owners = {os.lstat(os.path.join(f, n)).st_uid for f, _d, ns in os.walk(empty_dir) for n in ns}
    assert owners == {c.INIT_CONTAINER_USER}
    mount_point = mount["mountPath"].lstrip("/")  # made by the runtime, empty underneath
    assert tree_entries(rootfs) == image_before | {mount_point}  # the image is untouched
    assert list((rootfs / mount_point).iterdir()) == []
    # the emptyDir is the only writable path: the image's own /tmp is not
    tried = run_in_container(
        rootfs, ["/bin/sh", "-c", "touch /tmp/x; touch /lumigo-otel/x && id -u"],
        {mount["mountPath"]: empty_dir}, stage.user,
    )  # fmt: skip
    assert "Read-only file system" in tried.stderr
    assert tried.stdout.strip() == str(c.INIT_CONTAINER_USER)
    (empty_dir / "x").unlink()
    _served(otlp_receiver, empty_dir, "init-copy", tmp_path)


def test_image_volume_serves_the_app_from_the_image_read_only_with_no_copy(
    rootfs: Path, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """The pod's image volume: the mutation's subPath of the same tree, mounted read-only."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "annotations": {c.ANNOTATION_INJECT: "python"}},
        "spec": {"containers": [{"name": "web", "image": "python:3.11"}]},
    }
    out = inject(pod, InjectionSettings(delivery="image-volume")).obj
    [mount] = out["spec"]["containers"][0]["volumeMounts"]
    source = rootfs / mount["subPath"]
    target = tmp_path / "mnt" / mount["mountPath"].lstrip("/")
    target.mkdir(parents=True)
    before = _shape(rootfs)
    run = _served(
        otlp_receiver, target, "image-volume", tmp_path, wrapper=read_only_mount(source, target)
    )
    assert run.facts["modules"]["lumigo_opentelemetry"].startswith(str(target))
    assert _shape(rootfs) == before  # nothing copied into or written to the image
    assert list(target.iterdir()) == []  # the mount lived in the app's namespace only
