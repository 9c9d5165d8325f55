"""The admission path's cheap parts: JSON with or without orjson, and aggregated decision logs."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

import pytest

from lumigo_injector.serve import fastjson, webhook
from lumigo_injector.serve.decision_log import DecisionLog
from lumigo_injector.serve.review import MalformedReview, parse_review
from lumigo_injector.spec import names as c
from tests.helpers import need
from tests.helpers.kube import admission_review, deployment_pod

REVIEW = admission_review(deployment_pod("web", annotations={"x": "é ✓"}), namespace="shop")


@pytest.fixture(params=["orjson", "stdlib"])
def json_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "stdlib":
        monkeypatch.setattr(fastjson, "orjson", None)
    elif fastjson.orjson is None:
        need.missing("orjson is not installed")
    return str(request.param)


def test_both_json_paths_read_and_write_the_same_documents(json_impl: str) -> None:
    body = json.dumps(REVIEW).encode()
    assert fastjson.loads(body) == REVIEW
    assert json.loads(fastjson.dumps(REVIEW)) == REVIEW
    assert fastjson.dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()


def test_what_orjson_refuses_is_decided_by_the_standard_library(json_impl: str) -> None:
    assert math.isnan(fastjson.loads(b'{"v": NaN}')["v"])
    assert fastjson.dumps({"big": 2**70}) == b'{"big":1180591620717411303424}'
    with pytest.raises(ValueError):
        fastjson.loads(b"{not json")
    with pytest.raises(MalformedReview, match="not valid JSON"):
        parse_review(b"\xff\xfe")


def test_decisions_are_logged_once_then_summed_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lumigo_injector.webhook")

    async def scenario() -> None:
        decisions = DecisionLog(interval=0.05)
        for _ in range(30):
            decisions("shop", "web-7d4b9c5f8d-*", True, "injected into 1 container")
        decisions("shop", "batch-*", False, "opted out")
        # the first of each kind is logged at once, repeats only counted
        assert [r.getMessage() for r in caplog.records] == [
            "pod web-7d4b9c5f8d-*: injected: injected into 1 container",
            "pod batch-*: not injected: opted out",
        ]
        while len(caplog.records) < 3:  # the window closes on the loop's timer
            await asyncio.sleep(0.01)
        decisions("shop", "web-7d4b9c5f8d-*", True, "injected into 1 container")
        decisions.close()

    asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert (
        messages[2]
        == "pod web-7d4b9c5f8d-*: injected: injected into 1 container (29 more in the last 0.05s)"
    )
    assert getattr(caplog.records[2], "repeats", None) == 29
    assert getattr(caplog.records[2], "namespace", None) == "shop"
    # a new window starts with a line of its own; the batch pod never repeated: no summary
    assert messages[3:] == ["pod web-7d4b9c5f8d-*: injected: injected into 1 container"]


def test_decision_lines_cost_nothing_above_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="lumigo_injector.webhook")
    decisions = DecisionLog()
    decisions("shop", "web-*", True, "ok")  # no running loop needed: nothing is scheduled
    decisions.close()
    assert caplog.records == []


def test_replicas_of_one_pod_reuse_the_decision_and_nothing_else_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second replica's answer comes from the cache: the mutation is not run again."""
    from lumigo_injector.k8s import patch_writer
    from lumigo_injector.k8s.mutation import InjectionSettings, MutationResult, inject
    from lumigo_injector.serve.review import AdmissionRequest
    from lumigo_injector.serve.webhook import Admission, Decision

    namespaces: dict[str, dict[str, str]] = {"shop": {}}
    mutated: list[str] = []

    async def lookup(name: str) -> dict[str, str]:
        return namespaces[name]

    def counted(pod: Any, *args: Any, **kwargs: Any) -> MutationResult:
        mutated.append(pod["metadata"]["generateName"])
        return inject(pod, *args, **kwargs)

    def counted_written(pod: Any, *args: Any, **kwargs: Any) -> patch_writer.Written | None:
        result = written(pod, *args, **kwargs)
        if result is not None:  # decided here: `inject` is not run
            mutated.append(pod["metadata"]["generateName"])
        return result

    written = patch_writer.written
    monkeypatch.setattr(webhook, "inject", counted)
    monkeypatch.setattr(patch_writer, "written", counted_written)
    admission = Admission(injection=InjectionSettings(), namespaces=lookup)
    asking = deployment_pod("web", annotations={c.ANNOTATION_INJECT: "python"})
    silent = deployment_pod("quiet")

    def decide(pod: dict[str, object]) -> Decision:
        request = AdmissionRequest("u", "Pod", "CREATE", "shop", pod)
        return asyncio.run(admission.decide(request))

    first, second = decide(asking), decide(json.loads(json.dumps(asking)))
    assert admission.cache.hits == 1 and second == first and first.operations()
    assert not decide(silent).operations()
    # the namespace opts in: the same pod object is decided anew, and injected
    namespaces["shop"] = {c.ANNOTATION_INJECT: "python"}
    assert decide(silent).operations()
    assert admission.cache.hits == 1
    assert mutated == ["web-7d4b9c5f8d-", "quiet-7d4b9c5f8d-", "quiet-7d4b9c5f8d-"]


def test_the_decision_cache_keeps_the_256_most_recently_used_decisions() -> None:
    from lumigo_injector.k8s.mutation import InjectionSettings
    from lumigo_injector.serve.review import AdmissionRequest
    from lumigo_injector.serve.webhook import Admission
    from lumigo_injector.spec import names as c

    async def lookup(name: str) -> dict[str, str]:
        return {}

    admission = Admission(injection=InjectionSettings(), namespaces=lookup)
    pods = [
        deployment_pod(f"app{n}", annotations={c.ANNOTATION_INJECT: "python"}) for n in range(258)
    ]

    async def scenario() -> list[int]:
        async def decide(n: int) -> None:
            await admission.decide(AdmissionRequest("u", "Pod", "CREATE", "shop", pods[n]))

        hits = []
        for n in range(256):
            await decide(n)
        await decide(0)  # still kept: 256 decisions fit
        hits.append(admission.cache.hits)
        await decide(256)  # the 257th: the least recently used (app1) goes
        await decide(0)
        hits.append(admission.cache.hits)
        await decide(1)
        hits.append(admission.cache.hits)
        return hits

    assert asyncio.run(scenario()) == [1, 2, 2]
    assert len(admission.cache) == 256
