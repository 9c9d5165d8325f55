"""Namespace opt-in as the webhook sees it: the watcher's latest word wins, both ways."""

from __future__ import annotations

import asyncio
import threading

from lumigo_injector.serve.namespaces import NamespaceDirectory, api_fetcher, opt_in_view
from lumigo_injector.spec import names as c
from tests.helpers.kube import KubeEmulator

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


def test_a_namespace_the_watcher_reported_after_a_failed_read_is_read_again_once_recreated() -> (
    None
):
    """A failed read is remembered (no retry storm) only until the watcher knows better."""
    answers = iter([None, opt_in_view(OPTED_IN)])  # 404 at first: created a moment later
    reads: list[str] = []

    def fetch(name: str) -> dict[str, str] | None:
        reads.append(name)
        return next(answers)

    async def scenario() -> list[dict[str, str]]:
        directory = NamespaceDirectory(fetch, negative_ttl=3600)
        seen = [dict(await directory.get("shop"))]  # not there yet: no opt-in
        seen.append(dict(await directory.get("shop")))  # the failure is remembered: no read
        directory.update("shop", opt_in_view({}))  # the watcher: ADDED
        directory.forget("shop")  # deleted ...
        seen.append(dict(await directory.get("shop")))  # ... recreated, before the watcher says
        return seen

    assert asyncio.run(scenario()) == [{}, {}, {c.ANNOTATION_INJECT: "python"}]
    assert reads == ["shop", "shop"]


def test_a_watch_update_during_a_slow_read_wins_over_the_older_read() -> None:
    reading = threading.Event()
    release = threading.Event()

    def slow_fetch(name: str) -> dict[str, str]:
        reading.set()
        release.wait(30)
        return opt_in_view(OPTED_IN)  # what the namespace said when the read started

    async def scenario() -> dict[str, str]:
        directory = NamespaceDirectory(slow_fetch, fetch_timeout=30)
        pending = asyncio.ensure_future(directory.get("shop"))
        await asyncio.to_thread(reading.wait, 30)
        directory.update("shop", opt_in_view(OPTED_OUT))  # the watcher, meanwhile
        release.set()
        return dict(await pending)

    assert asyncio.run(scenario()) == {c.ANNOTATION_INJECT: "false"}


def test_a_namespace_read_that_hangs_counts_as_no_opt_in() -> None:
    release = threading.Event()

    def hanging_fetch(name: str) -> dict[str, str]:
        release.wait(30)
        return opt_in_view(OPTED_IN)

    async def scenario() -> dict[str, str]:
        directory = NamespaceDirectory(hanging_fetch, fetch_timeout=0.05)
        try:
            return dict(await directory.get("shop"))
        finally:
            release.set()

    assert asyncio.run(scenario()) == {}


def test_reading_namespaces_from_the_api_server() -> None:
    from kubernetes import client

    with KubeEmulator() as kube:
        kube.create_namespace("annotated", {c.ANNOTATION_INJECT: "python"})
        kube.create(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "labelled", "labels": {c.ANNOTATION_INJECT: "python"}}},
        )  # fmt: skip
        kube.create_namespace("plain")
        fetch = api_fetcher(client.CoreV1Api(client.ApiClient(client.Configuration(kube.url))))
        assert fetch("annotated") == {c.ANNOTATION_INJECT: "python"}
        assert fetch("labelled") == {c.ANNOTATION_INJECT: "python"}
        assert fetch("plain") == {}
        assert fetch("missing") is None  # 404: not there (yet)
