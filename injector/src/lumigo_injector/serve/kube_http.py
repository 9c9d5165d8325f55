"""A minimal asyncio client for the few Kubernetes API writes made on the event loop.

It borrows its address, credentials and TLS settings from the `kubernetes` client's loaded
configuration (in-cluster service account, or a kubeconfig), so it logs in exactly like the
rest of `serve`; the bearer token is read through that configuration before each batch, which
honours its refresh hook (rotated service-account tokens, exec plugins). Requests go through
one aiohttp session on the running loop: no thread, no model (de)serialisation.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp


class ApiError(Exception):
    """The API server answered a request with an error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


HeadersProvider = Callable[[], Mapping[str, str]]


def _ssl_context(configuration: Any) -> ssl.SSLContext | bool:
    if not str(configuration.host).startswith("https"):
        return False
    if not configuration.verify_ssl:
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    if configuration.assert_hostname is False:
        context.check_hostname = False
    return context


def _auth_headers(configuration: Any) -> dict[str, str]:
    """Authorization headers as the kubernetes client would send them (may refresh a token)."""
    headers: dict[str, str] = {}
    for setting in configuration.auth_settings().values():
        if setting.get("in") == "header" and setting.get("value"):
            headers[str(setting["key"])] = str(setting["value"])
    if "authorization" not in {k.lower() for k in headers} and configuration.username:
        auth = aiohttp.BasicAuth(configuration.username, configuration.password or "")
        headers["Authorization"] = auth.encode()
    return headers


class KubeHttp:
    """POST and merge-PATCH of namespaced core/v1 objects through aiohttp."""

    def __init__(
        self,
        host: str,
        *,
        headers: HeadersProvider = dict,
        ssl_context: ssl.SSLContext | bool = False,
        timeout: float = 5.0,
    ) -> None:
        self.host = host.rstrip("/")
        self._headers = headers
        self._ssl = ssl_context
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_configuration(cls, configuration: Any, timeout: float = 5.0) -> KubeHttp:
        """Built from a `kubernetes.client.Configuration` (e.g. `get_default_copy()`)."""
        return cls(
            configuration.host,
            headers=lambda: _auth_headers(configuration),
            ssl_context=_ssl_context(configuration),
            timeout=timeout,
        )

    async def auth_headers(self) -> Mapping[str, str]:
        """Fresh credentials (off the loop: a refresh may read a file or run a plugin)."""
        return await asyncio.to_thread(self._headers)

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=4)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    def _url(self, namespace: str, plural: str, name: str | None = None) -> str:
        url = f"{self.host}/api/v1/namespaces/{quote(namespace, safe='')}/{plural}"
        return f"{url}/{quote(name, safe='')}" if name else url

    async def _send(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        content_type: str,
    ) -> None:
        all_headers = {**headers, "Content-Type": content_type, "Accept": "application/json"}
        session = self._session_now()
        async with session.request(method, url, json=body, headers=all_headers) as response:
            if response.status >= 300:
                detail = (await response.text())[:300]
                raise ApiError(response.status, detail)
            await response.read()

    async def create(
        self, namespace: str, plural: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> None:
        """POST a new object into `namespace`."""
        await self._send("POST", self._url(namespace, plural), body, headers, "application/json")

    async def merge_patch(
        self,
        namespace: str,
        plural: str,
        name: str,
        patch: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> None:
        """Apply a JSON merge patch (RFC 7386) to one object."""
        url = self._url(namespace, plural, name)
        await self._send("PATCH", url, patch, headers, "application/merge-patch+json")

    async def merge_patch_path(
        self, path: str, patch: Mapping[str, Any], headers: Mapping[str, str]
    ) -> None:
        """Apply a JSON merge patch to the object at an API path (e.g. `/apis/apps/v1/...`)."""
        await self._send("PATCH", self.host + path, patch, headers, "application/merge-patch+json")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
