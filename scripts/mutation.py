#!/usr/bin/env python3
"""Mutation testing for the core modules: plant one-line bugs, run only their fast tests.

Each mutant is an AST edit of one source file (see `OPERATORS` in `mutants_of`). It is never
written over the source: the package that holds the file is copied into a temporary "shadow"
directory, the mutated file replaces its copy there, and the tests run with that directory first
on PYTHONPATH (so subprocesses the tests start see the mutant too). An interrupted run leaves the
sources as they were and removes its temporary directory.

    uv run --frozen python scripts/mutation.py                    # every module, full run
    uv run --frozen python scripts/mutation.py --module masking --sample 20 --seed 1
    uv run --frozen python scripts/mutation.py --list --module ecs

Exit status: 0 when the run worked (and, with --fail-on-survivors, no unexplained survivor),
1 for unexplained survivors with --fail-on-survivors, 2 when the tool itself failed (a module's
tests fail without any mutant, a mutant cannot be generated, bad arguments).
See docs/testing.md.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import fnmatch
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
INJ = "injector/src/lumigo_injector"
DISTRO = "distro/src/lumigo_opentelemetry"
FASTSPAN = f"{DISTRO}/instrumentations/_fastspan.py"


@dataclass(frozen=True)
class Target:
    """A core module: its source files and the fast tests that must catch its bugs."""

    name: str
    sources: tuple[str, ...]
    tests: tuple[str, ...]
    concurrent: bool = True  # False: its tests cannot run twice at once (--jobs runs it serially)


TARGETS: tuple[Target, ...] = (
    Target(
        "masking",
        (f"{DISTRO}/masking.py", f"{DISTRO}/sql_values.py"),
        (
            "tests/distro/test_masking_rules.py",
            "tests/distro/test_masking_multipart.py",
            "tests/distro/test_masking_sql_values.py",
        ),
    ),
    Target(
        "pod-mutation",
        (
            f"{INJ}/k8s/steps.py",
            f"{INJ}/k8s/edits.py",
            f"{INJ}/k8s/undo.py",
            f"{INJ}/k8s/mutation.py",
            f"{INJ}/k8s/state_json.py",
        ),
        (
            "tests/k8s/test_mutation_rules.py",
            "tests/k8s/test_mutation_properties.py",
            "tests/k8s/test_mutation_annotation_limit.py",
            "tests/k8s/test_state_json.py",
        ),
    ),
    Target(
        "bootstrap",
        (f"{INJ}/layer/bootstrap/lumigo_bootstrap.py",),
        (
            "tests/layer/test_layer_bootstrap_logic.py",
            "tests/layer/test_layer_bootstrap_conflicts.py",
            "tests/layer/test_layer_bootstrap_groups.py",
            "tests/layer/test_layer_bootstrap_process.py",
        ),
    ),
    Target(
        "export",
        (f"{DISTRO}/export/otlp.py", f"{DISTRO}/export/early.py"),
        (
            "tests/distro/test_distro_internals.py",
            "tests/distro/test_export_deadline.py",
            "tests/distro/test_export_early.py",
        ),
    ),
    Target(
        "propagation",
        (f"{INJ}/k8s/propagation.py",),
        ("tests/serve/test_operator_logic.py",),
    ),
    Target(
        "namespaces",
        (f"{INJ}/serve/namespaces.py",),
        ("tests/serve/test_operator_logic.py", "tests/serve/test_namespace_rules.py"),
    ),
    Target(
        "webhook",
        (f"{INJ}/serve/webhook.py", f"{INJ}/serve/review.py", f"{INJ}/serve/patches.py"),
        (
            "tests/serve/test_webhook_review.py",
            "tests/serve/test_webhook_fastpath.py",
            "tests/serve/test_webhook_failopen.py",
            "tests/serve/test_metrics.py",
        ),
    ),
    Target(
        "spec-inject",
        (f"{INJ}/spec/inject.py",),
        ("tests/spec/test_spec_core.py", "tests/k8s/test_mutation_rules.py"),
    ),
    Target(
        "ecs",
        (f"{INJ}/ecs/rewrite.py", f"{INJ}/ecs/containers.py"),
        ("tests/ecs/test_ecs_rewrite.py",),
    ),
    Target(
        "fastspan",
        (FASTSPAN,),
        ("tests/distro/test_fastspan.py",),
    ),
)

# Survivors judged equivalent (no behaviour a user could notice changes), keyed by
# `Mutant.key`. Each reason is repeated in docs/testing.md.
EQUIVALENT: dict[str, str] = {
    f"{INJ}/serve/patches.py::json_patch::compare-swap::"
    "len(src) <= len(dst) -> len(src) < len(dst)": (
        "a list that kept its length diffed by jsonpatch's make_patch instead of item by "
        "item: the same pod when applied, and make_patch too diffs the changed items key by "
        "key (no value of the user's written back: tested); only the diff's cost changes"
    ),
    f"{INJ}/serve/patches.py::json_patch::bool-swap::"
    "isinstance(src, list) and isinstance(dst, list) -> "
    "isinstance(src, list) or isinstance(dst, list)": (
        "a value that became a list, or stopped being one, goes to make_patch, which replaces "
        "it whole too: the same operation"
    ),
    f"{INJ}/k8s/state_json.py::has_float::bool-swap::*": (
        "the scalar shortcut (`str`, `bool`, `int`, None go on at once) made to match nothing: "
        "a scalar then falls through the dict and list tests to `isinstance(item, float)`, "
        "false for each of them, with the same answer"
    ),
    f"{INJ}/k8s/state_json.py::has_float::remove-jump::continue -> pass": (
        "the same shortcut's `continue` removed: a scalar falls through to the same false "
        "tests, with the same answer"
    ),
    f"{INJ}/k8s/state_json.py::has_float::remove-call::stack.extend(item) -> pass": (
        "a dict's keys not walked (the list items' twin is killed): a float key makes orjson "
        "refuse the dict (keys must be strings), so `json` writes the text either way"
    ),
    f"{INJ}/k8s/state_json.py::has_float::return-none::return False -> return None": (
        "its one caller only tests the answer for truth"
    ),
    f"{INJ}/k8s/state_json.py::has_float::bool-constant::False -> True": (
        "'a float somewhere' for every state: every text is written by `json`, the "
        "definition, which orjson's fast path only matches byte for byte"
    ),
    f"{DISTRO}/export/otlp.py::::off-by-one::*": (
        "batch processor defaults (queue 2048, delay 5000 ms, batch 512, timeout 30000 ms): "
        "one span or millisecond more or less is not observable"
    ),
    f"{DISTRO}/export/otlp.py::DeadlineExporter.force_flush::*": (
        "the SDK's span processors never call a span exporter's force_flush (the batch "
        "processor flushes its own queue), so neither its default nor its answer is seen"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_frozen::negate-condition::*": (
        "called only for _frozen_importlib and _frozen_importlib_external, which are always "
        "loaded: __import__ of a loaded module returns that same module"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::install_no_bytecode_writes::off-by-one::*": (
        "the layer's path hook second instead of first in sys.path_hooks: at start-up the "
        "only hook ahead of it is zipimporter, which declines directories"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_comparable::compare-swap::"
    "len(trimmed) > 1 -> len(trimmed) >= 1": (
        "a release of zeros trimmed to () instead of (0,): comparisons and prefix matches "
        "treat both as zeros (a shorter tuple of zeros sorts the same), so no answer changes"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_comparable::off-by-one::1 -> 0": (
        "`len(trimmed) > 0`: the same as `>= 1` above (the key also names `trimmed[-1]` to "
        "`trimmed[0]`, which the tests kill)"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_frozen::compare-swap::*": (
        "`module is None` to `is not None`: the same as the negated condition above"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::"
    "install_no_bytecode_writes._NoWriteSourceLoader.set_data::off-by-one::*": (
        "the default of set_data's `_mode` (0o666) one more or less: set_data writes nothing, "
        "so the mode is never used"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::detect_libc::off-by-one::1 -> 2": (
        "confstr's answer split at two spaces instead of one: glibc reports `glibc ` and the "
        "version, with no other space, so the second part is the same (the key also names "
        "the index `[1]` to `[2]`, which the tests kill)"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::normalize_name::bool-constant::False -> True": (
        "a leading `-`, `_` or `.` dropped instead of made `-`: a distribution name begins "
        "with a letter or digit (PEP 508), so no installed name or set requirement has one "
        "(the key also names the reset after a letter, which the tests kill)"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_metadata_version::off-by-one::1 -> 2": (
        "the `Version:` header split at two colons instead of one: a version holds none "
        "(the key also names the index `[1]` to `[2]`, which the tests kill)"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_metadata_version::remove-jump::"
    "continue -> pass": "the `continue` ends the loop body: the next file is read either way",
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_metadata_version::return-none::"
    "return '' -> return None": "its one caller only tests the version for truth",
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_parse.labelled::off-by-one::0 -> 1": (
        "the number returned with no label found: every caller uses it only when a label "
        "was found (the key also names a label's missing number, `value or 0`, which the "
        "tests kill)"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_sort_key::off-by-one::0 -> 1": (
        "the second part of the pre-release key of a release without one, `(inf, 0)`, or "
        "of a dev release, `(-inf, 0)`: every version of that kind gets the same value and "
        "the infinity already orders it against real pre-releases"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_prefix_match::return-none::"
    "return False -> return None": (
        "its callers only test the answer for truth (`not matched`, `and`), and "
        "version_matches returns its own bool"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_prefix_match::drop-bound::"
    "max(0, len(want) - len(parsed?1?)) -> len(want) - len(parsed?1?)": (  # fnmatch: ? for []
        "the zero padding without max(0, ...): a negative count repeats the tuple zero "
        "times, as max gives"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_prefix_match::off-by-one::0 -> 1": (
        "at least one zero of padding: the comparison cuts the version to the prefix's "
        "length, so a zero beyond it is never compared (the key also names the epoch "
        "indexes and the padding's own 0, which the tests kill)"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_autowrapt_registered::bool-swap::*": (
        "`and` to `or`: an app's autowrapt then gets `_registered = True` even when it was "
        "already true, or when it has no such flag (and so never reads it); every "
        "autowrapt release that has the flag starts it at False and only tests it for truth"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::run_app_sitecustomize::return-none::"
    "return found -> return None": "its one caller (main) does not use the module returned",
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_real::return-none::return path -> return None": (
        "the fallback when realpath raises (a path entry that is no string, or holds a NUL): "
        "its callers compare the answer with real directories, which neither the entry nor "
        "None equals, and the layer's own directory always resolves"
    ),
    f"{INJ}/layer/bootstrap/lumigo_bootstrap.py::_clause_matches::return-none::"
    "return False -> return None": (
        "its one caller (version_matches) only tests the answer for truth (`not "
        "_clause_matches(...)`), and returns its own bool"
    ),
    f"{DISTRO}/masking.py::::off-by-one::2048 -> *": (
        "the bound on cached answers per rule set (CACHE_SIZE) one more or less: the cache "
        "stays bounded and every answer is the same"
    ),
    f"{DISTRO}/masking.py::::off-by-one::256 -> *": (
        "the longest key worth caching (CACHED_KEY_LENGTH) one more or less: a key at the "
        "cut-off is answered again instead of from the cache, with the same answer; or the "
        "texts `apply` remembers (TEXT_MEMO_SIZE) one more or less: still bounded"
    ),
    f"{DISTRO}/masking.py::Masking.apply::compare-swap::"
    "len(value) <= TEXT_MEMO_LENGTH -> len(value) < TEXT_MEMO_LENGTH": (
        "whether a text of exactly 512 characters is remembered: it is masked again instead "
        "of answered from the memo, with the same text"
    ),
    f"{DISTRO}/masking.py::Rules._decide::compare-swap::"
    "len(key) <= CACHED_KEY_LENGTH -> len(key) < CACHED_KEY_LENGTH": (
        "whether a key of exactly 256 characters is cached: the answer is the same either "
        "way (computed again), only the cache's one-character cut-off moves"
    ),
    f"{DISTRO}/masking.py::Rules._decide::compare-swap::"
    "len(answers) >= CACHE_SIZE -> len(answers) > CACHE_SIZE": (
        "the cache cleared at CACHE_SIZE + 1 answers instead of CACHE_SIZE: the same as "
        "CACHE_SIZE one more (above), still bounded, every answer the same"
    ),
    f"{DISTRO}/masking.py::Masking._json_pairs::remove-jump::continue -> pass": (
        "after `if masked is string`: the string is copied out as itself instead of being "
        "left in place, so the text is the same (a copy of it). The key also names the "
        "scalar `continue` below it; that mutant is killed (masked is unbound or stale)"
    ),
    f"{DISTRO}/masking.py::Masking._text::bool-swap::"
    "\"'\" in text and '\"' in text -> \"'\" in text or '\"' in text": (
        "a fast path: an SQL literal is rewritten only when it holds a JSON key, which needs "
        "both a single and a double quote in the statement; without either the "
        "substitution matches nothing or gives each literal back as written"
    ),
    f"{DISTRO}/masking.py::Masking._leaf::bool-swap::"
    "'://' in value and '@' in value -> '://' in value or '@' in value": (
        "a fast path: the string is scrubbed when it has only one of `://` and `@`; the "
        "userinfo pattern needs both, so the scrub changes nothing"
    ),
    f"{DISTRO}/masking.py::Masking._leaf::bool-swap::"
    "'\"' in value and (':' in value or '\\\\' in value) -> "
    "'\"' in value or (':' in value or '\\\\' in value)": (
        "a fast path: a string with a colon or a backslash but no double quote is read for "
        '`"key": value` pairs too; every pair and JSON string starts with a quote, so '
        "nothing is found and the string is kept"
    ),
    f"{DISTRO}/masking.py::Masking._unchanged_json::compare-swap::'@' in text -> '@' not in text": (
        "the shortcut may then take JSON text with URL userinfo in a string: every caller "
        "scrubs userinfo from the whole result (`_leaf`, `_text`), and the pattern cannot "
        "cross a string's quotes, so the text is the same as when each string is scrubbed"
    ),
    f"{DISTRO}/masking.py::Masking._unchanged_json::compare-swap::"
    "token in text -> token not in text": (
        "the shortcut may then take JSON text holding the tracer token: every caller "
        "replaces the token in the whole result (`_leaf`, `_text`), as each string would be"
    ),
    f"{DISTRO}/masking.py::Masking._unchanged_json::return-none::return False -> return None": (
        "its one caller only tests the answer for truth"
    ),
    f"{DISTRO}/masking.py::Masking._unchanged_json::return-none::return True -> return None": (
        "no text takes the shortcut: every document is masked value by value, which gives "
        "the same text (the shortcut only saves time)"
    ),
    f"{DISTRO}/masking.py::Masking._unchanged_json::bool-constant::True -> False": (
        "the final `return True` made False: no text takes the shortcut, masked value by "
        "value with the same text (the key also names no other mutant there)"
    ),
    f"{DISTRO}/masking.py::_mask_pairs.replace::off-by-one::0 -> 1": (
        "`match.start(0)` to `match.start(1)`: group 1 (the name) opens every match, so the "
        "two are equal (the key also names `match.group(0)` to `group(1)`, which is killed)"
    ),
    f"{DISTRO}/masking.py::_mask_multipart::bool-constant::False -> True": (
        "the first `secret = False`: before the first boundary the state is `body`, where "
        "`secret` is not read, and each boundary sets it again (the key also names the "
        "boundary's own `False`, which is killed)"
    ),
    f"{DISTRO}/masking.py::Masking._structure::bool-swap::"
    "item is None or item_kind in _SCALARS -> item is None and item_kind in _SCALARS": (
        "a fast path: None, int, float and bool values go through _structure instead, "
        "which gives any value that is no string, mapping or list back as it is"
    ),
    f"{DISTRO}/masking.py::_has_nested_repeat.walk::return-none::return False -> return None": (
        "its callers only test the answer for truth (`or`, `any`, `if self._unsafe`, "
        "`self._unsafe or ...` in matches, which then gives the match's bool)"
    ),
    f"{DISTRO}/masking.py::Masking.__init__::off-by-one::1 -> 0": (
        "the token's beginnings then start at the whole token, which never ends a text: the "
        "whole token is replaced before the beginnings are looked at (the key also names "
        "`_TOKEN_TAIL_MIN - 1` on the same line; that mutant is killed)"
    ),
    f"{DISTRO}/masking.py::Masking._scrub::bool-swap::"
    "'://' in text and '@' in text -> '://' in text or '@' in text": (
        "a fast path: the userinfo pattern needs both `://` and `@`, so running it on a text "
        "without one of them changes nothing"
    ),
    f"{DISTRO}/masking.py::Masking._text::drop-bound:::1 -> :": (
        "the INSERT-rows reject by first letter then compares the whole text with `SsUuDd`: "
        "no statement is rejected, more are read, to the same text"
    ),
    f"{DISTRO}/masking.py::Masking._text::off-by-one::1 -> 2": (
        "`text[:1]` to `text[:2]`: two letters are in `SsUuDd` (`Ss`, `sU`, `Uu`, `uD`, `Dd`) "
        "only at the start of a text starting with S, U or D: fewer statements rejected, none "
        "an INSERT, the same text"
    ),
    f"{DISTRO}/sql_values.py::mask_rows::compare-swap::start < merged?-1??1? -> "
    "start <= merged?-1??1?": (
        "spans never meet end to start: one reading's span ends at a quote (or a letter, digit, "
        "bracket) where the other's would start, and a span only starts after a comma, a "
        "parenthesis or a space, which the two readings cannot disagree on outside strings"
    ),
    f"{DISTRO}/sql_values.py::_insert::drop-bound::pos: -> :": (
        "the no-literal check of the rows then looks at the whole text, which holds the rows: "
        "a literal in the rows is still found, so rows are read at least as often (same text)"
    ),
    f"{DISTRO}/sql_values.py::_secret_column::return-none::return False -> return None": (
        "the answers are only tested for truth (`any(columns)`, `columns[index]`)"
    ),
    f"{DISTRO}/sql_values.py::_items::off-by-one::1 -> 2": (
        "`start = end = -1` to -2: both only mean no item yet, compared with 0 (the key also "
        "names `depth` and group numbers, which are killed)"
    ),
    f"{DISTRO}/sql_values.py::_items::compare-swap::start < 0 -> start <= 0": (
        "an item never starts at 0: it follows the parenthesis of its list"
    ),
    f"{DISTRO}/sql_values.py::_items::compare-swap::start >= 0 -> start > 0": (
        "an item never starts at 0: it follows the parenthesis of its list"
    ),
    f"{DISTRO}/sql_values.py::_items::off-by-one::0 -> 1": (
        "`start < 0`, `start >= 0` moved by one: an item never starts at 0 (the key also names "
        "`depth == 0` and `value[0]`, which are killed)"
    ),
    f"{DISTRO}/sql_values.py::_select_list::off-by-one::1 -> 2": (
        "`start = end = -1` to -2: both only mean no item yet, compared with 0 (the key also "
        "names `depth += 1`, which is killed)"
    ),
    f"{DISTRO}/sql_values.py::_select_list::compare-swap::start >= 0 -> start > 0": (
        "an item never starts at 0: it follows its `SELECT` word"
    ),
    f"{DISTRO}/sql_values.py::_select_list::compare-swap::start < 0 -> start <= 0": (
        "an item never starts at 0: it follows its `SELECT` word"
    ),
    f"{DISTRO}/sql_values.py::_select_list::off-by-one::0 -> 1": (
        "`start < 0`, `start >= 0` moved by one: an item never starts at 0 (the key also names "
        "`depth == 0`, which is killed)"
    ),
    f"{DISTRO}/sql_values.py::_select_list::bool-constant::False -> True": (
        "`first` never cleared: modifier words are then skipped anywhere in the list, where "
        "they come only inside an item (`> ALL (...)`, `IS DISTINCT FROM`), never as its "
        "first or last token: the same item spans (the key also names the resets of `literal` "
        "and `aliased`, which are killed)"
    ),
    f"{DISTRO}/sql_values.py::_select_list::drop-bound::s:e -> :e": (
        "in the `t.*` test: the text up to an item's end ends with `.*` exactly when the item "
        "does (an item starts after a comma or `SELECT`, never inside `.*`; the key also "
        "names the `== '*'` test, which is killed)"
    ),
    f"{DISTRO}/sql_values.py::_items::remove-jump::continue -> pass": (
        "after an item read at once: the next item is read token by token instead, the same "
        "items (reading at once only saves time)"
    ),
    f"{DISTRO}/masking.py::_TimedPattern.matches::compare-swap::left <= 0 -> left < 0": (
        "the attribute's time bound spent to the nanosecond (left exactly 0.0): `<=` and "
        "`<` differ at one instant only"
    ),
    f"{DISTRO}/export/otlp.py::build_batch_processor::bool-swap::"
    "config.bsp_export_timeout_ms or BSP_DEFAULT_EXPORT_TIMEOUT_MS -> "
    "config.bsp_export_timeout_ms and BSP_DEFAULT_EXPORT_TIMEOUT_MS": (
        "the SDK versions the distro allows (opentelemetry-sdk 1.41 to 1.45.1) accept "
        "export_timeout_millis but never use it: no export is cut short by it"
    ),
    f"{DISTRO}/export/otlp.py::DeadlineExporter.export::compare-swap::"
    "time.monotonic() >= (self._deadline or 0.0) -> time.monotonic() > (self._deadline or 0.0)": (
        "a monotonic clock equal to the deadline to the nanosecond: `>=` and `>` differ "
        "at one instant only"
    ),
    f"{INJ}/k8s/propagation.py::_emptied::return-none::return False -> return None": (
        "its one caller only tests the answer for truth: None and False are read alike"
    ),
    f"{INJ}/serve/namespaces.py::NamespaceDirectory.__init__::off-by-one::*": (
        "max_failed 1024 off by one: one remembered failed namespace read more or less "
        "(the bound itself is tested with max_failed=100)"
    ),
    f"{INJ}/serve/namespaces.py::NamespaceDirectory.get::compare-swap::"
    "time.monotonic() - failed_at < self._negative_ttl -> "
    "time.monotonic() - failed_at <= self._negative_ttl": (
        "a failed read retried when exactly negative_ttl has passed, to the nanosecond: "
        "`<` and `<=` differ at one instant only"
    ),
    f"{INJ}/serve/namespaces.py::api_fetcher.fetch::off-by-one::2 -> [13]": (
        "the namespace read's own client timeout (2 s) sits under the directory's "
        "fetch_timeout (2 s), which bounds what an admission waits; a second more or less "
        "shows only for a read taking 1 to 3 s, a timing figure, not a test"
    ),
    f"{INJ}/serve/webhook.py::read_body::remove-call::chunks.clear() -> pass": (
        "the list is local and dropped as the function returns None just after"
    ),
    f"{INJ}/serve/webhook.py::DecisionCache.__init__::off-by-one::64 -> 6[35]": (
        "pods of 63 to 65 KiB cached or not: the cache never changes an answer, and the "
        "memory bound moves by 1 KiB per entry"
    ),
    f"{INJ}/serve/webhook.py::DecisionCache.__init__::off-by-one::1024 -> 102[35]": (
        "the same 64 KiB cut-off, one byte per KiB off: whether a pod near it is cached"
    ),
    f"{INJ}/serve/webhook.py::DecisionCache.key::compare-swap::self._size <= 0 -> self._size < 0": (
        "the cache's size is always 256 (Admission builds it with the default); at a size of 0 "
        "a stored decision is evicted at once anyway"
    ),
    f"{INJ}/serve/webhook.py::DecisionCache.key::off-by-one::0 -> 1": (
        "`size <= 1`: differs only for a cache of one decision, and the size is always 256"
    ),
    f"{INJ}/serve/webhook.py::DecisionCache.key::compare-swap::"
    "len(serialised) > self._max_pod_bytes -> len(serialised) >= self._max_pod_bytes": (
        "whether a pod of exactly 64 KiB is cached: the cache never changes an answer"
    ),
    f"{INJ}/serve/webhook.py::Admission.mutate_pod::bool-constant::False -> True": (
        "the dryrun default is never used: both callers (build_app, kopf's admission engine) "
        "pass the review's dryRun"
    ),
    f"{INJ}/serve/webhook.py::Admission.mutate_pod::bool-swap::"
    "operation or 'CREATE' -> operation and 'CREATE'": (
        "both callers pass the review's operation, and call the handler only for a CREATE: "
        "'CREATE' and 'CREATE' is 'CREATE'"
    ),
    f"{INJ}/serve/webhook.py::Admission.decide::bool-swap::request.kind != 'Pod' or *": (
        "the guard never fires when served: build_app calls the handler only for a pod CREATE "
        "with an object, kopf routes only pod CREATEs to it, and mutate_pod builds the "
        "request with kind Pod (the mutants that make it fire are killed)"
    ),
    f"{INJ}/serve/webhook.py::Admission.decide::return-none::"
    "return Decision(reason=f'not a pod creation*": (
        "the guard's answer, never reached when served (see the bool-swap above)"
    ),
    f"{INJ}/serve/webhook.py::Admission._report::drop-bound:::events.MAX_MESSAGE -> :": (
        "EventRecorder.record cuts every message to the same events.MAX_MESSAGE"
    ),
    f"{INJ}/serve/webhook.py::start::off-by-one::5 -> [46]": (
        "shutdown_timeout, the grace in-flight admissions get when the server stops, a second "
        "more or less: admissions take milliseconds; only one running 4 to 6 s would tell, "
        "a timing figure"
    ),
    f"{INJ}/serve/review.py::too_deep::*written is None*": (
        "with or without the caller's orjson image the answer is the same: the image is "
        "made again, or the levels are counted exactly by nests_deeper"
    ),
    f"{INJ}/serve/review.py::_check_object::return-none::return written -> return None": (
        "the pod's orjson image is an accelerator: without it the decision cache keys on "
        "the pod itself and the mutation makes its own copy, with the same answers"
    ),
    f"{INJ}/serve/review.py::nests_deeper::bool-constant::False -> True": (
        "the first `return False` (a value that is no container): its one caller passes the "
        "pod object, always a dict. The key also names the `return False` when a level has "
        "nothing below; that mutant is killed (without orjson every pod is measured)"
    ),
    f"{INJ}/serve/review.py::parse_review::drop-bound:::MAX_WARNING -> :": (
        "the cut of a JSON error text: json's and UnicodeDecodeError's texts (a message and "
        "a position) are far under 256 characters (orjson's are never shown: json re-parses)"
    ),
    f"{INJ}/serve/review.py::AdmissionRequest::bool-constant::False -> True": (
        "the dry_run default is never used: every AdmissionRequest is built with it"
    ),
    f"{INJ}/serve/review.py::nests_deeper::return-none::return False -> return None": (
        "its one caller (too_deep) only tests the answer for truth"
    ),
    f"{INJ}/ecs/containers.py::sidecar_reason::return-none::return '' -> return None": (
        "its one caller only tests the reason for truth: None and '' are read alike"
    ),
    f"{INJ}/ecs/containers.py::blocker::return-none::return '' -> return None": (
        "its one caller (the walrus in select_containers) only tests the reason for truth: "
        "None and '' are read alike"
    ),
    f"{INJ}/k8s/undo.py::_uninject_container::remove-jump::break -> pass": (
        "removing every mount of our volume at /lumigo-otel instead of the last one: a "
        "container holds at most one (Kubernetes refuses two mounts at one mountPath, and "
        "inject adds ours only when none is there)"
    ),
    f"{INJ}/k8s/undo.py::_guess_state::remove-jump::continue -> pass": (
        "the continue ends the last branch of the loop body's if/elif chain: without it the "
        "loop goes on to the next entry all the same"
    ),
    f"{INJ}/k8s/mutation.py::within_annotation_limit::compare-swap::"
    "characters * 4 <= ANNOTATIONS_LIMIT -> characters * 4 < ANNOTATIONS_LIMIT": (
        "the shortcut before the exact byte count: at characters * 4 == the limit the "
        "exact count (at most 4 bytes a character) is within the limit too, same answer"
    ),
    f"{INJ}/k8s/steps.py::_set_merged::remove-call::"
    "warnings.append(f'{name} comes from valueFrom; left unchanged') -> pass": (
        "never reached: container_blocker refuses a container whose PYTHONPATH or "
        "AUTOWRAPT_BOOTSTRAP is no literal, and set_resource_attributes returns with its own "
        "warning before a non-literal OTEL_RESOURCE_ATTRIBUTES gets here"
    ),
    f"{INJ}/k8s/steps.py::set_resource_attributes::off-by-one::1 -> 0": (
        "position += 0: the four LUMIGO_K8S_* downward-API variables are inserted in reverse "
        "order, still all before OTEL_RESOURCE_ATTRIBUTES; none references another, so every "
        "value the app sees is the same"
    ),
    f"{INJ}/k8s/mutation.py::::off-by-one::1 -> [02]": (
        "_STATE_VERSION, the injection record's format version: written for a later release "
        "that changes the format, read by none yet (uninject reads any record), so 0 or 2 "
        "changes nothing but that number in the annotation"
    ),
    f"{INJ}/k8s/mutation.py::within_annotation_limit::off-by-one::4 -> 5": (
        "the shortcut before the exact byte count assuming 5 bytes a character: it lets "
        "fewer pods skip the exact count, which gives the same answer"
    ),
    f"{INJ}/k8s/mutation.py::_inject_site::bool-constant::True -> False": (
        "json.dumps(sort_keys=False) for the injection record: its keys in the code's fixed "
        "insertion order instead of sorted; every reader parses the JSON, and the text is the "
        "same for the same pod either way (the key also names the injected result's True, "
        "which the tests kill)"
    ),
    f"{INJ}/k8s/steps.py::EnvEdits.add::compare-swap::"
    "position < len(entries) -> position <= len(entries)": (
        "the index update for an entry added at the end as well: no name sits at or after "
        "len(entries), so the loop changes nothing"
    ),
    f"{INJ}/k8s/steps.py::EnvEdits.add::compare-flip::index >= position -> index <= position": (
        "the one insertion before other entries puts the LUMIGO_K8S_* variables just before "
        "OTEL_RESOURCE_ATTRIBUTES, at its index, which moves up either way; it is the only "
        "index read after such an insertion (the others are only tested for presence)"
    ),
    f"{INJ}/k8s/state_json.py::state_text::compare-swap::orjson is not None -> orjson is None": (
        "the orjson fast path never taken: the text comes from json.dumps, which is the "
        "definition of the annotation's bytes"
    ),
    f"{INJ}/k8s/state_json.py::state_text::compare-swap::b'\\\\' not in raw -> b'\\\\' in raw": (
        "orjson and json escape every ASCII character alike except DEL (checked on its own), "
        "so sending a text without a backslash to json, or keeping orjson's with one, gives "
        "the same bytes"
    ),
    f"{INJ}/ecs/containers.py::sidecar_reason::off-by-one::1 -> 2": (
        "rsplit('/', 1)[-1] with maxsplit 2: the last part is the same however many splits "
        "are made before it (the other 1 -> 2 on those lines, [-1] to [-2], is killed: "
        "an image without a slash has no second-last part)"
    ),
    f"{INJ}/ecs/rewrite.py::clashes::return-none::return [] -> return None": (
        "its one caller (check_no_clash) only tests the list for truth: None and [] are read alike"
    ),
    f"{INJ}/ecs/rewrite.py::inject::remove-raise::raise AssertionError(*": (
        "a self-check of inject's own output that no input reaches: the input is validated "
        "before (validate(td), validate(base), both killed) and what inject adds is fixed "
        "fields and the settings' strings; it is there to catch a bug of ours"
    ),
    # _fastspan: every fast path has the SDK's own path beside it, which records the same
    # (the tests compare the two); a mutant that only sends clean attributes, or a hook,
    # down the SDK's path changes nothing but the cost.
    f"{FASTSPAN}::clean::compare-swap::"
    "len(attributes) > max_count -> len(attributes) >= max_count": (
        "exactly max_span_attributes start attributes take the SDK's path, which records "
        "them all too (none dropped at the limit: tested both ways)"
    ),
    f"{FASTSPAN}::clean::return-none::return False -> return None": (
        "its callers only test the verdict for truth (start_span's `if not fast`, and the "
        "Flask and Django memos keep values_clean's answer for `{} if known_clean else None`)"
    ),
    f"{FASTSPAN}::_SamplerLayer.should_sample::compare-swap::kept is None -> kept is not None": (
        "a SamplingResult's attributes are never None (it makes None an empty mapping): "
        "every span then takes the SDK's path, which records the sampler's attributes the same"
    ),
    f"{FASTSPAN}::_SamplerLayer.should_sample::compare-swap::"
    "len(kept) != len(given) -> len(kept) == len(given)": (
        "the length test is a shortcut before `kept != given`, which sends every changed "
        "set to the SDK anyway; equal lengths then take the SDK's path too, same record"
    ),
    f"{FASTSPAN}::_ProcessorLayer._plan::*processors is*self._known*": (
        "the direct plan never made: every hook goes through the SDK's multi-processor "
        "and SkipExportFilter, which call the same hooks with the same spans"
    ),
    f"{FASTSPAN}::_ProcessorLayer._plan::return-none::return self._made -> return None": (
        "the same: no direct plan, the SDK's hooks instead"
    ),
    f"{FASTSPAN}::_lone_exporter::return-none::*": (
        "the same: no direct plan, the SDK's hooks instead"
    ),
    f"{FASTSPAN}::_lone_exporter::compare-swap::"
    "type(processors) is not tuple -> type(processors) is tuple": (
        "the SDK's multi-processors always hold a tuple: no direct plan, the SDK's hooks instead"
    ),
    f"{FASTSPAN}::_ProcessorLayer.on_start::negate-condition::if type(store) is dict*": (
        "the layer puts the attributes on a span the SDK built with none, so its map is "
        "always the SDK's empty dict: the mutant sends them through span.set_attributes, "
        "which records the same clean values"
    ),
    f"{FASTSPAN}::_ProcessorLayer.on_start::bool-swap::type(store) is dict and (not store) -> *": (
        "the map is always an empty dict there (above): the same branch"
    ),
    f"{FASTSPAN}::_ProcessorLayer.on_start::compare-swap::"
    "type(store) is dict -> type(store) is not dict": (
        "span.set_attributes instead of the map's update (above): the same record"
    ),
    f"{FASTSPAN}::_ProcessorLayer.on_start::drop-not::not store -> store": (
        "span.set_attributes instead of the map's update (above): the same record"
    ),
    f"{FASTSPAN}::_ProcessorLayer.on_start::remove-call::span.set_attributes(fill) -> pass": (
        "the branch for a span whose map is not the SDK's empty dict: never reached, the "
        "layer is only installed when the SDK's map has one (tested) and builds the span empty"
    ),
    f"{FASTSPAN}::_ProcessorLayer._on_ending::remove-call::plan?1?(span) -> pass": (
        "BatchSpanProcessor's _on_ending is `pass` in every SDK the distro allows, so the "
        "plan holds None for it and the call is never reached"
    ),
    f"{FASTSPAN}::_ProcessorLayer._on_ending::off-by-one::1 -> *": (
        "the call's index (`plan[0](span)`, `plan[2](span)`): never reached, as above (the "
        "key also names the condition's index, which the tests kill with a batch on_start "
        "that does work)"
    ),
    f"{FASTSPAN}::_ProcessorLayer.on_end::compare-swap::"
    "type(store) is dict -> type(store) is not dict": (
        "is_skipped(span) instead of the map's own get: it reads the same dict, same answer"
    ),
    f"{FASTSPAN}::_ProcessorLayer.force_flush::off-by-one::30000 -> *": (
        "the default timeout one millisecond off: only code calling the tracer's "
        "span_processor.force_flush() without a timeout gets it (the provider flushes its "
        "own multi-processor), and only a flush lasting 30 s would tell, a timing figure"
    ),
    f"{FASTSPAN}::_does_nothing::return-none::*": (
        "every hook counted as doing something: the batch processor's empty on_start and "
        "_on_ending are called, and do nothing"
    ),
    f"{FASTSPAN}::_does_nothing::compare-swap::code is not None -> code is None": (
        "the same: a bound method always has code, so every hook is called"
    ),
    f"{FASTSPAN}::FastSpans._install::bool-swap::*": (
        "only a second FastSpans built directly on one tracer (fast_spans keeps one per "
        "tracer) is installed again: its pass-through layers over the first record the "
        "same; a tracer not the SDK's fails further on (no _span_limits) and is left alone"
    ),
    f"{FASTSPAN}::FastSpans._install::return-none::return False -> return None": (
        "`enabled` None instead of False: only tested for truth (start_span, values_clean's "
        "callers)"
    ),
    f"{FASTSPAN}::FastSpans._install::bool-constant::False -> True": (
        "the probe map built `immutable=True`: it is only looked at for its `_dict` (the "
        "key also names the two `return False` made `True`, which the tests kill)"
    ),
    f"{FASTSPAN}::FastSpans.start_span::compare-swap::"
    "len(attributes) <= max_count -> len(attributes) < max_count": (
        "exactly max_span_attributes start attributes take the SDK's path, which records "
        "them all too (tested both ways)"
    ),
    f"{FASTSPAN}::set_attributes::compare-swap::type(store) is not dict -> type(store) is dict": (
        "every late attribute through span.set_attributes, the SDK's path: the same record"
    ),
    f"{FASTSPAN}::set_attributes::compare-swap::"
    "getattr(span, '_end_time', 0) is not None -> getattr(span, '_end_time', 0) is None": (
        "an open span takes span.set_attributes (same record), an ended one is stopped by "
        "the check under the lock and goes there too (ignored, as the SDK does)"
    ),
    f"{FASTSPAN}::set_attributes::off-by-one::0 -> 1": (
        "getattr defaults (`_end_time`, `max_value_len`, `maxlen`) read only for a span or "
        "map other than the SDK's, which the `_dict` test sends to span.set_attributes first"
    ),
    f"{FASTSPAN}::set_attributes::bool-constant::True -> False": (
        "the `_immutable` default: the SDK's map always has the attribute (as above)"
    ),
    f"{FASTSPAN}::set_attributes::compare-swap::"
    "span._end_time is None -> span._end_time is not None": (
        "the re-check under the lock always failing: every late attribute goes to "
        "span.set_attributes, the SDK's path, same record"
    ),
    f"{FASTSPAN}::set_attributes::drop-not::not bounded._immutable -> bounded._immutable": (
        "the same re-check always failing: span.set_attributes, same record"
    ),
    f"{FASTSPAN}::set_attributes::compare-swap::"
    "len(store) + len(attributes) <= maxlen -> len(store) + len(attributes) < maxlen": (
        "late keys that exactly fill the map take the SDK's path, which drops none "
        "either (tested at the limit)"
    ),
}

DATACLASS_FLAGS = frozenset({"frozen", "slots", "eq", "order", "repr", "kw_only"})
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical"})
SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


@dataclass(frozen=True)
class Mutant:
    """One planted bug: where it is and what it changes."""

    source: str  # repository-relative path
    index: int  # position in the file's list of mutants
    line: int
    operator: str
    scope: str  # enclosing function or class, dotted
    before: str
    after: str

    @property
    def key(self) -> str:
        """A name that survives edits elsewhere in the file (no line number)."""
        return f"{self.source}::{self.scope}::{self.operator}::{self.before} -> {self.after}"


class Planned(NamedTuple):
    """A mutant, its module text, the lines whose execution can show it, and whether they run
    when the module is imported (module level, class bodies, decorators, default arguments)."""

    mutant: Mutant
    text: str
    lines: tuple[int, ...]
    at_import: bool


@dataclass
class Result:
    """The outcome of one mutant."""

    mutant: Mutant
    status: str  # killed | survived | timeout | equivalent
    seconds: float
    reason: str = ""


@dataclass
class ModuleReport:
    """Counts and survivors of one target."""

    name: str
    mutants: int = 0
    run: int = 0
    killed: int = 0
    survived: int = 0
    timeout: int = 0
    equivalent: int = 0
    not_run: int = 0
    baseline_seconds: float = 0.0
    error: str = ""
    survivors: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------- mutant generation


def _unparse(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 80 else text[:77] + "..."


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """Ids of nodes never mutated: annotations, docstrings, logging calls, TYPE_CHECKING blocks."""
    skip: set[int] = set()

    def drop(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            drop(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            drop(node.returns)
        elif isinstance(node, ast.AnnAssign):
            drop(node.annotation)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                drop(body[0])
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:  # @dataclass(frozen=True, slots=True)
                if isinstance(decorator, ast.Call):
                    for kw in decorator.keywords:
                        if kw.arg in DATACLASS_FLAGS:
                            drop(kw)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            drop(node)
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            drop(node)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOG_METHODS
        ):
            drop(node)
    return skip


def _scopes(tree: ast.AST) -> dict[int, str]:
    names: dict[int, str] = {}

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = f"{scope}.{child.name}" if scope else child.name
            names[id(child)] = inner
            visit(child, inner)

    visit(tree, "")
    return names


def _edits(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """(operator, replacement) pairs for one node; the replacement is a fresh node."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        swap = SWAPS.get(type(node.ops[0]))
        if swap is not None:
            new = copy.deepcopy(node)
            new.ops = [swap()]
            yield "compare-swap", new
        if isinstance(node.ops[0], (ast.Lt, ast.Gt, ast.LtE, ast.GtE)):
            flip = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE}
            new = copy.deepcopy(node)
            new.ops = [flip[type(node.ops[0])]()]
            yield "compare-flip", new
    elif isinstance(node, ast.BoolOp):
        swapped = copy.deepcopy(node)
        swapped.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield "bool-swap", swapped
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "drop-not", copy.deepcopy(node.operand)
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield "bool-constant", ast.Constant(not value)
        elif isinstance(value, int):
            yield "off-by-one", ast.Constant(value + 1)
            if value != 0:
                yield "off-by-one", ast.Constant(value - 1)
        elif isinstance(value, float) and value:
            yield "constant-zero", ast.Constant(0.0)
    elif isinstance(node, ast.Slice):
        if node.lower is not None:
            yield "drop-bound", ast.Slice(None, copy.deepcopy(node.upper), copy.deepcopy(node.step))
        if node.upper is not None:
            yield "drop-bound", ast.Slice(copy.deepcopy(node.lower), None, copy.deepcopy(node.step))
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("min", "max")
        and len(node.args) == 2
        and not node.keywords
    ):
        yield "drop-bound", copy.deepcopy(node.args[0])
        yield "drop-bound", copy.deepcopy(node.args[1])
    elif isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Add, ast.Sub)):
        aug = copy.deepcopy(node)
        aug.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        yield "aug-swap", aug


def _is_log_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in LOG_METHODS
    )


def _statement_edits(stmt: ast.stmt) -> Iterator[tuple[str, ast.AST]]:
    if isinstance(stmt, (ast.If, ast.While)):
        new = copy.deepcopy(stmt)
        new.test = ast.UnaryOp(ast.Not(), copy.deepcopy(stmt.test))
        yield "negate-condition", new
    elif isinstance(stmt, ast.Raise):
        yield "remove-raise", ast.Pass()
    elif isinstance(stmt, ast.Return) and stmt.value is not None:
        if not (isinstance(stmt.value, ast.Constant) and stmt.value.value is None):
            yield "return-none", ast.Return(ast.Constant(None))
    elif (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, (ast.Call, ast.Await))
        and not _is_log_call(stmt.value)
    ):
        yield "remove-call", ast.Pass()
    elif isinstance(stmt, (ast.Continue, ast.Break)):
        yield "remove-jump", ast.Pass()


def _parents(tree: ast.AST) -> dict[int, tuple[ast.AST, str, int | None]]:
    """For each node: its parent, the field holding it and its index in a list field."""
    where: dict[int, tuple[ast.AST, str, int | None]] = {}
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if isinstance(value, ast.AST):
                where[id(value)] = (parent, name, None)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        where[id(item)] = (parent, name, i)
    return where


def _swapped_text(tree: ast.Module, where: tuple[ast.AST, str, int | None], new: ast.AST) -> str:
    """The module text with one node replaced; the tree is restored before returning."""
    parent, name, index = where
    holder = getattr(parent, name)
    old = holder[index] if index is not None else holder
    if index is not None:
        holder[index] = new
    else:
        setattr(parent, name, new)
    try:
        ast.fix_missing_locations(new)
        return ast.unparse(tree)
    finally:
        if index is not None:
            holder[index] = old
        else:
            setattr(parent, name, old)


def _site(
    node: ast.AST, parents: dict[int, tuple[ast.AST, str, int | None]]
) -> tuple[tuple[int, ...], bool]:
    """The lines a test must execute to meet the mutant, and whether they run at import."""
    first, last = getattr(node, "lineno", 0), getattr(node, "end_lineno", None) or 0
    if isinstance(node, (ast.If, ast.While)):  # negate-condition: the test, not the body
        last = getattr(node.test, "end_lineno", None) or first
    elif not isinstance(node, ast.stmt):  # an expression: from its statement's first line
        up: ast.AST = node
        while not isinstance(up, ast.stmt) and id(up) in parents:
            up = parents[id(up)][0]
        if isinstance(up, ast.stmt):
            first = min(first, up.lineno)
    at_import = True
    child: ast.AST = node
    while id(child) in parents:
        parent, name, _ = parents[id(child)]
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and (
            name == "body"
        ):
            at_import = False
            break
        child = parent
    return tuple(range(first, max(first, last) + 1)), at_import


def mutants_of(source: str, text: str) -> list[Planned]:
    """Every mutant of one file, with the mutated module text and where it can be met."""
    tree = ast.parse(text)
    skip = _skipped_nodes(tree)
    scopes = _scopes(tree)
    parents = _parents(tree)
    found: list[Planned] = []
    nodes = [n for n in ast.walk(tree) if id(n) not in skip]
    nodes.sort(key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
    for node in nodes:
        edits = list(_edits(node))
        if isinstance(node, ast.stmt):
            edits += list(_statement_edits(node))
        for operator, replacement in edits:
            try:
                new_text = _swapped_text(tree, parents[id(node)], replacement)
                compile(new_text, source, "exec")
            except (SyntaxError, ValueError, KeyError):
                continue
            before = _unparse(node)
            after = _unparse(replacement)
            if isinstance(node, ast.stmt):
                before = before.splitlines()[0]
                after = after.splitlines()[0]
            mutant = Mutant(
                source=source,
                index=len(found),
                line=getattr(node, "lineno", 0),
                operator=operator,
                scope=scopes.get(id(node), ""),
                before=before,
                after=after,
            )
            found.append(Planned(mutant, new_text, *_site(node, parents)))
    return found


# ---------------------------------------------------------------- running


def package_root(path: Path) -> Path:
    """The top-level package directory holding `path` (the one copied into the shadow)."""
    top = path.parent
    while (top.parent / "__init__.py").exists():
        top = top.parent
    return top


# pytest plugin written into the work directory for the baseline run under coverage: each
# test's lines are recorded under its node id, everything else (import, collection) under "".
CONTEXT_PLUGIN = '''\
"""scripts/mutation.py's pytest plugin: record each test's lines under its node id."""
import os

import coverage
import pytest


def _switch(name):
    cov = coverage.Coverage.current()
    if cov is not None:
        cov.switch_context(name)


def _test_id(item):
    # a node id, as a command-line argument from the working directory
    where = os.path.relpath(item.config.rootpath, os.getcwd())
    return item.nodeid if where == "." else os.path.join(where, item.nodeid)


def pytest_collection_finish(session):
    with open(os.environ["MUTATION_TEST_ORDER"], "w") as out:
        out.write("\\n".join(_test_id(item) for item in session.items))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _switch(_test_id(item))
    yield
    _switch("")
'''


@dataclass
class CoverageMap:
    """Which tests execute each line of a module's sources (from one run under coverage)."""

    order: list[str]  # node ids, as the full list runs them
    tests_of: dict[str, dict[int, frozenset[str]]]  # source -> line -> node ids
    outside_tests: dict[str, frozenset[int]]  # source -> lines run at import or collection

    def select(self, planned: Planned) -> list[str] | None:
        """The tests that execute the mutant's lines, or None: run the full list."""
        source = planned.mutant.source
        if planned.at_import or self.outside_tests.get(source, frozenset()) & set(planned.lines):
            return None  # met at import: every test sees it
        by_line = self.tests_of.get(source, {})
        chosen = frozenset().union(*(by_line.get(line, frozenset()) for line in planned.lines))
        if not chosen or len(chosen) >= len(self.order):
            return None  # run only in a subprocess the tests start, or by every test
        return [test for test in self.order if test in chosen]


def read_coverage_map(data_file: Path, order_file: Path, sources: Sequence[str]) -> CoverageMap:
    from coverage import CoverageData

    data = CoverageData(basename=str(data_file))
    data.read()
    wanted = {os.path.realpath(ROOT / s): s for s in sources}
    tests_of: dict[str, dict[int, frozenset[str]]] = {}
    outside: dict[str, frozenset[int]] = {}
    for measured in data.measured_files():
        source = wanted.get(os.path.realpath(measured))
        if source is None:
            continue
        by_line = data.contexts_by_lineno(measured)
        tests_of[source] = {
            line: frozenset(c for c in contexts if c) for line, contexts in by_line.items()
        }
        outside[source] = frozenset(line for line, ctxs in by_line.items() if "" in ctxs)
    order = order_file.read_text().split("\n") if order_file.exists() else []
    return CoverageMap([t for t in order if t], tests_of, outside)


def _unused_plugins(tests: Sequence[str]) -> list[str]:
    """`-p no:kmock` when no test file of the run uses kmock (its plugin costs ~1 s a start)."""
    files = {t.split("::", 1)[0] for t in tests}
    if any("kmock" in (ROOT / f).read_text() for f in files if (ROOT / f).is_file()):
        return []
    return ["-p", "no:kmock"]


class Runner:
    """Runs a target's tests against the real sources or against one mutant in a shadow copy."""

    def __init__(self, workdir: Path, python: str, extra_pytest: Sequence[str]) -> None:
        self.workdir = workdir
        self.python = python
        self.extra_pytest = list(extra_pytest)
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen[bytes]] = set()
        self._stopping = False

    def _pytest(
        self,
        tests: Sequence[str],
        shadow: Path | None,
        timeout: float,
        basetemp: Path,
        coverage: Sequence[str] = (),
        env_extra: dict[str, str] | None = None,
    ) -> tuple[str, float]:
        env = dict(os.environ)
        # bytecode goes to one cache in the work directory, never beside the sources: without
        # it every pytest start compiles pytest, its plugins and the tests again (~6 s here)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(self.workdir / "pycache")
        # tests/conftest.py: no Hypothesis deadline, no example database written by mutants
        env["LUMIGO_HYPOTHESIS_PROFILE"] = "mutation"
        env.update(env_extra or {})
        if shadow is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(shadow), env.get("PYTHONPATH", "")) if p
            )
        cmd = [
            self.python,
            *(["-m", "coverage", "run", *coverage] if coverage else []),
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"--basetemp={basetemp}",
            *_unused_plugins(tests),
            *self.extra_pytest,
            *tests,
        ]
        start = time.monotonic()
        with self._lock:
            if self._stopping:
                return "error (stopped)", 0.0
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._live.add(proc)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return "timeout", time.monotonic() - start
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            with self._lock:
                self._live.discard(proc)
        # 0 passed, 1 failed, 2 collection error (a mutant that breaks the import); anything
        # else (internal error, bad usage, no tests collected) is the tool's own failure
        outcome = {0: "passed", 1: "failed", 2: "failed"}.get(code, f"error (pytest exit {code})")
        return outcome, time.monotonic() - start

    @contextlib.contextmanager
    def stopping(self) -> Iterator[None]:
        """Kill the running tests and start no more until the block ends."""
        with self._lock:
            self._stopping = True
            live = list(self._live)
        for proc in live:
            _kill_group(proc)
        try:
            yield
        finally:
            with self._lock:
                self._stopping = False

    def baseline(
        self, name: str, tests: Sequence[str], sources: Sequence[str] | None, timeout: float
    ) -> tuple[str, float, CoverageMap | None]:
        """The unmutated run; with `sources`, under coverage, giving the module's map."""
        basetemp = self.workdir / f"baseline-{name}"
        if sources is None:
            return (*self._pytest(tests, None, timeout, basetemp), None)
        rc, data, order = (self.workdir / f"{name}.{ext}" for ext in ("coveragerc", "cov", "txt"))
        rc.write_text(
            "[run]\ninclude =\n" + "".join(f"    {os.path.realpath(ROOT / s)}\n" for s in sources)
        )
        plugin = self.workdir / "plugin"
        plugin.mkdir(exist_ok=True)
        (plugin / "_mutation_contexts.py").write_text(CONTEXT_PLUGIN)
        path = os.pathsep.join(p for p in (str(plugin), os.environ.get("PYTHONPATH", "")) if p)
        outcome, seconds = self._pytest(
            [*tests, "-p", "_mutation_contexts"],
            None,
            timeout,
            basetemp,
            coverage=[f"--rcfile={rc}", f"--data-file={data}"],
            env_extra={"PYTHONPATH": path, "MUTATION_TEST_ORDER": str(order)},
        )
        if outcome != "passed":
            return outcome, seconds, None
        return outcome, seconds, read_coverage_map(data, order, sources)

    def mutant(
        self,
        mutant: Mutant,
        text: str,
        tests: Sequence[str],
        selected: Sequence[str] | None,
        timeout: float,
    ) -> tuple[str, float]:
        """Run the selected tests (or the full list); a survivor is confirmed with the full list."""
        src = ROOT / mutant.source
        top = package_root(src)
        run_dir = Path(tempfile.mkdtemp(prefix="mutant-", dir=self.workdir))
        shadow, basetemp = run_dir / "src", run_dir / "pytest"
        ran = list(selected or tests)
        try:
            copied = shadow / top.name
            shutil.copytree(top, copied, ignore=shutil.ignore_patterns("__pycache__"))
            (copied / src.relative_to(top)).write_text(text)
            outcome, seconds = self._pytest(ran, shadow, timeout, basetemp)
            # a survivor of the selection is confirmed by the full list; so is a selection
            # pytest cannot find (a mutant can change the ids of parametrized tests)
            if selected and (outcome == "passed" or outcome.startswith("error (pytest exit")):
                ran = list(tests)
                outcome, more = self._pytest(ran, shadow, timeout, basetemp)
                seconds += more
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        if outcome.startswith("error"):
            raise ToolError(f"{mutant.source}:{mutant.line}: {outcome}: {' '.join(ran)}")
        return (
            "survived" if outcome == "passed" else "timeout" if outcome == "timeout" else "killed"
        ), seconds


class ToolError(Exception):
    """The run cannot be trusted (e.g. pytest could not collect the tests)."""


def equivalence(mutant: Mutant) -> str | None:
    """The written reason a survivor is equivalent, if it is listed (keys may use `*`)."""
    for pattern, reason in EQUIVALENT.items():
        if fnmatch.fnmatchcase(mutant.key, pattern):
            return reason
    return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_target(
    target: Target,
    runner: Runner,
    sample: int | None,
    rng: random.Random,
    deadline: float,
    module_budget: float,
    show: Any,
    baseline: bool = True,
    only: frozenset[str] | None = None,
    jobs: int = 1,
    select: bool = True,
) -> ModuleReport:
    """Baseline (and coverage map), then mutants until done or out of time (`only`: these keys)."""
    report = ModuleReport(target.name)
    planned: list[Planned] = []
    for source in target.sources:
        planned += mutants_of(source, (ROOT / source).read_text())
    report.mutants = len(planned)
    if only is not None:
        planned = [p for p in planned if p.mutant.key in only]
    elif sample is not None and sample < len(planned):
        planned = rng.sample(planned, sample)
    tests = list(target.tests)
    module_end = min(deadline, time.monotonic() + module_budget)
    cmap: CoverageMap | None = None
    if baseline:
        outcome, seconds, cmap = runner.baseline(
            target.name,
            tests,
            target.sources if select and planned else None,
            max(module_end - time.monotonic(), 1.0),
        )
        report.baseline_seconds = round(seconds, 1)
        if outcome != "passed":
            report.error = f"tests {outcome} without any mutant: {' '.join(tests)}"
            report.not_run = len(planned)
            return report
        if cmap is not None:
            show(f"  coverage map: {len(cmap.order)} tests, {seconds:.0f} s")
        per_mutant = seconds * 3 + 15
    else:
        seconds, per_mutant = 5.0, 120.0

    def one(p: Planned) -> Result | None:
        left = module_end - time.monotonic()
        if left < min(per_mutant, seconds + 5):
            return None
        chosen = cmap.select(p) if cmap is not None else None
        status, took = runner.mutant(p.mutant, p.text, tests, chosen, min(per_mutant, left))
        return Result(p.mutant, status, took)

    with ThreadPoolExecutor(max(1, jobs if target.concurrent else 1)) as pool:
        futures = [pool.submit(one, p) for p in planned]
        try:
            for future in futures:
                _record(report, future.result(), show)
        except BaseException:
            for future in futures:
                future.cancel()
            with runner.stopping():
                wait(futures)
            raise
    return report


def _record(report: ModuleReport, result: Result | None, show: Any) -> None:
    if result is None:
        report.not_run += 1
        return
    mutant, status = result.mutant, result.status
    reason = equivalence(mutant) if status == "survived" else None
    if reason is not None:
        status = "equivalent"
    report.run += 1
    setattr(report, status, getattr(report, status) + 1)
    show(
        f"  {status:10} {mutant.source}:{mutant.line} {mutant.operator}: "
        f"{mutant.before}  ->  {mutant.after}"
    )
    if status in ("survived", "equivalent"):
        entry = asdict(mutant) | {"key": mutant.key, "status": status}
        if status == "equivalent":
            entry["reason"] = reason
        report.survivors.append(entry)


def text_report(reports: Sequence[ModuleReport]) -> str:
    head = (
        f"{'module':14} {'mutants':>7} {'run':>5} {'killed':>6} {'survived':>8} "
        f"{'timeout':>7} {'equiv':>5} {'not run':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in reports:
        lines.append(
            f"{r.name:14} {r.mutants:7} {r.run:5} {r.killed:6} {r.survived:8} "
            f"{r.timeout:7} {r.equivalent:5} {r.not_run:7}"
            + (f"  ERROR: {r.error}" if r.error else "")
        )
    for r in reports:
        for s in r.survivors:
            if s["status"] == "survived":
                lines.append(
                    f"SURVIVED {r.name}: {s['source']}:{s['line']} [{s['scope']}] "
                    f"{s['operator']}: {s['before']}  ->  {s['after']}"
                )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [t.name for t in TARGETS]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--module", action="append", choices=names, help="repeatable; default: all")
    p.add_argument("--sample", type=int, help="run N random mutants per module")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    p.add_argument("--budget-seconds", type=float, default=3600.0, help="whole run")
    p.add_argument("--module-budget-seconds", type=float, help="per module (default: whole)")
    p.add_argument("--json", type=Path, help="write the JSON report here")
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the unmutated run (when the same tests just passed, e.g. on CI)",
    )
    p.add_argument(
        "--rerun",
        type=Path,
        help="run only the survivors of an earlier --json report (e.g. after adding tests)",
    )
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument(
        "--fail-on-survivors",
        action="store_true",
        help="exit 1 when a survivor is not in the equivalent list",
    )
    p.add_argument("--target", help="ad-hoc: one source file (with --tests), instead of --module")
    p.add_argument("--tests", nargs="+", help="ad-hoc: the tests of --target")
    p.add_argument("--workdir", type=Path, help="where shadow copies go (default: system temp)")
    p.add_argument("--pytest-arg", action="append", default=[], help="extra pytest argument")
    p.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    p.add_argument(
        "--no-select",
        action="store_true",
        help="run every mutant against the module's full test list (no coverage map)",
    )
    args = p.parse_args(argv)
    if bool(args.target) != bool(args.tests):
        p.error("--target and --tests go together")
    if args.sample is not None and args.sample < 1:
        p.error("--sample must be at least 1")
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.target:
        source = os.path.relpath(Path(args.target).resolve(), ROOT)
        targets: list[Target] = [Target("adhoc", (source,), tuple(args.tests))]
    else:
        chosen = set(args.module or [t.name for t in TARGETS])
        targets = [t for t in TARGETS if t.name in chosen]

    if args.list:
        for target in targets:
            for source in target.sources:
                for mutant, *_ in mutants_of(source, (ROOT / source).read_text()):
                    print(
                        f"{target.name}\t{mutant.source}:{mutant.line}\t{mutant.operator}\t"
                        f"{mutant.before}  ->  {mutant.after}"
                    )
        return 0

    def show(line: str) -> None:
        print(line, flush=True)

    # SIGTERM behaves like Ctrl-C: the `finally` blocks remove the shadow copies.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    work_parent = args.workdir or Path(tempfile.gettempdir())
    work_parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="lumigo-mutation-", dir=work_parent))
    only: frozenset[str] | None = None
    if args.rerun:
        earlier = json.loads(args.rerun.read_text())
        only = frozenset(
            s["key"]
            for module in earlier["modules"]
            for s in module["survivors"]
            if s["status"] == "survived"
        )
    rng = random.Random(args.seed)
    start = time.monotonic()
    deadline = start + args.budget_seconds
    module_budget = args.module_budget_seconds or args.budget_seconds
    reports: list[ModuleReport] = []
    runner = Runner(workdir, sys.executable, args.pytest_arg)
    try:
        for target in targets:
            show(f"== {target.name}")
            try:
                reports.append(
                    run_target(
                        target,
                        runner,
                        args.sample,
                        rng,
                        deadline,
                        module_budget,
                        show,
                        baseline=not args.no_baseline,
                        only=only,
                        jobs=args.jobs,
                        select=not args.no_select,
                    )
                )
            except (OSError, SyntaxError, ToolError) as exc:
                reports.append(ModuleReport(target.name, error=f"{type(exc).__name__}: {exc}"))
    except KeyboardInterrupt:
        show("interrupted: sources untouched, shadow copies removed")
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(text_report(reports))
    print(f"took {time.monotonic() - start:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"seed": args.seed, "sample": args.sample, "modules": [asdict(r) for r in reports]},
                indent=2,
            )
        )
    if any(r.error for r in reports):
        return 2
    if args.fail_on_survivors and any(r.survived for r in reports):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
