"""The lean Django path's shortcuts give what the general calls give.

Each check runs in a fresh interpreter (Django's settings can be configured once per
process): the host memo against `request.get_host()` (settings replaced and changed in
place), the URL conf read against `get_urlconf()`, the response header pairs, content
type and response body text against Django's mapping and `body_attribute`.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import threading

    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="pieces-only",
        ALLOWED_HOSTS=["good.example", ".sub.example"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
    )
    import django

    django.setup()
    urlpatterns = []

    from django.core.exceptions import DisallowedHost
    from django.http import HttpResponse, JsonResponse
    from django.test import RequestFactory, override_settings
    from django.urls import get_urlconf, set_urlconf

    from lumigo_opentelemetry.config import Config
    from lumigo_opentelemetry.instrumentations import django as lumigo_django
    from lumigo_opentelemetry.instrumentations import payloads
    from lumigo_opentelemetry.instrumentations._django_server import (
        HostCheck,
        urlconf_storage,
    )
    from lumigo_opentelemetry.masking import MASKED

    factory = RequestFactory()
    check = HostCheck(settings)
    assert check.settings_cache is not None


    def outcome(call, request):
        try:
            call(request)
            return "allowed"
        except DisallowedHost:
            return "disallowed"


    HOSTS = ["good.example", "evil.example", "a.sub.example", "good.example:8000",
             "GOOD.example", "bad host", "sub.example", "evil.example"]


    def compare():
        for host in HOSTS * 2:  # the second round from the memo
            request = factory.get("/", HTTP_HOST=host)
            assert outcome(check.check, request) == outcome(
                lambda r: r.get_host(), request
            ), host


    compare()
    assert check.hosts  # allowed hosts were remembered
    with override_settings(ALLOWED_HOSTS=["evil.example"]):
        compare()
    settings.ALLOWED_HOSTS.append("evil.example")  # changed in place
    compare()
    settings.ALLOWED_HOSTS.remove("evil.example")
    compare()
    settings.ALLOWED_HOSTS = ["good.example"]  # replaced
    compare()
    with override_settings(USE_X_FORWARDED_HOST=True):
        request = factory.get("/", HTTP_HOST="good.example", HTTP_X_FORWARDED_HOST="evil.example")
        assert outcome(check.check, request) == "disallowed"
    with override_settings(ALLOWED_HOSTS=[], DEBUG=True):
        compare()

    # the URL conf, as get_urlconf() gives it
    storage = urlconf_storage()
    assert storage is not None  # the asgiref release this environment has is checked


    def urlconf_read():
        return storage._storage().data.get("value")


    for value in ("first.urls", None, "second.urls"):
        set_urlconf(value)
        assert urlconf_read() == get_urlconf() == value
    seen = []
    thread = threading.Thread(target=lambda: seen.append((urlconf_read(), get_urlconf())))
    thread.start()
    thread.join()
    assert seen == [(None, None)]
    set_urlconf(None)

    # response headers, content type and body text
    config = Config.from_environ()
    responses = [
        JsonResponse({"message": "hello", "items": [1, 2, 3]}),
        HttpResponse("plain", content_type="text/plain; charset=utf-8", headers={"X-One": "1"}),
        HttpResponse(b"\\x00\\x01", content_type="application/octet-stream"),
        HttpResponse(""),
        JsonResponse({"password": "hunter2"}),
    ]
    responses[1]["x-Two"] = "2"
    responses[1]["X-ONE"] = "one"
    for response in responses:
        pairs = lumigo_django.response_header_pairs(response)
        assert list(pairs) == list(response.items())
        assert lumigo_django._content_type(response) == response.get("Content-Type")
        limit = config.attribute_length_limit
        expected = payloads.body_attribute(
            response.content[: 4 * limit],
            config,
            response.get("Content-Type"),
            total_size=len(response.content),
            site=payloads.Site.HTTP_RESPONSE_BODIES,
        )
        for _ in range(2):  # the second from the memo, when kept
            assert lumigo_django.response_body(response, config) == expected
    assert not [t for _, _, t in lumigo_django._BODY_TEXTS.values() if MASKED in t]
    print("ok")
    """
)


def test_lean_django_pieces_equal_the_general_calls() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
