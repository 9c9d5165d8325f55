"""The mutation's one-pass steps give exactly what the general steps give.

`steps.set_env` appends what it adds to an env without `OTEL_RESOURCE_ATTRIBUTES` in one
pass (`_appended`, `EnvEdits.extend`); with `ONE_PASS_APPEND` off, each entry goes through
the general path one by one. Over generated pods (env lists with and without our names,
`valueFrom`, nulls, envFrom, volumes, init containers, annotations, workloads) and then
again after an injection (upgrades, switches), both give the same object, JSONPatch,
state annotation, reason and warnings, byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
import pytest
from hypothesis import given

from lumigo_injector.k8s import steps
from lumigo_injector.k8s.mutation import InjectionSettings, inject
from tests.k8s.mutation_cases import cases, outcome
from tests.k8s.test_mutation_properties import PROPERTIES, all_settings, namespaces, objects


def _both(obj: dict[str, Any], settings: InjectionSettings, ns: Any) -> tuple[str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(steps, "ONE_PASS_APPEND", False)
        general = outcome(obj, settings, ns)
    return outcome(obj, settings, ns), general


@PROPERTIES
@given(objects, all_settings, all_settings, namespaces)
def test_one_pass_equals_the_general_path(
    obj: dict[str, Any], first: InjectionSettings, then: InjectionSettings, ns: Any
) -> None:
    fast, general = _both(obj, first, ns)
    assert fast == general
    once = inject(obj, first, ns)
    if once.patch is not None:  # applied, the patch gives the same pod
        applied = jsonpatch.apply_patch(obj, once.patch, in_place=False)
        assert json.dumps(applied) == json.dumps(once.obj)
    fast, general = _both(once.obj, then, ns)  # upgrade, switch, or already injected
    assert fast == general


def test_one_pass_equals_the_general_path_over_the_corpus() -> None:
    """The hand-made odd pods and the real-world corpus of `mutation_cases` too."""
    for _name, obj, settings, namespace in cases():
        fast, general = _both(obj, settings, namespace)
        assert fast == general, _name
