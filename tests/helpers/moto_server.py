"""moto in server mode on 127.0.0.1 (a free port), one per test session.

Import the fixture into a test module (`from tests.helpers.moto_server import moto_server`)
and use `moto_server.url` as `endpoint_url` (or `moto_server.env()` for a subprocess: fake
credentials, region and `AWS_ENDPOINT_URL`, so no request can reach AWS).
"""

from __future__ import annotations

import atexit
from dataclasses import dataclass
from typing import Any

import pytest

REGION = "us-east-1"


@dataclass(frozen=True)
class MotoServer:
    url: str
    region: str = REGION

    def env(self) -> dict[str, str]:
        """Environment for a boto3 process talking only to this server."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str) -> Any:
        """A boto3 client for `service` against this server."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


_shared: MotoServer | None = None


def shared_server() -> MotoServer:
    """The process's one moto server, started on first use, stopped at exit.

    Test modules import the fixture below; pytest would make one session fixture per
    importing module, so the server itself is kept here, once.
    """
    global _shared
    if _shared is None:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        atexit.register(server.stop)
        host, port = server.get_host_and_port()
        _shared = MotoServer(url=f"http://{host}:{port}")
    return _shared


@pytest.fixture(scope="session")
def moto_server() -> MotoServer:
    """A moto server for the whole session; tests use unique resource names."""
    return shared_server()
