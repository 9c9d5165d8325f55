"""A contender for the webhook benchmark: the injector's admission handler on kopf's own server.

kopf runs standalone against the Kubernetes emulator (KUBECONFIG) with only the admission
registry (`Admission.registry`: the kopf handler `mutate-pods` for pod CREATEs) and
`kopf.WebhookServer` on the given certificate files, `settings.admission.managed` off. The
handler is the one `serve` calls; it is given no namespace lookup and no Event recorder, so
this contender does less work per request than `serve` does.

    python webhook_kopf_server.py PORT CERT KEY
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import kopf

from lumigo_injector.k8s.mutation import InjectionSettings
from lumigo_injector.serve import kopf_admission, operator, webhook
from lumigo_injector.serve.service import loop_factory


async def no_annotations(_: str) -> dict[str, str]:
    return {}


async def serve(port: int, cert: Path, key: Path) -> None:
    admission = webhook.Admission(injection=InjectionSettings(), namespaces=no_annotations)
    registry = admission.registry

    @kopf.on.login(registry=registry, id="login")
    def login(**kwargs: Any) -> Any:
        return kopf.login_via_client(**kwargs)

    settings = operator.kopf_settings()
    settings.admission.server = kopf_admission.kopf_server(
        host="127.0.0.1", port=port, cert_file=cert, key_file=key
    )
    settings.admission.managed = None
    await kopf.operator(registry=registry, settings=settings, clusterwide=True, standalone=True)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    port, cert, key = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(port, cert, key))


if __name__ == "__main__":
    main()
