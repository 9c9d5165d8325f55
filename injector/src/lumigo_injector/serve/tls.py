"""The admission endpoint's TLS: certificate files loaded into an SSLContext, reloaded on change.

The listening socket keeps one *front* context for its whole life. Its SNI callback, which
OpenSSL calls on every handshake (with or without a server name), switches the connection to
the newest successfully loaded context. A reload builds a fresh context from the files and
swaps it in only if it loads cleanly, so a half-written certificate or a key that does not
match never replaces a working pair: the old one keeps serving and the next poll tries again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("lumigo_injector.tls")


@dataclass(frozen=True)
class _Loaded:
    context: ssl.SSLContext
    fingerprint: str


def _server_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class ReloadingTLS:
    """A server SSLContext whose certificate follows the files on disk."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self._current: _Loaded | None = None
        self._last_error: str | None = None
        self.front = _server_context()
        self.front.sni_callback = self._select

    @property
    def loaded(self) -> bool:
        """Whether a certificate is being served."""
        return self._current is not None

    @property
    def fingerprint(self) -> str | None:
        """A short hash of the served certificate and key files (for logs and tests)."""
        return self._current.fingerprint if self._current else None

    def _select(
        self, conn: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext
    ) -> int | None:
        current = self._current
        if current is None:
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        conn.context = current.context
        return None

    def _read_fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.cert_file.read_bytes())
        digest.update(b"\0")
        digest.update(self.key_file.read_bytes())
        return digest.hexdigest()[:16]

    def reload(self) -> bool:
        """Load the files if they changed since the last load; True when a new pair is live."""
        try:
            fingerprint = self._read_fingerprint()
        except OSError as exc:
            self._note_error(f"cannot read TLS files: {exc}")
            return False
        if self._current is not None and fingerprint == self._current.fingerprint:
            return False
        context = _server_context()
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._note_error(f"cannot load TLS certificate {self.cert_file}: {exc}")
            return False
        first = self._current is None
        self._current = _Loaded(context, fingerprint)
        self._last_error = None
        log.info(
            "TLS certificate %s",
            "loaded" if first else "reloaded",
            extra={"cert_file": str(self.cert_file), "fingerprint": fingerprint},
        )
        return True

    def _note_error(self, message: str) -> None:
        if message != self._last_error:  # one log line per distinct problem, not per poll
            log.error(message, extra={"cert_file": str(self.cert_file)})
        self._last_error = message

    async def watch(self, interval: float) -> None:
        """Poll the files forever (cancel to stop)."""
        while True:
            await asyncio.sleep(interval)
            self.reload()
