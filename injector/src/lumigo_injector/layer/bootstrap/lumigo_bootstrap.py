"""Lumigo OpenTelemetry layer bootstrap: what runs at every start of an injected interpreter.

`bootstrap/sitecustomize.py` (the only directory on the app's PYTHONPATH) loads this module
from the layer's `bootstrap-impl/` (precompiled where the build had the interpreter) and
calls `main()`, which:

1. picks the layer's package set for this interpreter, libc and machine, or abstains;
2. runs the app's own ``sitecustomize``, if one is further along ``sys.path``;
3. checks the app's installed distributions against the set's requirements and abstains
   with one warning line on a conflict;
4. otherwise appends the set after the app's paths (the app's packages win), makes sure
   nothing writes bytecode into the layer, and starts the distro (the layer on PYTHONPATH
   is the opt-in) plus any other group ``AUTOWRAPT_BOOTSTRAP`` names: the distro's own
   group directly (its one entry point is known, so neither wrapt nor importlib.metadata
   is imported at start-up), any other group through autowrapt.

Nothing here may break the app: every failure ends as one warning line on stderr.
Written for Python 3.9+, standard library only, and imports next to nothing, so that
abstaining costs a few milliseconds.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # the typing module costs ~15 ms on 3.9: imported for checkers only
    from types import ModuleType
    from typing import Any, Optional

WARNING_PREFIX = "lumigo-otel layer:"
SET_FILE = "lumigo-set.txt"
ROOT_DIST = "lumigo-opentelemetry"
_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_TRUTHY = ("1", "true", "yes", "on")


def _warn(message: str) -> None:
    try:
        sys.stderr.write(f"{WARNING_PREFIX} {message}\n")
        sys.stderr.flush()
    except Exception:
        pass


def _debug(message: str) -> None:
    if os.environ.get("LUMIGO_DEBUG", "").strip().lower() in _TRUTHY:
        _warn(message)


# ---------------------------------------------------------------------------------------
# Step 1: which package set fits this interpreter?


def detect_libc() -> tuple[str, tuple[int, ...]]:
    """("glibc", version) or ("musl", ()) or ("", ()) when neither is recognised."""
    try:
        found = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        found = None
    if found and found.startswith("glibc "):
        return "glibc", _int_tuple(found.split(" ", 1)[1])
    try:
        if any(name.startswith("ld-musl-") for name in os.listdir("/lib")):
            return "musl", ()
    except OSError:
        pass
    return "", ()


def _int_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def set_name_for(minor: tuple[int, int], libc: str, arch: str) -> str:
    """Directory name of the package set for CPython `minor` on `libc`/`arch`."""
    return f"py{minor[0]}.{minor[1]}-{libc}-{arch}"


def pick_set(layer: str) -> tuple[Optional[str], str]:
    """(set directory, "") for this interpreter, or (None, why not)."""
    impl = sys.implementation.name
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if impl != "cpython":
        return None, f"no package set for {impl} {version} (CPython only)"
    if "t" in getattr(sys, "abiflags", ""):
        return None, f"no package set for free-threaded CPython {version}"
    if not sys.platform.startswith("linux"):
        return None, f"no package set for {sys.platform} (Linux only)"
    machine = os.uname().machine
    arch = _MACHINES.get(machine.lower())
    libc, _libc_version = detect_libc()
    if arch is None or not libc:
        return None, f"no package set for machine {machine!r} with libc {libc or 'unknown'}"
    name = set_name_for((sys.version_info[0], sys.version_info[1]), libc, arch)
    path = os.path.join(layer, name)
    if not os.path.isdir(path):
        return None, f"no package set for CPython {version} ({libc}, {arch}) in this layer"
    return path, ""


# ---------------------------------------------------------------------------------------
# Step 3: does the app already have packages that the set carries, at versions it can't use?


class SetRequirements:
    """What a package set needs, read from its `lumigo-set.txt` (written at build time)."""

    def __init__(self) -> None:
        self.dists: dict[str, str] = {}  # normalised name -> version in the set
        self.requires: dict[str, list[tuple[str, str]]] = {}  # name -> [(specifier, by)]
        self.min_glibc: tuple[int, ...] = ()
        self.pth_files: list[str] = []


def read_set_requirements(path: str) -> SetRequirements:
    """Parse the set's requirement file (one record per line, fields split by spaces)."""
    found = SetRequirements()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            kind = fields[0]
            if kind == "dist" and len(fields) >= 3:
                found.dists[fields[1]] = fields[2]
            elif kind == "req" and len(fields) >= 4:
                spec = "" if fields[2] == "*" else fields[2]
                found.requires.setdefault(fields[1], []).append((spec, fields[3]))
            elif kind == "glibc" and len(fields) >= 2:
                found.min_glibc = _int_tuple(fields[1])
            elif kind == "pth" and len(fields) >= 2:
                found.pth_files.append(fields[1])
    return found


def normalize_name(name: str) -> str:
    """PEP 503 name normalisation without `re`: lower case, runs of -_. become one -."""
    out = []
    previous_dash = False
    for char in name.strip().lower():
        if char in "-_.":
            if not previous_dash:
                out.append("-")
            previous_dash = True
        else:
            out.append(char)
            previous_dash = False
    return "".join(out)


def installed_distributions(paths: list[str]) -> dict[str, tuple[str, str]]:
    """{normalised name: (version, location)} of the first distribution of each name.

    Reads `.dist-info`/`.egg-info` directory names only (their version is part of the
    name); importlib.metadata would cost more than everything else here put together.
    """
    found: dict[str, tuple[str, str]] = {}
    for entry in paths:
        try:
            names = os.listdir(entry or ".")
        except (OSError, TypeError, ValueError):  # missing dirs, zip files, odd entries
            continue
        for item in names:
            if item.endswith(".dist-info"):
                stem = item[: -len(".dist-info")]
            elif item.endswith(".egg-info"):
                stem = item[: -len(".egg-info")]
            else:
                continue
            pieces = stem.split("-")
            name = normalize_name(pieces[0])
            if name in found:
                continue
            version = pieces[1] if len(pieces) > 1 else _metadata_version(entry, item)
            if version:
                found[name] = (version, entry)
    return found


def _metadata_version(entry: str, item: str) -> str:
    for leaf in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(entry or ".", item, leaf), encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
                    if not line.strip():
                        break
        except OSError:
            continue
    return ""


def find_conflict(needs: SetRequirements, app: dict[str, tuple[str, str]]) -> Optional[str]:
    """A sentence naming the first conflict between the app's packages and the set, or None."""
    own = app.get(ROOT_DIST)
    if own is not None:
        return f"the app has its own {ROOT_DIST} {own[0]} (in {own[1]})"
    for name in sorted(needs.requires):
        have = app.get(name)
        if have is None:
            continue
        for spec, by in needs.requires[name]:
            if spec and not version_matches(have[0], spec):
                return f"the app has {name} {have[0]} but {by} needs {name}{spec}"
    return None


# ---------------------------------------------------------------------------------------
# A small PEP 440 version and specifier check (no `re`, no `packaging`).

_PRE_LABELS = {
    "a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2,
}  # fmt: skip
_POST_LABELS = ("post", "rev", "r")
_INF = float("inf")


def parse_version(text: str) -> Optional[tuple[int, tuple[int, ...], Any, Any, Any]]:
    """Split a PEP 440 version into comparable parts; None if it is not one.

    Local versions compare as their public part (see `_parse` for the local part).
    """
    parts = _parse(text)
    return None if parts is None else _comparable(parts)


def _comparable(
    parts: tuple[int, tuple[int, ...], Any, Any, Any, Any],
) -> tuple[int, tuple[int, ...], Any, Any, Any]:
    """`_parse`'s answer without the local part and with the release's trailing zeros
    trimmed (`1.0` is `1`)."""
    epoch, release, pre, post, dev, _local = parts
    trimmed = list(release)
    while len(trimmed) > 1 and trimmed[-1] == 0:
        trimmed.pop()
    return epoch, tuple(trimmed), pre, post, dev


_PRE_ORDER = ("preview", "alpha", "beta", "pre", "rc", "a", "b", "c")  # longest first
_POST_ORDER = ("post", "rev", "r")


def _parse(text: str) -> Optional[tuple[int, tuple[int, ...], Any, Any, Any, Any]]:
    """A PEP 440 version, spelled as the PEP allows: (epoch, release as written, pre,
    post, dev, local as a tuple or None); None if `text` is not one.

    `[v][N!]N(.N)*[[-_.]pre[-_.][N]][-N | [-_.]post[-_.][N]][[-_.]dev[-_.][N]][+local]`,
    case-insensitive, surrounding whitespace ignored; a label without a number has 0.
    """
    s = text.strip().lower()
    end = len(s)

    def number(at: int) -> tuple[Optional[int], int]:
        stop = at
        while stop < end and "0" <= s[stop] <= "9":
            stop += 1
        return (int(s[at:stop]), stop) if stop > at else (None, at)

    def labelled(at: int, labels: tuple[str, ...]) -> tuple[Optional[str], int, int]:
        """`[sep]label[sep][N]` at `at`: (label, its number or 0, where it ends)."""
        if s[at : at + 1] in ("-", "_", "."):
            at += 1
        for label in labels:
            if s.startswith(label, at):
                after = at + len(label)
                if s[after : after + 1] in ("-", "_", "."):
                    after += 1  # a separator is taken even when no number follows
                value, stop = number(after)
                return label, value or 0, stop
        return None, 0, at

    at = 1 if s.startswith("v") else 0
    epoch = 0
    value, stop = number(at)
    if value is not None and s[stop : stop + 1] == "!":
        epoch, at = value, stop + 1
    release: list[int] = []
    while True:
        value, stop = number(at)
        if value is None:  # only the first: the loop goes round only where a digit follows
            return None
        release.append(value)
        at = stop
        if not (s[at : at + 1] == "." and "0" <= s[at + 1 : at + 2] <= "9"):
            break
        at += 1
    pre: Any = None
    label, value, stop = labelled(at, _PRE_ORDER)
    if label is not None:
        pre, at = (_PRE_LABELS[label], value), stop
    post: Any = None
    if s[at : at + 1] == "-" and "0" <= s[at + 1 : at + 2] <= "9":
        post, at = number(at + 1)  # `1.0-1` is 1.0.post1
    else:
        label, value, stop = labelled(at, _POST_ORDER)
        if label is not None:
            post, at = value, stop
    dev: Any = None
    label, value, stop = labelled(at, ("dev",))
    if label is not None:
        dev, at = value, stop
    local: Any = None
    if s[at : at + 1] == "+":
        local = tuple(_local_parts(s[at + 1 :]))
        if not local:
            return None
        at = end
    if at != end:
        return None
    return epoch, tuple(release), pre, post, dev, local


def _local_parts(text: str) -> list[int | str]:
    """`ubuntu-1.02` -> ['ubuntu', 1, 2]; empty when it is no local version label."""
    parts: list[int | str] = []
    for part in text.replace("-", ".").replace("_", ".").split("."):
        if not part or not all("a" <= c <= "z" or "0" <= c <= "9" for c in part):
            return []
        parts.append(int(part) if part.isdigit() else part)
    return parts


def _sort_key(parsed: tuple[int, tuple[int, ...], Any, Any, Any]) -> tuple[Any, ...]:
    epoch, release, pre, post, dev = parsed
    if pre is None and post is None and dev is not None:
        pre_key: tuple[Any, ...] = (-_INF, 0)  # 1.0.dev1 sorts before 1.0a1
    elif pre is None:
        pre_key = (_INF, 0)
    else:
        pre_key = pre
    post_key = -_INF if post is None else post
    dev_key = _INF if dev is None else dev
    return epoch, release, pre_key, post_key, dev_key


def version_matches(version: str, specifiers: str) -> bool:
    """Whether `version` satisfies every comma-separated PEP 440 clause in `specifiers`.

    Pre-releases are accepted: the app already has this version installed.
    Unparseable input counts as a mismatch (the layer then steps aside).
    """
    parsed = parse_version(version)
    if parsed is None:
        return False
    for clause in specifiers.split(","):
        clause = clause.strip()
        if clause and not _clause_matches(version, parsed, clause):
            return False
    return True


def _clause_matches(raw: str, parsed: Any, clause: str) -> bool:
    for op in ("===", "~=", "==", "!=", "<=", ">=", "<", ">"):
        if clause.startswith(op):
            target = clause[len(op) :].strip()
            break
    else:
        return False
    if op == "===":
        return raw.strip().lower() == target.lower()
    if target.endswith(".*"):
        # `==V.*` / `!=V.*`: V is a release only (epoch allowed), no other operator
        prefix = _parse(target[:-2])
        if op not in ("==", "!=") or prefix is None or prefix[2:] != (None,) * 4:
            return False
        matched = _prefix_match(parsed, (prefix[0], prefix[1]))
        return matched if op == "==" else not matched
    full = _parse(target)
    if full is None or (full[5] is not None and op not in ("==", "!=")):
        return False  # a local version only with `==` / `!=`
    wanted = _comparable(full)
    mine, theirs = _sort_key(parsed), _sort_key(wanted)
    if op in ("==", "!="):
        equal = mine == theirs
        if equal and full[5] is not None:  # `==V+local`: the local part must match too
            own = _parse(raw)
            equal = own is not None and own[5] == full[5]
        return equal if op == "==" else not equal
    if op == "<=":
        return mine <= theirs
    if op == ">=":
        return mine >= theirs
    if op == "<":
        # `<V` excludes V's own pre-releases unless V is one: below V.dev0
        if wanted[2] is None and wanted[4] is None:
            theirs = _sort_key((wanted[0], wanted[1], None, wanted[3], 0))
        return mine < theirs
    if op == ">":
        # `>V` excludes V's own post-releases (V with a post part) unless V is one
        own_post = parsed[3] is not None and parsed[:3] == wanted[:3]
        if own_post and wanted[3] is None and wanted[4] is None:
            return False
        return mine > theirs
    # op == "~=": >= V, and the same release as V without its last part
    if len(full[1]) < 2:
        return False
    return mine >= theirs and _prefix_match(parsed, (wanted[0], full[1][:-1]))


def _prefix_match(parsed: Any, prefix: tuple[int, tuple[int, ...]]) -> bool:
    if parsed[0] != prefix[0]:
        return False
    want = prefix[1]
    have: tuple[int, ...] = tuple(parsed[1]) + (0,) * max(0, len(want) - len(parsed[1]))
    return have[: len(want)] == want


# ---------------------------------------------------------------------------------------
# Step 4: activation.


def _frozen(name: str) -> Any:
    """importlib's machinery without importing importlib.util (it pulls `typing` on 3.9)."""
    module = sys.modules.get(name)
    if module is None:
        module = __import__(name)
    return module


def install_no_bytecode_writes(root: str) -> None:
    """Import from `root` without ever writing `__pycache__` into it (read-only volumes)."""
    external = _frozen("_frozen_importlib_external")

    class _NoWriteSourceLoader(external.SourceFileLoader):  # type: ignore[misc,name-defined]
        def set_data(self, path: str, data: bytes, *, _mode: int = 0o666) -> None:
            return None

    path_hook = external.FileFinder.path_hook(
        (external.ExtensionFileLoader, external.EXTENSION_SUFFIXES),
        (_NoWriteSourceLoader, external.SOURCE_SUFFIXES),
        (external.SourcelessFileLoader, external.BYTECODE_SUFFIXES),
    )
    prefix = root.rstrip(os.sep) + os.sep

    def layer_path_hook(path: str) -> Any:
        if path == root or path.startswith(prefix):
            return path_hook(path)
        raise ImportError("not a Lumigo layer path")

    sys.path_hooks.insert(0, layer_path_hook)
    for cached in [key for key in sys.path_importer_cache if key.startswith(prefix)]:
        del sys.path_importer_cache[cached]


def activate(set_dir: str, layer: str, needs: SetRequirements) -> list[str]:
    """Append the set after the app's paths, start the distro and AUTOWRAPT_BOOTSTRAP's
    other groups; return the groups started, in order."""
    install_no_bytecode_writes(layer)
    sys.path.append(set_dir)
    if needs.pth_files:
        import site

        known: set[str] = set()
        for name in needs.pth_files:
            site.addpackage(set_dir, name, known)
    try:
        return start_bootstrap_groups(os.environ.get("AUTOWRAPT_BOOTSTRAP", ""))
    except BaseException:
        if set_dir in sys.path:  # leave the app's path as it found it
            sys.path.remove(set_dir)
        raise


#: the distro's autowrapt entry point group and its only entry point (distro/pyproject.toml:
#: `[project.entry-points.lumigo_opentelemetry] string = "lumigo_opentelemetry._autoload:..."`)
DISTRO_GROUP = "lumigo_opentelemetry"
DISTRO_HOOK_MODULE = "string"
DISTRO_HOOK = "lumigo_opentelemetry._autoload:on_string_import"


def start_bootstrap_groups(value: str) -> list[str]:
    """Start the distro and the groups of `value` (AUTOWRAPT_BOOTSTRAP's comma list), in order.

    The layer exists to trace, so its distro starts whether or not `value` names it (first,
    unless `value` places it): `PYTHONPATH` alone is enough. The distro's group is started
    directly, as autowrapt would once its hook module `string` is imported (`start_distro`):
    no entry point discovery, so neither wrapt nor importlib.metadata is imported. Other
    groups go through autowrapt. Returns the groups.
    """
    names = [name.strip() for name in value.split(",") if name.strip()]
    if DISTRO_GROUP not in names:
        names.insert(0, DISTRO_GROUP)
    others = [name for name in names if name != DISTRO_GROUP]
    if not others:
        _autowrapt_registered()
    for name in names:
        if name == DISTRO_GROUP:
            start_distro()
        elif others:
            register_with_autowrapt(others)
            others = []
    return names


def start_distro() -> None:
    """Call the distro's entry point, as autowrapt would once `string` is imported.

    The distro's hook does not use its argument, so `string` (and the `re` and `enum` it
    imports, milliseconds of start-up) is not imported for it: the hook gets the module
    if something already imported it, else None.
    """
    module_name, function = DISTRO_HOOK.split(":")
    hook = getattr(__import__(module_name, fromlist=[function]), function)
    hook(sys.modules.get(DISTRO_HOOK_MODULE))


def register_with_autowrapt(groups: list[str]) -> None:
    """autowrapt's registration, for `groups` only (the distro's is started directly).

    autowrapt 2 defers registration to site.execsitecustomize, which is the very call
    running this module: register now, or the hooks never fire. It reads the groups from
    AUTOWRAPT_BOOTSTRAP, so the variable names only `groups` during the call.
    """
    from autowrapt.bootstrap import register_bootstrap_functions

    saved = os.environ.get("AUTOWRAPT_BOOTSTRAP")
    os.environ["AUTOWRAPT_BOOTSTRAP"] = ",".join(groups)
    try:
        register_bootstrap_functions()
    finally:
        if saved is None:
            os.environ.pop("AUTOWRAPT_BOOTSTRAP", None)
        else:
            os.environ["AUTOWRAPT_BOOTSTRAP"] = saved


def _autowrapt_registered() -> None:
    """Tell an autowrapt the app loaded itself (its `.pth`) that registration is done.

    Otherwise it would run its own discovery once this sitecustomize returns, importing
    wrapt and importlib.metadata only to find the distro already started.
    """
    loaded = sys.modules.get("autowrapt.bootstrap")
    if loaded is not None and getattr(loaded, "_registered", None) is False:
        loaded.__dict__["_registered"] = True


# ---------------------------------------------------------------------------------------
# Step 2: the app's own sitecustomize.


def find_app_sitecustomize(own_dir: str) -> Any:
    """The spec of the next `sitecustomize` on sys.path that is not a Lumigo layer's hook."""
    external = _frozen("_frozen_importlib_external")
    search = [entry for entry in sys.path if _real(entry) != own_dir]
    while True:
        spec = external.PathFinder.find_spec("sitecustomize", search)
        if spec is None or spec.loader is None or not spec.origin:
            return None
        found_dir = _real(os.path.dirname(spec.origin))
        impl = os.path.join(os.path.dirname(found_dir), "bootstrap-impl", "lumigo_bootstrap.py")
        if not os.path.exists(impl):
            return spec
        # another copy of the layer on PYTHONPATH: skip it (it would run this all again)
        search = [entry for entry in search if _real(entry) != found_dir]


def run_app_sitecustomize(own_dir: str) -> Optional[ModuleType]:
    """Find and execute the app's own `sitecustomize`, as site would have."""
    try:
        spec = find_app_sitecustomize(own_dir)
        if spec is None:
            return None
        module = _frozen("_frozen_importlib").module_from_spec(spec)
    except Exception as exc:
        _warn(f"could not look for the app's sitecustomize ({type(exc).__name__}: {exc})")
        return None
    ours = sys.modules.get("sitecustomize")
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # what site.execsitecustomize does with a failing one
        if ours is not None:
            sys.modules["sitecustomize"] = ours
        if sys.flags.verbose:
            sys.excepthook(*sys.exc_info())
        else:
            sys.stderr.write(
                "Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                f"{err.__class__.__name__}: {err}\n"
            )
        return None
    found: ModuleType = module
    return found


def _real(path: str) -> str:
    try:
        return os.path.realpath(path or ".")
    except Exception:
        return path


# ---------------------------------------------------------------------------------------


def main(bootstrap_dir: str) -> None:
    """Run the bootstrap; never raises (except the app's own SystemExit/KeyboardInterrupt).

    `bootstrap_dir`: the layer's `bootstrap/` directory, the entry on PYTHONPATH.
    """
    own_dir = _real(bootstrap_dir)
    layer = os.path.dirname(own_dir)
    try:
        disabled = os.environ.get("LUMIGO_LAYER_DISABLE", "").strip().lower() in _TRUTHY
        set_dir, why_not = (
            (None, "disabled by LUMIGO_LAYER_DISABLE") if disabled else (pick_set(layer))
        )
    except Exception as exc:
        set_dir, why_not = None, f"could not inspect the interpreter ({type(exc).__name__}: {exc})"

    run_app_sitecustomize(own_dir)

    if set_dir is None:
        _warn(f"{why_not}; the app runs without Lumigo tracing")
        return
    try:
        needs = read_set_requirements(os.path.join(set_dir, SET_FILE))
        libc, libc_version = detect_libc()
        if libc == "glibc" and needs.min_glibc and libc_version < needs.min_glibc:
            wanted = ".".join(map(str, needs.min_glibc))
            found = ".".join(map(str, libc_version))
            _warn(f"glibc {found} is older than the {wanted} the layer needs; "
                  "the app runs without Lumigo tracing")  # fmt: skip
            return
        app_paths = [entry for entry in sys.path if _real(entry) != own_dir]
        conflict = find_conflict(needs, installed_distributions(app_paths))
        if conflict:
            _warn(f"{conflict}; the app runs without Lumigo tracing")
            return
        started = activate(set_dir, layer, needs)
        _debug(f"activated {os.path.basename(set_dir)}, started {', '.join(started)}")
    except Exception as exc:
        _warn(f"failed to start ({type(exc).__name__}: {exc}); the app runs without Lumigo tracing")
