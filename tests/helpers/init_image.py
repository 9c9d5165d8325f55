"""The Dockerfile's `init` image as close to real as a machine without Docker allows.

- `init_stage()`: what the Dockerfile's `init` stage says (base, where the layer is copied,
  USER, ENTRYPOINT, CMD), read from the file itself.
- `assemble_rootfs(root, layer)`: that image's root filesystem, built the way the stage
  builds it: Debian's `busybox-static` as the busybox base (the binary plus one hard link per
  applet in /bin, as the busybox image has them) and the built layer at the stage's path.
- `run_in_container(root, argv, volumes)`: a command in a chroot of that tree as the
  container would run it: the tree read-only, the given volumes bind-mounted (the emptyDir
  writable), as the image's user with no capabilities and no_new_privs (`unshare` for a
  private mount namespace, `setpriv`, `chroot --userspec`).
- `read_only_mount(source, target)`: a command prefix that runs a process in a private mount
  namespace where `source` is bind-mounted read-only at `target`: the kubelet's image volume
  with a subPath.

All of it needs root and mount namespaces: without them the tests skip locally and fail on CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lumigo_injector.layer import copy_layer
from tests.helpers import need

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
BUSYBOX = "/bin/busybox"  # what Debian's busybox-static installs


@dataclass(frozen=True)
class InitStage:
    """The `init` stage of the Dockerfile."""

    base: str
    layer_path: str
    user: str
    entrypoint: list[str]
    cmd: list[str]


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if not raw.strip() or raw.strip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append((pending + raw).strip())
        pending = ""
    return lines


def init_stage(dockerfile: Path = DOCKERFILE) -> InitStage:
    """Parse the `FROM ... AS init` stage (up to the next FROM)."""
    stage: list[tuple[str, str]] = []
    base = ""
    for line in _logical_lines(dockerfile.read_text()):
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            if base:
                break  # the next stage
            parts = rest.split()
            if len(parts) >= 3 and parts[-2].upper() == "AS" and parts[-1] == "init":
                base = parts[-3]
            continue
        if base:
            stage.append((word.upper(), rest.strip()))
    assert base, "the Dockerfile has no `init` stage"
    copies = [args.split() for word, args in stage if word == "COPY"]
    layer_copy = next(c for c in copies if c[0] == "--from=layer-builder")
    users = [args for word, args in stage if word == "USER"]
    entrypoints = [json.loads(args) for word, args in stage if word == "ENTRYPOINT"]
    cmds = [json.loads(args) for word, args in stage if word == "CMD"]
    return InitStage(base, layer_copy[-1], users[-1], entrypoints[-1], cmds[-1] if cmds else [])


def busybox_static() -> str:
    """Debian's statically linked busybox (installed with apt-get when missing)."""
    return need.debian_package("busybox-static", BUSYBOX)


def assemble_rootfs(root: Path, layer: Path, stage: InitStage | None = None) -> Path:
    """The init image's root filesystem under `root`, files owned by root as COPY makes them."""
    stage = stage or init_stage()
    assert stage.base.startswith("busybox:"), f"the init stage is based on {stage.base}"
    busybox = busybox_static()
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy2(busybox, bin_dir / "busybox")
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.link(bin_dir / "busybox", bin_dir / applet)
    etc = root / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
    )
    (etc / "group").write_text("root:x:0:\nnobody:x:65534:\n")
    (root / "tmp").mkdir(mode=0o1777)
    os.chmod(root / "tmp", 0o1777)
    copy_layer(layer, root / stage.layer_path.lstrip("/"))
    return root


def _require_namespaces() -> None:
    for tool in ("unshare", "setpriv", "chroot", "mount"):
        need.executable(tool)
    if os.geteuid() != 0:
        need.missing("running the init image in a chroot needs root (mount namespaces)")
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "true"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        need.missing(f"no mount namespaces here: {probe.stderr.decode(errors='replace').strip()}")


_CONTAINER_SCRIPT = """
set -eu
root=$1; user=$2; volumes=$3; shift 3
for pair in $volumes; do
  host=${pair%%=*}; path=${pair#*=}
  mkdir -p "$root$path"
done
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
for pair in $volumes; do
  host=${pair%%=*}; path=${pair#*=}
  mount --bind "$host" "$root$path"
done
exec setpriv --no-new-privs --bounding-set -all,+sys_chroot,+setuid,+setgid -- \\
  chroot --userspec="$user" "$root" "$@"
"""


def run_in_container(
    root: Path,
    argv: Sequence[str],
    volumes: Mapping[str, Path],
    user: str,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in a chroot of `root` (read-only) as `user`, `volumes` (container path ->
    host directory) bind-mounted writable, nothing else writable; no capabilities left."""
    _require_namespaces()
    pairs = " ".join(f"{host}={path}" for path, host in volumes.items())
    for path, host in volumes.items():
        assert " " not in str(host) + path and "=" not in str(host) + path
    command = [
        "unshare", "--mount", "--propagation", "private", "--",
        "/bin/sh", "-c", _CONTAINER_SCRIPT, "container", str(root), user, pairs, *argv,
    ]  # fmt: skip
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


_READ_ONLY_MOUNT = 'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && shift 2 && exec "$@"'


def read_only_mount(source: Path, target: Path) -> list[str]:
    """A command prefix: run the rest with `source` mounted read-only at `target` (a private
    mount namespace of that process only; `target` must exist)."""
    _require_namespaces()
    return [
        "unshare", "--mount", "--propagation", "private", "--",
        "/bin/sh", "-c", _READ_ONLY_MOUNT, "image-volume", str(source), str(target),
    ]  # fmt: skip
