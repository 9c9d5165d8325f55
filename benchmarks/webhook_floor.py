"""The floor for the webhook benchmark: a bare aiohttp TLS server that reads the
AdmissionReview and answers with one fixed response. No parsing, no mutation.

    python webhook_floor.py PORT CERT KEY
"""

import json
import ssl
import sys

from aiohttp import web

FIXED = json.dumps(
    {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "fixed", "allowed": True},
    }
).encode()


async def mutate(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=FIXED, content_type="application/json")


def main() -> None:
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_post("/mutate-pods", mutate)
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, print=None, access_log=None)


if __name__ == "__main__":
    main()
