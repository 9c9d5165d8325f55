"""Fail-open over real HTTPS: the webhook server runs in this process with real TLS, so that a
fault can be put where production code would fail (a namespace lookup, the Event recorder, the
handler itself) without any test hook in the served code path. The served path's other parts
are here too: the Events and log lines of each decision, reading the body, what is decided on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from lumigo_injector.k8s.mutation import InjectionSettings
from lumigo_injector.serve import events, metrics, webhook
from lumigo_injector.serve.kube_http import KubeHttp
from lumigo_injector.serve.tls import ReloadingTLS
from lumigo_injector.spec import names as c
from tests.helpers.kube import (
    KubeEmulator,
    TestCertificates,
    admission_review,
    deployment_pod,
)


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    return TestCertificates(tmp_path_factory.mktemp("failopen") / "tls")


@contextlib.asynccontextmanager
async def served(
    admission: webhook.Admission, certs: TestCertificates, idle_timeout: float = 30.0
) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """The webhook on a free port over TLS, and a client session that trusts its CA."""
    tls = ReloadingTLS(certs.cert_file, certs.key_file)
    assert tls.reload()
    runner = await webhook.start(admission, "127.0.0.1", 0, tls.front, idle_timeout=idle_timeout)
    port = runner.addresses[0][1]
    client_tls = ssl.create_default_context(cafile=str(certs.ca_file))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_tls)) as client:
            yield f"https://127.0.0.1:{port}{webhook.PATH}", client
    finally:
        await runner.cleanup()


async def post_review(client: aiohttp.ClientSession, url: str, review: Any) -> dict[str, Any]:
    async with client.post(url, data=json.dumps(review)) as answer:
        assert answer.status == 200, await answer.text()
        response: dict[str, Any] = (await answer.json())["response"]
        return response


def asking_pod(name: str) -> dict[str, Any]:
    return deployment_pod(name, annotations={c.ANNOTATION_INJECT: "python"})


def test_error_inside_the_decision_admits_unchanged_and_posts_a_warning_event(
    kube: KubeEmulator, certs: TestCertificates
) -> None:
    kube.create_namespace("ns-broken-lookup")
    error = "namespace store is broken: " + "x" * 400  # an error text is cut to 256 characters

    async def broken_lookup(_: str) -> dict[str, str]:
        raise RuntimeError(error)

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        api = KubeHttp(kube.url)
        recorder = events.EventRecorder(api, interval=0.05)
        admission = webhook.Admission(
            injection=InjectionSettings(), namespaces=broken_lookup, recorder=recorder
        )
        try:
            async with served(admission, certs) as (url, client):
                review = admission_review(asking_pod("fragile"), namespace="ns-broken-lookup")
                response = await post_review(client, url, review)
                found: list[dict[str, Any]] = []
                for _ in range(200):
                    found = await asyncio.to_thread(kube.events, "ns-broken-lookup")
                    if found:
                        break
                    await asyncio.sleep(0.05)
                return response, found
        finally:
            await recorder.close()
            await api.close()

    response, found = asyncio.run(scenario())
    assert response["allowed"] is True and "patch" not in response
    assert response["warnings"] == [
        ("lumigo-injector: pod admitted without injection: " + error)[:256]
    ]
    (event,) = found
    assert (event["reason"], event["type"]) == ("LumigoInjectionFailed", "Warning")
    assert event["message"] == "pod fragile-7d4b9c5f8d-*: injection failed: " + error[:256]


def test_each_decision_on_a_pod_that_asked_posts_one_event_and_a_log_line(
    kube: KubeEmulator, certs: TestCertificates, caplog: pytest.LogCaptureFixture
) -> None:
    """What `kubectl describe` and the injector's log show per admission: injected or
    skipped (a Warning when injection warned), nothing for a pod that never asked or a dry
    run; an injected pod (not a dry run) asks for its namespace's token Secret check."""
    opted, plain = "ns-events-opted", "ns-events-plain"
    for name in (opted, plain):
        kube.create_namespace(name)

    async def lookup(namespace: str) -> dict[str, str]:
        return {c.ANNOTATION_INJECT: "python"} if namespace == opted else {}

    long_value = "nope-" + "x" * 400  # the skip reason quotes it: cut to 256 characters
    reviews = [
        admission_review(deployment_pod("auto"), namespace=opted),
        admission_review(
            deployment_pod("optout", annotations={c.ANNOTATION_INJECT: long_value}),
            namespace=opted,
        ),
        admission_review(
            deployment_pod(
                "ghost",
                annotations={
                    c.ANNOTATION_INJECT: "python",
                    c.ANNOTATION_CONTAINER_NAMES: "ghost,nobody",
                },
            ),
            namespace=plain,
        ),
        admission_review(deployment_pod("silent"), namespace=plain),
        admission_review(asking_pod("rehearsal"), namespace=plain, dry_run=True),
    ]
    secret_checks: list[str] = []

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        api = KubeHttp(kube.url)
        recorder = events.EventRecorder(api, interval=3600)
        admission = webhook.Admission(
            injection=InjectionSettings(),
            namespaces=lookup,
            recorder=recorder,
            on_injected=secret_checks.append,
        )
        try:
            async with served(admission, certs) as (url, client):
                answers = [await post_review(client, url, review) for review in reviews]
            await recorder.flush()
            found = {name: await asyncio.to_thread(kube.events, name) for name in (opted, plain)}
            return answers, found
        finally:
            admission.decisions.close()
            await recorder.close()
            await api.close()

    with caplog.at_level(logging.INFO, logger="lumigo_injector.webhook"):
        answers, found = asyncio.run(scenario())
    assert [("patch" in answer) for answer in answers] == [True, False, True, False, True]
    by_pod = {
        e["involvedObject"]["name"]: (e["reason"], e["type"], e["message"])
        for name in (opted, plain)
        for e in found[name]
    }
    skipped = by_pod.pop("optout-7d4b9c5f8d")
    assert skipped[:2] == ("LumigoSkipped", "Normal")
    assert skipped[2].startswith(
        f"pod optout-7d4b9c5f8d-*: skipped: annotation {c.ANNOTATION_INJECT}='nope-x"
    )
    assert len(skipped[2]) == len("pod optout-7d4b9c5f8d-*: ") + 256
    assert by_pod == {
        "auto-7d4b9c5f8d": (
            "LumigoInjected",
            "Normal",
            "pod auto-7d4b9c5f8d-*: injected containers: auto (init-container)",
        ),
        "ghost-7d4b9c5f8d": (
            "LumigoInjected",
            "Warning",
            "pod ghost-7d4b9c5f8d-*: injected containers: ghost (init-container) "
            f"(lumigo-injector: {c.ANNOTATION_CONTAINER_NAMES}: no container named 'nobody')",
        ),
    }
    assert [len(found[opted]), len(found[plain])] == [2, 1]  # silent, rehearsal: none
    logged = [r.getMessage() for r in caplog.records]
    assert (
        logged[0] == "pod auto-7d4b9c5f8d-*: injected: injected containers: auto (init-container)"
    )
    assert logged[1].startswith("pod optout-7d4b9c5f8d-*: not injected: skipped: annotation")
    assert logged[2:] == [
        "pod ghost-7d4b9c5f8d-*: injected: injected containers: ghost (init-container)",
        "pod rehearsal-7d4b9c5f8d-*: injected: injected containers: rehearsal (init-container)",
    ]
    assert secret_checks == [opted, plain]


class _RecorderThatFails(events.EventRecorder):
    def record(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("recorder exploded")


async def _no_annotations(_: str) -> dict[str, str]:
    return {}


def _failing_recorder(admission_kwargs: dict[str, Any]) -> None:
    admission_kwargs["recorder"] = _RecorderThatFails(KubeHttp("http://127.0.0.1:9"))


def _failing_never_injected(admission_kwargs: dict[str, Any]) -> None:
    def never_injected(namespace: str | None) -> bool:
        raise RuntimeError(f"cannot tell whether {namespace} is excluded")

    admission_kwargs["never_injected"] = never_injected


@pytest.mark.parametrize("breakage", [_failing_recorder, _failing_never_injected])
def test_error_outside_the_guarded_decision_still_admits_the_pod_unchanged(
    breakage: Callable[[dict[str, Any]], None],
    certs: TestCertificates,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kwargs: dict[str, Any] = {"injection": InjectionSettings(), "namespaces": _no_annotations}
    breakage(kwargs)
    admission = webhook.Admission(**kwargs)

    async def scenario() -> dict[str, Any]:
        async with served(admission, certs) as (url, client):
            return await post_review(
                client, url, admission_review(asking_pod("web"), namespace="shop")
            )

    with caplog.at_level(logging.ERROR, logger="lumigo_injector.webhook"):
        response = asyncio.run(scenario())
    assert response["allowed"] is True
    assert "patch" not in response and "patchType" not in response
    (warning,) = response["warnings"]
    assert warning.startswith("lumigo-injector: pod admitted without injection: ")
    assert [r.getMessage() for r in caplog.records] == [
        "admission handler error; pod admitted unchanged"
    ]


def test_error_in_the_server_around_the_handler_still_admits_the_pod_unchanged(
    certs: TestCertificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    admission = webhook.Admission(injection=InjectionSettings(), namespaces=_no_annotations)

    def broken_metrics(*_: Any) -> None:
        raise ValueError("metrics cannot be written")

    monkeypatch.setattr(metrics, "observe_admission", broken_metrics)

    async def scenario() -> dict[str, Any]:
        async with served(admission, certs) as (url, client):
            return await post_review(
                client, url, admission_review(asking_pod("web"), namespace="shop")
            )

    response = asyncio.run(scenario())
    assert response["allowed"] is True and "patch" not in response
    assert response["warnings"] == [
        "lumigo-injector: pod admitted without injection: metrics cannot be written"
    ]


def test_only_pod_creations_are_decided_on(certs: TestCertificates) -> None:
    """Updates, deletions and other kinds (a Deployment that asks for injection) are
    admitted as they are: no patch, no warning, no namespace lookup."""
    looked_up: list[str] = []

    async def lookup(namespace: str) -> dict[str, str]:
        looked_up.append(namespace)
        return {}

    admission = webhook.Admission(injection=InjectionSettings(), namespaces=lookup)
    pod = asking_pod("web")
    deletion = admission_review(pod, namespace="shop", operation="DELETE")
    deletion["request"]["oldObject"], deletion["request"]["object"] = pod, None
    others = [
        admission_review(pod, namespace="shop", operation="UPDATE"),
        deletion,
        admission_review(pod, namespace="shop", kind="Deployment"),
    ]

    async def scenario() -> list[dict[str, Any]]:
        async with served(admission, certs) as (url, client):
            return [await post_review(client, url, review) for review in others]

    for response in asyncio.run(scenario()):
        assert set(response) == {"uid", "allowed"} and response["allowed"] is True
    assert looked_up == []


def test_each_admission_is_logged_at_debug_level(
    certs: TestCertificates, caplog: pytest.LogCaptureFixture
) -> None:
    admission = webhook.Admission(injection=InjectionSettings(), namespaces=_no_annotations)
    reviews = [
        admission_review(asking_pod("web"), namespace="shop"),
        admission_review(deployment_pod("plain"), namespace="shop"),
    ]

    async def scenario() -> None:
        async with served(admission, certs) as (url, client):
            for review in reviews:
                await post_review(client, url, review)

    with caplog.at_level(logging.DEBUG, logger="lumigo_injector.webhook"):
        asyncio.run(scenario())
    answered = [r for r in caplog.records if r.getMessage() == "admission answered"]
    assert [(r.uid, r.patched) for r in answered] == [  # type: ignore[attr-defined]
        (reviews[0]["request"]["uid"], True),
        (reviews[1]["request"]["uid"], False),
    ]
    assert all(0 <= r.duration_ms < 60_000 for r in answered)  # type: ignore[attr-defined]


def test_a_review_it_cannot_decide_on_is_answered_400_saying_why(
    certs: TestCertificates,
) -> None:
    """What the API server logs (and `failurePolicy` decides on) for a review that is not a
    pod CREATE, UPDATE, DELETE or CONNECT: a 400 naming the problem, never a silent 200."""
    looked_up: list[str] = []

    async def lookup(namespace: str) -> dict[str, str]:
        looked_up.append(namespace)
        return {}

    admission = webhook.Admission(injection=InjectionSettings(), namespaces=lookup)
    pod = asking_pod("web")
    no_object = admission_review(pod, namespace="shop")
    no_object["request"]["object"] = None
    refused = {
        "unknown request.operation 'create'": admission_review(
            pod, namespace="shop", operation="create"
        ),
        "unknown request.operation 'PATCH'": admission_review(
            pod, namespace="shop", operation="PATCH"
        ),
        "request.object is missing for a CREATE": no_object,
        "unknown request.operation 'XXXXXXXX": admission_review(
            pod, namespace="shop", operation="X" * 5000
        ),
        "unsupported apiVersion 'admission.k8s.io/v1beta1'": {
            **admission_review(pod, namespace="shop"),
            "apiVersion": "admission.k8s.io/v1beta1",
        },
    }

    async def scenario() -> tuple[dict[str, tuple[int, str]], dict[str, Any]]:
        answers: dict[str, tuple[int, str]] = {}
        async with served(admission, certs) as (url, client):
            for why, review in refused.items():
                async with client.post(url, data=json.dumps(review)) as answer:
                    answers[why] = (answer.status, (await answer.json())["error"])
            accepted = await post_review(client, url, admission_review(pod, namespace="shop"))
        return answers, accepted

    answers, accepted = asyncio.run(scenario())
    for why, (status, error) in answers.items():
        assert status == 400, why
        assert error.startswith("malformed AdmissionReview: ") and why in error
        assert len(error) < 200  # a hostile value is quoted, shortened
    assert looked_up == ["shop"]  # only the well-formed review was decided on
    assert accepted["allowed"] is True and accepted["patchType"] == "JSONPatch"


def test_bodies_are_read_whole_up_to_the_api_servers_limit_and_refused_beyond(
    certs: TestCertificates,
) -> None:
    """The API server sends at most 3 MiB: a review of exactly that size, arriving in many
    TLS records, is decided; one byte more gets 413, whether its length is declared or it
    comes chunked; an empty body gets 400."""
    limit = 3 * 1024 * 1024
    admission = webhook.Admission(injection=InjectionSettings(), namespaces=_no_annotations)
    big = asking_pod("big")
    big["spec"]["containers"][0]["env"] += [
        {"name": f"SETTING_{n}", "value": "v" * 2000} for n in range(1000)
    ]
    review = json.dumps(admission_review(big, namespace="shop")).encode()
    full = review + b" " * (limit - len(review))  # JSON allows trailing whitespace
    over = b" " * (limit + 1)

    async def chunked(data: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(data), 256 * 1024):
            yield data[start : start + 256 * 1024]

    async def scenario() -> tuple[tuple[int, dict[str, Any]], list[tuple[int, str]]]:
        async with served(admission, certs) as (url, client):
            async with client.post(url, data=full) as answer:
                decided = (answer.status, (await answer.json())["response"])
            refused = []
            for body in (over, chunked(over), b""):
                async with client.post(url, data=body) as answer:
                    refused.append((answer.status, (await answer.json())["error"]))
        return decided, refused

    (status, response), refused = asyncio.run(scenario())
    assert status == 200 and response["patchType"] == "JSONPatch"
    assert refused[:2] == [(413, f"request body over {limit} bytes")] * 2
    assert refused[2][0] == 400 and "body is not valid JSON" in refused[2][1]


def test_a_body_arriving_in_pieces_is_read_whole(certs: TestCertificates) -> None:
    """A review the client sends in 1 to 4 pieces (a slow link) is decided like one sent at
    once."""
    admission = webhook.Admission(injection=InjectionSettings(), namespaces=_no_annotations)
    body = json.dumps(admission_review(asking_pod("web"), namespace="shop")).encode()

    async def pieces(count: int) -> AsyncIterator[bytes]:
        size = -(-len(body) // count)
        for start in range(0, len(body), size):
            yield body[start : start + size]
            await asyncio.sleep(0.05)  # a separate read on the server

    async def scenario() -> list[tuple[int, dict[str, Any]]]:
        answers = []
        async with served(admission, certs) as (url, client):
            for count in (1, 2, 3, 4):
                async with client.post(url, data=pieces(count)) as answer:
                    answers.append((answer.status, (await answer.json())["response"]))
        return answers

    for status, response in asyncio.run(scenario()):
        assert status == 200 and response["patchType"] == "JSONPatch"


def test_serving_leaves_sigterm_to_the_service(certs: TestCertificates) -> None:
    """The service drains on SIGTERM with its own handler: starting and stopping the webhook
    neither replaces nor removes it."""
    admission = webhook.Admission(injection=InjectionSettings(), namespaces=_no_annotations)

    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        received: list[str] = []
        arrived = asyncio.Event()

        def on_sigterm() -> None:
            received.append("SIGTERM")
            arrived.set()

        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        try:
            async with served(admission, certs) as (url, client):
                await post_review(client, url, admission_review(asking_pod("web"), namespace="s"))
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.wait_for(arrived.wait(), 10)
            arrived.clear()
            os.kill(os.getpid(), signal.SIGTERM)  # still ours after the server stopped
            await asyncio.wait_for(arrived.wait(), 10)
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
        return received

    assert asyncio.run(scenario()) == ["SIGTERM", "SIGTERM"]


def test_idle_connections_are_closed_after_the_timeout(certs: TestCertificates) -> None:
    admission = webhook.Admission(injection=InjectionSettings(), namespaces=_no_annotations)

    async def scenario() -> tuple[bytes, bytes]:
        async with served(admission, certs, idle_timeout=0.3) as (url, _):
            port = int(url.split(":")[2].split("/")[0])
            context = ssl.create_default_context(cafile=str(certs.ca_file))
            silent = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname="localhost"
            )
            used = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname="localhost"
            )
            body = json.dumps(admission_review(asking_pod("web"), namespace="shop")).encode()
            used[1].write(
                b"POST " + webhook.PATH.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            answer = await asyncio.wait_for(used[0].readuntil(b"\r\n\r\n"), 10)
            # neither connection sends anything more: the server closes both (EOF)
            left_silent = await asyncio.wait_for(silent[0].read(), 20)
            left_after = await asyncio.wait_for(_read_rest(used[0]), 20)
            for _, writer in (silent, used):
                writer.close()
            return answer + left_after, left_silent

    used_bytes, silent_bytes = asyncio.run(scenario())
    assert used_bytes.startswith(b"HTTP/1.1 200")
    assert silent_bytes == b""


async def _read_rest(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while chunk := await reader.read(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_body_that_stalls_is_answered_408_and_the_connection_closed(
    certs: TestCertificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that declares a body and stops sending it half-way gets 408 (what an API
    server's retry logic reads as "try again") once the body timeout passes, and the
    connection is closed, even if the rest of the body comes after the answer: a stalled peer
    cannot hold a worker."""
    monkeypatch.setattr(webhook, "BODY_TIMEOUT", 0.5)
    admission = webhook.Admission(injection=InjectionSettings(), namespaces=_no_annotations)
    body = json.dumps(admission_review(asking_pod("web"), namespace="shop")).encode()

    async def scenario() -> tuple[bytes, bytes, bytes]:
        async with served(admission, certs) as (url, _):
            port = int(url.split(":")[2].split("/")[0])
            context = ssl.create_default_context(cafile=str(certs.ca_file))
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname="localhost"
            )
            writer.write(
                b"POST " + webhook.PATH.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body[: len(body) // 2]
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            payload = await asyncio.wait_for(reader.readexactly(length), 20)
            with contextlib.suppress(ConnectionError):
                writer.write(body[len(body) // 2 :])  # too late: the server has hung up
                await writer.drain()
            rest = b""
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                rest = await asyncio.wait_for(_read_rest(reader), 20)
            writer.close()
            return head, payload, rest

    head, payload, rest = asyncio.run(scenario())
    assert head.startswith(b"HTTP/1.1 408"), head
    assert json.loads(payload)["error"] == "request body not received within 0.5s"
    assert rest == b""
