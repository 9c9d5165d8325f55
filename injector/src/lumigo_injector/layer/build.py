"""Building the layer: every package set, deduplicated, plus the bootstrap and the manifest.

Layout of a built layer (see docs/layer.md):

    bootstrap/sitecustomize.py   the only directory apps put on PYTHONPATH
    py3.X-<libc>-<arch>/         one package set per interpreter, libc and architecture
    shared/<hash>                files found in two or more sets, hard-linked into each
    manifest.json                LayerManifest
    copy-layer.sh                the init container's entrypoint
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from lumigo_injector import __version__
from lumigo_injector.layer.copy import COPY_SCRIPT_TEXT
from lumigo_injector.layer.locks import LOCK_DIR, LockError, check_lock, declared_requirements
from lumigo_injector.layer.manifest import (
    ARCHES,
    BOOTSTRAP_DIR,
    BOOTSTRAP_IMPL_DIR,
    COPY_SCRIPT,
    MANIFEST_NAME,
    PLATFORMS,
    ROOT_DIST,
    SET_FILE,
    SHARED_DIR,
    SUPPORTED_PYTHONS,
    LayerManifest,
    PackageSet,
    set_name,
    set_requirements_text,
    validate_python,
)
from lumigo_injector.layer.sbom import SBOM_NAME, layer_sbom
from lumigo_injector.layer.sets import (
    INSTALLED_FILE,
    LayerBuildError,
    install_set,
    marker_environment,
    read_installed,
    read_package_set,
)

Progress = Callable[[str], None]

BOOTSTRAP_SOURCE = Path(__file__).parent / "bootstrap" / "sitecustomize.py"
BOOTSTRAP_IMPL_SOURCE = Path(__file__).parent / "bootstrap" / "lumigo_bootstrap.py"
# Bump when pip's part of making a set changes, so cached sets are rebuilt.
SET_RECIPE_VERSION = "2"
RAW_COMPLETE = ".lumigo-raw-complete"  # marks a finished pip install in the set cache
PYCACHE_BLOCKER = "A file, not a directory, so that Python writes no bytecode into the layer.\n"
_SOURCE_SKIP = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", "dist", "build"}


def host_arch() -> str:
    """This machine's architecture in image terms (amd64 or arm64)."""
    machine = os.uname().machine.lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )


def default_distro_source() -> Path:
    """The workspace's `distro/` (env LUMIGO_DISTRO_SOURCE overrides it)."""
    configured = os.environ.get("LUMIGO_DISTRO_SOURCE")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[4] / "distro"


def source_hash(source: Path) -> str:
    """sha256 over the relative paths and contents of a source tree or a wheel file."""
    digest = hashlib.sha256()
    if source.is_file():
        digest.update(source.read_bytes())
        return digest.hexdigest()
    for path in sorted(_source_files(source)):
        digest.update(str(path.relative_to(source)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _source_files(root: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SOURCE_SKIP and not d.endswith(".egg-info")]
        for name in names:
            if not name.endswith((".pyc", ".pyo")):
                yield Path(folder, name)


def build_distro_wheel(source: Path, out_dir: Path) -> Path:
    """`pip wheel` the distro source (a directory); a `.whl` path is returned as is."""
    if source.is_file() and source.suffix == ".whl":
        return source
    if not (source / "pyproject.toml").exists():
        raise LayerBuildError(f"{source} is neither a wheel nor a project with pyproject.toml")
    command = [
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
        "--disable-pip-version-check", "--wheel-dir", str(out_dir), str(source),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(out_dir.glob("lumigo_opentelemetry-*.whl"))
    if result.returncode != 0 or not wheels:
        raise LayerBuildError(f"could not build the distro wheel from {source}:\n{result.stderr}")
    return wheels[-1]


def _as_tuple(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def build_layer(
    out: Path,
    pythons: Sequence[str] = SUPPORTED_PYTHONS,
    platform: str | Sequence[str] = "glibc",
    arch: str | Sequence[str] = "amd64",
    progress: Progress | None = None,
    *,
    distro: Path | None = None,
    set_cache: Path | None = None,
    jobs: int = 4,
    bytecode: bool = True,
    lock_dir: Path = LOCK_DIR,
) -> LayerManifest:
    """Build the layer into `out` (replaced if it holds a layer; must not hold anything else).

    `platform` and `arch` take one value or several (one set per combination).
    `set_cache`: a directory keeping pip's output per set, keyed on the distro source hash,
    so that a rebuild with unchanged sources only re-assembles the layer.
    `bytecode`: precompile each set with a matching local interpreter where one is found
    (see `find_interpreter`); sets without one ship sources only and start slower.
    Each set is installed from its lock in `lock_dir` (hashes required, nothing resolved);
    a missing or stale lock is a LayerBuildError. The layer gets `manifest.json` and a
    CycloneDX SBOM `sbom.cdx.json`; two builds of one commit give identical trees.
    """
    say = progress or (lambda _message: None)
    versions = tuple(validate_python(v) for v in pythons)
    platforms, arches = _as_tuple(platform), _as_tuple(arch)
    for value, allowed, what in ((platforms, PLATFORMS, "platform"), (arches, ARCHES, "arch")):
        bad = [v for v in value if v not in allowed]
        if bad or not value:
            raise ValueError(f"unknown {what} {bad!r}; expected some of {', '.join(allowed)}")
    if not versions:
        raise ValueError("no Python version asked for")
    out = Path(out)
    _check_replaceable(out)
    source = Path(distro) if distro else default_distro_source()
    if not source.exists():
        raise LayerBuildError(f"distro source {source} not found (use --distro)")
    digest = source_hash(source)
    combos = [(v, p, a) for p in platforms for a in arches for v in versions]
    declared = declared_requirements(source)
    try:
        locks = {
            (v, p, a): check_lock(v, p, a, declared, marker_environment(v, a), lock_dir)
            for v, p, a in combos
        }
    except LockError as exc:
        raise LayerBuildError(str(exc)) from None

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".layer-build-", dir=out.parent) as tmp_name:
        tmp = Path(tmp_name)
        wheel_lock = threading.Lock()
        wheels: list[Path] = []

        def distro_wheel() -> Path:
            """Built on first need: a rebuild from cached sets needs no wheel at all."""
            with wheel_lock:
                if not wheels:
                    say(f"building the {ROOT_DIST} wheel from {source}")
                    wheels.append(build_distro_wheel(source, tmp / "wheel"))
                return wheels[0]

        raw_root = set_cache if set_cache is not None else tmp / "raw"

        def make(combo: tuple[str, str, str]) -> tuple[Path, PackageSet]:
            python, plat, machine = combo
            set_lock = locks[combo]
            key = _set_key(f"{digest}|{set_lock.sha256}", combo)
            target = raw_root / f"{set_name(python, plat, machine)}-{key}"
            raw_root.mkdir(parents=True, exist_ok=True)
            with (raw_root / f"{target.name}.lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # other builds may share the set cache
                if not (target / RAW_COMPLETE).exists():
                    say(f"pip: {set_name(python, plat, machine)}")
                    partial = target.parent / f"{target.name}.partial"
                    install_set(distro_wheel(), partial, python, plat, machine, set_lock.path)
                    read_package_set(partial, python, plat, machine)  # fail before caching
                    (partial / RAW_COMPLETE).write_text("", encoding="utf-8")
                    if target.exists():
                        shutil.rmtree(target)
                    partial.rename(target)
                else:
                    say(f"cached: {set_name(python, plat, machine)}")
                    os.utime(target)  # recently used: kept by the cache pruning
            return target, read_package_set(target, python, plat, machine)

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            built = list(pool.map(make, combos))

        say("deduplicating files shared between sets")
        staging = tmp / "layer"
        assemble(staging, {pset.name: path for path, pset in built})
        sets = []
        for _path, pset in built:
            (staging / pset.name / SET_FILE).write_text(
                set_requirements_text(pset), encoding="utf-8"
            )
            compiled = False
            if bytecode:
                compiled = compile_set(staging / pset.name, pset.python, say)
            sets.append(replace(pset, bytecode=compiled))
        share_duplicates(staging, [pset.name for pset in sets])
        stats = measure(staging, [pset.name for pset in sets])
        compiled_for = [p.python for p in sets if p.bytecode] if bytecode else []
        install_bootstrap(staging, sorted(set(compiled_for)))
        (staging / COPY_SCRIPT).write_text(COPY_SCRIPT_TEXT, encoding="utf-8")
        (staging / COPY_SCRIPT).chmod(0o755)
        manifest = LayerManifest(
            layer_version=__version__,
            distro_version=sets[0].dists.get(ROOT_DIST, "?"),
            distro_source_hash=digest,
            sets=tuple(
                replace(p, files=stats.set_files[p.name], bytes=stats.set_bytes[p.name])
                for p in sets
            ),
            shared_files=stats.shared_files,
            shared_bytes=stats.shared_bytes,
            disk_bytes=stats.disk_bytes,
            naive_bytes=stats.naive_bytes,
        )
        (staging / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        installed = {pset.name: read_installed(path) for path, pset in built}
        set_locks = {p.name: locks[(p.python, p.platform, p.arch)] for p in sets}
        sbom = layer_sbom(manifest, installed, set_locks)
        (staging / SBOM_NAME).write_text(sbom, encoding="utf-8")
        _make_readable(staging)
        _fix_mtimes(staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    say(f"layer written to {out}")
    return manifest


def _set_key(digest: str, combo: tuple[str, str, str]) -> str:
    text = "|".join((SET_RECIPE_VERSION, digest, *combo))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_replaceable(out: Path) -> None:
    if out.is_file():
        raise LayerBuildError(f"{out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).exists():
        raise LayerBuildError(f"{out} is not empty and holds no layer; refusing to replace it")


class AssemblyStats:
    """Counts from `assemble`."""

    def __init__(self) -> None:
        self.set_files: dict[str, int] = {}
        self.set_bytes: dict[str, int] = {}
        self.shared_files = 0
        self.shared_bytes = 0
        self.disk_bytes = 0
        self.naive_bytes = 0


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble(out: Path, raw_sets: dict[str, Path]) -> None:
    """Copy each raw set into `out/<name>/`, storing files found in 2+ places only once.

    A file seen more than once (in any set) lives in `shared/<hash>` and is hard-linked
    into every set that has it, so sets stay ordinary directories for the import system.
    """
    occurrences: dict[str, int] = {}
    listing: dict[str, list[tuple[Path, Path, str]]] = {}
    for name, root in raw_sets.items():
        entries = listing.setdefault(name, [])
        for folder, _dirs, files in os.walk(root):
            for leaf in files:
                if leaf in (RAW_COMPLETE, INSTALLED_FILE) and folder == str(root):
                    continue
                source = Path(folder, leaf)
                digest = _file_digest(source)
                occurrences[digest] = occurrences.get(digest, 0) + 1
                entries.append((source, source.relative_to(root), digest))
    (out / SHARED_DIR).mkdir(parents=True)
    for name, entries in listing.items():
        for source, relative, digest in entries:
            dest = out / name / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            if occurrences[digest] > 1:
                os.link(_store(out, digest, source), dest)
            else:
                shutil.copy2(source, dest)


def _store(out: Path, digest: str, source: Path) -> Path:
    """The shared copy of `source` (content `digest`), made on first use."""
    stored = out / SHARED_DIR / digest[:2] / digest[2:]
    if not stored.exists():
        stored.parent.mkdir(exist_ok=True)
        shutil.copy2(source, stored)
    return stored


def share_duplicates(out: Path, set_names: Sequence[str]) -> None:
    """Store once the files made after assembly (bytecode) that are alike across sets."""
    by_digest: dict[str, list[Path]] = {}
    for name in set_names:
        for path in _walk_files(out / name):
            if path.stat().st_nlink == 1:
                by_digest.setdefault(_file_digest(path), []).append(path)
    for digest, paths in by_digest.items():
        if len(paths) < 2:
            continue
        stored = _store(out, digest, paths[0])
        for path in paths:
            path.unlink()
            os.link(stored, path)


def measure(out: Path, set_names: Sequence[str]) -> AssemblyStats:
    """Sizes per set, of the shared store, and on disk (each hard-linked file once)."""
    stats = AssemblyStats()
    inodes: dict[tuple[int, int], int] = {}
    for name in set_names:
        stats.set_files[name] = stats.set_bytes[name] = 0
        for path in _walk_files(out / name):
            info = path.stat()
            stats.set_files[name] += 1
            stats.set_bytes[name] += info.st_size
            inodes[(info.st_dev, info.st_ino)] = info.st_size
    for path in _walk_files(out / SHARED_DIR):
        stats.shared_files += 1
        stats.shared_bytes += path.stat().st_size
    stats.naive_bytes = sum(stats.set_bytes.values())
    stats.disk_bytes = sum(inodes.values())
    return stats


def _walk_files(root: Path) -> Iterator[Path]:
    for folder, _dirs, files in os.walk(root):
        for leaf in files:
            yield Path(folder, leaf)


def install_bootstrap(layer: Path, compile_for: Sequence[str] = ()) -> None:
    """Write `bootstrap/` (the start-up hook) and `bootstrap-impl/` (its logic) into `layer`.

    The logic is precompiled (unchecked-hash .pyc) with a local interpreter for each
    version in `compile_for`; other versions compile it in memory at start-up.
    """
    (layer / BOOTSTRAP_DIR).mkdir()
    shutil.copy2(BOOTSTRAP_SOURCE, layer / BOOTSTRAP_DIR / "sitecustomize.py")
    # A regular file where Python would make its bytecode cache directory: no Python
    # ever writes a .pyc next to the hook, even as root on a writable volume.
    (layer / BOOTSTRAP_DIR / "__pycache__").write_text(PYCACHE_BLOCKER, encoding="utf-8")
    impl = layer / BOOTSTRAP_IMPL_DIR
    impl.mkdir()
    shutil.copy2(BOOTSTRAP_IMPL_SOURCE, impl / BOOTSTRAP_IMPL_SOURCE.name)
    for python in compile_for:
        interpreter = find_interpreter(python)
        if interpreter is None:
            continue
        command = [
            interpreter, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
            "-s", str(impl), "-p", "", str(impl),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LayerBuildError(f"the bootstrap does not compile on {python}:\n{result.stdout}")


def find_interpreter(python: str) -> str | None:
    """A local CPython `python` (3.X): `python3.X` on PATH, else pyenv's newest 3.X."""
    candidates = [shutil.which(f"python{python}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for version_dir in sorted(pyenv_root.glob(f"versions/{python}.*"), reverse=True):
        candidates.append(str(version_dir / "bin" / f"python{python}"))
    probe = "import sys; print(sys.implementation.name, '%d.%d' % sys.version_info[:2], "
    probe += "'t' in getattr(sys, 'abiflags', ''))"
    for candidate in candidates:
        if not candidate or not Path(candidate).exists():
            continue
        result = subprocess.run(
            [candidate, "-S", "-c", probe], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 and result.stdout.split() == ["cpython", python, "False"]:
            return candidate
    return None


def compile_set(set_dir: Path, python: str, say: Progress) -> bool:
    """Precompile a set's modules (unchecked-hash .pyc: never re-validated, never rewritten).

    Paths inside the bytecode are made relative to the set, so glibc and musl sets of one
    Python share their .pyc files; the import system fixes `co_filename` on load.
    """
    interpreter = find_interpreter(python)
    if interpreter is None:
        say(f"no local CPython {python}: {set_dir.name} ships without bytecode")
        return False
    command = [
        interpreter, "-m", "compileall", "-q", "-j", "0",
        "--invalidation-mode", "unchecked-hash", "-s", str(set_dir), "-p", "", str(set_dir),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        say(f"{set_dir.name}: some modules did not compile (they stay source-only)")
    return True


def _fix_mtimes(root: Path) -> None:
    """One modification time for every path (SOURCE_DATE_EPOCH, else 1980-01-01), so an
    image or archive of the layer is byte-identical across builds."""
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or 315532800)
    for folder, dirs, files in os.walk(root):
        for name in (*files, *dirs):
            os.utime(os.path.join(folder, name), (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch))


def _make_readable(root: Path) -> None:
    """World-readable files and directories: the app may run as any user."""
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
        for name in files:
            path = os.path.join(folder, name)
            mode = os.stat(path).st_mode
            os.chmod(path, 0o755 if mode & 0o111 else 0o644)
    os.chmod(root, 0o755)
