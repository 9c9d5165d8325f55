"""Namespace opt-in as the webhook sees it: the watcher's latest word wins, both ways."""

from __future__ import annotations

import asyncio
import logging
import threading
import types

import kmock
import pytest

from lumigo_injector.serve import namespaces
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


def test_the_failed_reads_remembered_are_the_most_recent_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At most `max_failed` failures are remembered; the one that failed longest ago goes."""
    now = [1000.0]
    monkeypatch.setattr(namespaces, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    reads: list[str] = []

    def fetch(name: str) -> None:
        reads.append(name)
        return None  # not there

    async def scenario() -> int:
        directory = NamespaceDirectory(fetch, negative_ttl=5, max_failed=2)
        await directory.get("a")
        now[0] += 3
        await directory.get("b")
        now[0] += 3  # a's failure has expired, b's has not
        await directory.get("a")  # read again, failed again: now the most recent
        await directory.get("c")  # a third failure: b, the oldest, is forgotten
        await directory.get("a")  # remembered: not read
        await directory.get("b")  # forgotten: read again
        return directory.failed_count

    assert asyncio.run(scenario()) == 2
    assert reads == ["a", "b", "a", "c", "b"]


def test_a_namespace_the_api_refuses_to_show_is_logged_with_the_api_servers_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from kubernetes import client

    async def scenario() -> dict[str, str]:
        async with kmock.RawHandler() as api, kmock.Server(api) as server:
            forbidden = {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403}
            api["get /api/v1/namespaces/locked"] << 403 << forbidden
            url = str(server.url).rstrip("/")
            core = client.CoreV1Api(client.ApiClient(client.Configuration(url)))
            directory = NamespaceDirectory(api_fetcher(core))
            return dict(await directory.get("locked"))

    caplog.set_level(logging.WARNING, logger="lumigo_injector.namespaces")
    assert asyncio.run(scenario()) == {}  # the pod's own annotations decide
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("cannot read namespace locked ((403)")
    assert "Forbidden" in line


def test_the_fleet_checks_see_the_watchers_latest_word_and_never_read_the_api() -> None:
    """The fleet's periodic pass asks `cached`: what the watcher reported, None if nothing."""
    reads: list[str] = []

    def fetch(name: str) -> dict[str, str]:
        reads.append(name)
        return opt_in_view(OPTED_IN)

    directory = NamespaceDirectory(fetch)
    assert directory.cached("shop") is None  # not reported yet: unknown
    directory.update("shop", opt_in_view(OPTED_IN))
    assert directory.cached("shop") == {c.ANNOTATION_INJECT: "python"}
    directory.update("shop", opt_in_view(OPTED_OUT))
    assert directory.cached("shop") == {c.ANNOTATION_INJECT: "false"}
    directory.forget("shop")
    assert directory.cached("shop") is None
    assert reads == []
