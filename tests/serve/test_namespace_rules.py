"""Namespace opt-in as the webhook sees it: the watcher's latest word wins, both ways."""

from __future__ import annotations

import asyncio

from lumigo_injector.serve.namespaces import NamespaceDirectory, opt_in_view
from lumigo_injector.spec import names as c

OPTED_IN = {"labels": {c.ANNOTATION_INJECT: "python"}}
OPTED_OUT = {
    "labels": {c.ANNOTATION_INJECT: "python"},
    "annotations": {c.ANNOTATION_INJECT: "false"},
}


def test_a_namespace_that_opts_out_after_opting_in_is_opted_out() -> None:
    reads: list[str] = []

    def fetch(name: str) -> dict[str, str]:
        reads.append(name)
        return opt_in_view(OPTED_IN)

    async def scenario() -> list[dict[str, str]]:
        directory = NamespaceDirectory(fetch)
        seen = [dict(await directory.get("shop"))]  # first read through the API
        directory.update("shop", opt_in_view(OPTED_OUT))  # the watcher: MODIFIED
        seen.append(dict(await directory.get("shop")))
        directory.update("shop", opt_in_view({}))  # label removed too
        seen.append(dict(await directory.get("shop")))
        directory.update("shop", opt_in_view(OPTED_IN))  # and back in
        seen.append(dict(await directory.get("shop")))
        return seen

    seen = asyncio.run(scenario())
    assert seen == [
        {c.ANNOTATION_INJECT: "python"},
        {c.ANNOTATION_INJECT: "false"},
        {},
        {c.ANNOTATION_INJECT: "python"},
    ]
    assert reads == ["shop"]  # once known, the watcher is the source


def test_a_deleted_and_recreated_namespace_is_read_again() -> None:
    answers = iter([opt_in_view(OPTED_IN), opt_in_view({})])
    reads: list[str] = []

    def fetch(name: str) -> dict[str, str]:
        reads.append(name)
        return next(answers)

    async def scenario() -> tuple[dict[str, str], dict[str, str]]:
        directory = NamespaceDirectory(fetch)
        first = dict(await directory.get("tmp"))
        directory.forget("tmp")
        return first, dict(await directory.get("tmp"))

    assert asyncio.run(scenario()) == ({c.ANNOTATION_INJECT: "python"}, {})
    assert reads == ["tmp", "tmp"]
