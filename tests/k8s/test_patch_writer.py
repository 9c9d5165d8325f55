"""The webhook's directly written JSONPatch is the general path's, byte for byte.

`patch_writer.written` writes a fresh Pod injection's JSONPatch as JSON text without running
`inject`; where it answers (else the webhook runs `inject`), its text must be exactly
`orjson.dumps` of the operations `inject` records, with the same reason and warnings: over
generated pods and workloads (fresh, and again after an injection), the mutation corpus,
and through the webhook's answer (the answer with the writer on equals the answer with it off).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from hypothesis import event, given

from lumigo_injector.k8s import patch_writer
from lumigo_injector.k8s.mutation import InjectionSettings, inject
from lumigo_injector.serve import webhook
from lumigo_injector.spec.delivery import IMAGE_VOLUME
from tests.helpers.kube import admission_review, deployment_pod
from tests.k8s.mutation_cases import cases
from tests.k8s.test_mutation_properties import PROPERTIES, all_settings, namespaces, objects


def _same_as_inject(obj: dict[str, Any], settings: InjectionSettings, ns: Any) -> bool:
    """Whether the writer answered for `obj`; when it did, it must equal `inject`."""
    before = copy.deepcopy(obj)
    written = patch_writer.written(obj, settings, ns)
    assert obj == before  # the pod is read, never changed
    if written is None:
        return False
    general = inject(copy.deepcopy(obj), settings, ns)
    if not written.injected:  # a pod that does not ask: `inject`'s skip, reason and all
        assert not general.injected and written.patch_json == b""
        assert (written.reason, written.warnings) == (general.reason, general.warnings)
        return True
    assert general.injected and general.patch is not None
    assert written.patch_json == orjson.dumps(general.patch)
    assert (written.reason, written.warnings) == (general.reason, general.warnings)
    return True


@PROPERTIES
@given(objects, all_settings, all_settings, namespaces)
def test_written_patch_equals_the_general_path(
    obj: dict[str, Any], first: InjectionSettings, then: InjectionSettings, ns: Any
) -> None:
    event(f"written: {_same_as_inject(obj, first, ns)}")
    once = inject(copy.deepcopy(obj), first, ns)
    _same_as_inject(once.obj, then, ns)  # injected already: `inject` decides


def test_written_patch_equals_the_general_path_over_the_corpus() -> None:
    taken = sum(_same_as_inject(obj, settings, ns) for _name, obj, settings, ns in cases())
    assert taken >= 50  # the writer answers for the common pods of the corpus


@pytest.mark.parametrize(
    "settings",
    [
        InjectionSettings(),
        InjectionSettings(endpoint="http://collector:4318/$(X)", layer_version="0.2.0"),
        InjectionSettings(delivery=IMAGE_VOLUME, secret_name="s", secret_key="k"),
    ],
)
def test_the_benchmark_pod_and_its_variants_are_written(settings: InjectionSettings) -> None:
    pods = [
        deployment_pod("web", annotations={"lumigo.io/inject": "python", "seq": "1"}),
        deployment_pod("api", annotations={"lumigo.io/inject": "python", "x": "é ✓"}),
    ]
    two = deployment_pod("web", annotations={"lumigo.io/inject": "python"})
    two["spec"]["containers"].append({"name": "side", "image": "x", "env": None})
    two["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    two["spec"]["initContainers"] = [{"name": "migrate", "image": "m"}]
    two["spec"]["securityContext"] = {"runAsUser": 0}
    pods.append(two)
    odd = deployment_pod("web", annotations={"lumigo.io/inject": "python"})
    odd["spec"]["containers"][0]["env"] = [  # kept in the record: floats and non-ASCII text
        {"name": "PYTHONPATH", "value": "/é", "weight": 1e16},
        {"name": "AUTOWRAPT_BOOTSTRAP", "value": "x", "n": 2.5},
        {"name": "LUMIGO_CONTAINER_NAME", "value": "mine"},
    ]
    pods.append(odd)
    for pod in pods:
        assert _same_as_inject(pod, settings, None)
        assert _same_as_inject(pod, settings, {"lumigo.io/enable-logs": "true"})


def test_the_webhook_answers_the_same_with_and_without_the_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pods = [
        deployment_pod("web", annotations={"lumigo.io/inject": "python", "seq": str(n)})
        for n in range(3)
    ]
    pods.append(deployment_pod("web", annotations={"lumigo.io/inject": "false"}))
    pods.append(deployment_pod("web", annotations={"other": "x"}))
    pods.append(deployment_pod("web"))
    bodies = [json.dumps(admission_review(pod, namespace="shop")).encode() for pod in pods]

    async def answers() -> list[tuple[bytes, list[dict[str, Any]]]]:
        async def lookup(_: str) -> Mapping[str, str]:
            return {}

        admission = webhook.Admission(injection=InjectionSettings(), namespaces=lookup)
        out = []
        for body in bodies:
            answer = await webhook.review_answer(admission, body)
            review = json.loads(body)["request"]
            decision = await admission.admit(
                webhook.AdmissionRequest("", "Pod", "CREATE", "shop", review["object"])
            )
            out.append((answer, decision.operations()))
        return out

    written = asyncio.run(answers())
    monkeypatch.setattr(patch_writer, "ENABLED", False)
    general = asyncio.run(answers())
    assert [a for a, _ in written] == [a for a, _ in general]
    assert [ops for _, ops in written] == [ops for _, ops in general]
    assert all(ops for _, ops in written[:3])


def test_pods_that_do_not_ask_get_injects_reason() -> None:
    asked = {"lumigo.io/inject": "python"}
    for asking, ns in [
        ({"lumigo.io/inject": "false"}, None),
        ({"lumigo.io/inject": " Java "}, None),
        ({"other": "x"}, None),
        ({"other": "x"}, {"lumigo.io/inject": "false"}),
        ({"lumigo.io/inject": "false"}, asked),
    ]:
        pod = deployment_pod("web", annotations=asking)
        assert _same_as_inject(pod, InjectionSettings(), ns)
        written = patch_writer.written(pod, InjectionSettings(), ns)
        assert written is not None and not written.injected
