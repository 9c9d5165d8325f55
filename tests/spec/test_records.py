"""`cheap_init`: a frozen dataclass made faster to build behaves as the plain one does."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from lumigo_injector.k8s.mutation import MutationResult
from lumigo_injector.serve.review import AdmissionRequest
from lumigo_injector.serve.webhook import Decision
from lumigo_injector.spec.records import cheap_init


@dataclasses.dataclass(frozen=True)
class Reference:
    obj: Any
    flag: bool
    text: str = "t"
    items: list[str] = dataclasses.field(default_factory=list)
    rest: tuple[str, ...] = ()


@cheap_init
@dataclasses.dataclass(frozen=True)
class Cheap:
    obj: Any
    flag: bool
    text: str = "t"
    items: list[str] = dataclasses.field(default_factory=list)
    rest: tuple[str, ...] = ()


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((1, True), {}),
    ((1, False, "x"), {}),
    ((), {"obj": None, "flag": True, "rest": ("a",)}),
    (({"a": 1}, True), {"items": ["i"], "text": "y"}),
    ((1, True, "x", ["a"], ("b",)), {}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_built_alike_and_still_frozen(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    cheap, reference = Cheap(*args, **kwargs), Reference(*args, **kwargs)

    assert dataclasses.astuple(cheap) == dataclasses.astuple(reference)
    assert repr(cheap).replace("Cheap", "Reference") == repr(reference)
    assert cheap == Cheap(*args, **kwargs)
    assert dataclasses.replace(cheap, text="z").text == "z"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cheap.text = "z"  # type: ignore[misc]


def test_a_default_factory_gives_each_record_its_own_value() -> None:
    first, second = Cheap(1, True), Cheap(2, True)
    assert first.items == [] and first.items is not second.items


def test_wrong_calls_fail_as_they_do_for_the_dataclass() -> None:
    for call in (
        lambda cls: cls(),
        lambda cls: cls(1, True, nope=1),
        lambda cls: cls(1, 2, 3, 4, 5, 6),
    ):
        with pytest.raises(TypeError):
            call(Reference)
        with pytest.raises(TypeError):
            call(Cheap)


def test_only_plain_frozen_dataclasses_are_taken() -> None:
    @dataclasses.dataclass
    class Plain:
        a: int

    @dataclasses.dataclass(frozen=True)
    class KeywordOnly:
        a: int = dataclasses.field(kw_only=True)

    for cls in (Plain, KeywordOnly, int):
        with pytest.raises(TypeError):
            cheap_init(cls)


def test_the_admission_records_keep_their_fields_and_defaults() -> None:
    result = MutationResult({"a": 1}, True, "why")
    assert (result.warnings, result.unannotated, result.patch) == ((), False, None)
    decision = Decision()
    assert decision.patch == [] and decision.patch is not Decision().patch
    assert (decision.warnings, decision.injected, decision.reason, decision.failed) == (
        (), False, "", False,
    )  # fmt: skip
    request = AdmissionRequest("u", "Pod", "CREATE", None, None)
    assert (request.dry_run, request.obj_json) == (False, None)
