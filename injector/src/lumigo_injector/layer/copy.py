"""Copying a built layer into the shared volume: what the init container does.

Two implementations with one behaviour: `copy-layer.sh` (shipped inside the layer; the init
image runs it with busybox `sh`) and `copy_layer` (Python; the CLI, the demo and tests).
Both replace the destination's contents and keep hard links, so the deduplicated files
stay stored once in the volume too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lumigo_injector.layer.manifest import BOOTSTRAP_DIR, MANIFEST_NAME

DEFAULT_DESTINATION = "/lumigo-otel"

COPY_SCRIPT_TEXT = """\
#!/bin/sh
# Copy this Lumigo OpenTelemetry layer into the shared volume, then exit 0.
# The init container's only step. Usage: copy-layer.sh [DEST]  (default $LUMIGO_LAYER_DEST,
# else /lumigo-otel). DEST's previous contents are replaced; hard links are kept (tar);
# -o: files belong to whoever runs this (GNU tar and busybox tar alike).
set -eu
src=$(cd "$(dirname "$0")" && pwd)
dest=${1:-${LUMIGO_LAYER_DEST:-/lumigo-otel}}
mkdir -p "$dest"
find "$dest" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
(cd "$src" && tar -cf - .) | (cd "$dest" && tar -x -o -f -)
test -f "$dest/bootstrap/sitecustomize.py"
echo "lumigo-otel layer copied to $dest"
"""


class LayerCopyError(RuntimeError):
    """The source is not a layer, or the destination cannot take it."""


def copy_layer(src: Path, dest: Path) -> None:
    """Replace `dest`'s contents with the layer at `src`, keeping hard links as hard links."""
    src, dest = Path(src), Path(dest)
    if not (src / MANIFEST_NAME).is_file() or not (src / BOOTSTRAP_DIR).is_dir():
        raise LayerCopyError(f"{src} is not a built layer (no {MANIFEST_NAME} or {BOOTSTRAP_DIR}/)")
    if dest.resolve() == src.resolve():
        raise LayerCopyError("source and destination are the same directory")
    dest.mkdir(parents=True, exist_ok=True)
    for child in list(dest.iterdir()):
        if child.is_dir() and not child.is_symlink():
            _remove_tree(child)
        else:
            child.unlink()
    copied: dict[tuple[int, int], str] = {}
    for folder, dirs, files in os.walk(src):
        relative = os.path.relpath(folder, src)
        target_dir = dest if relative == "." else dest / relative
        for name in dirs:
            (target_dir / name).mkdir()
        for name in files:
            source = os.path.join(folder, name)
            target = str(target_dir / name)
            info = os.lstat(source)
            key = (info.st_dev, info.st_ino)
            if os.path.islink(source):
                os.symlink(os.readlink(source), target)
            elif info.st_nlink > 1 and key in copied:
                os.link(copied[key], target)
            else:
                shutil.copy2(source, target)
                copied[key] = target
        shutil.copystat(folder, target_dir)


def _remove_tree(path: Path) -> None:
    """rmtree that also clears read-only directories left by an earlier copy."""
    for folder, _dirs, _files in os.walk(path):
        os.chmod(folder, 0o755)
    shutil.rmtree(path)
