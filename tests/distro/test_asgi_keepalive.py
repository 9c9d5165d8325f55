"""A finished FastAPI request's span is not kept alive by the server's keep-alive timer.

uvicorn (asyncio loop) arms a keep-alive timer when a response completes; the timer
copies the current context, and once cancelled by the next request it stays in
asyncio's queue for seconds. Sent under the span's context, the last response chunk
made every timer hold its request's span and all the span refers to; those objects
outlived the young collections, and full collections of the heap (tens of
milliseconds each) ran several times as often as untraced: the p99 tail of a traced
FastAPI app. Checked in a fresh app on a real uvicorn with a real keep-alive client.
"""

from __future__ import annotations

import json

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.distro_apps import run_app, traced_env


def test_finished_spans_are_not_held_by_the_servers_timers() -> None:
    with OtlpReceiver() as receiver:
        done = run_app("asgi_keepalive.py", traced_env(receiver))
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert receiver.wait_for_spans(22)  # the app was traced
    assert report["statuses"] == [200] * 21
    assert report["spans"] == 21
    # a background task, run once the last chunk is sent, still runs in the span
    assert report["background_in_span"] is True, report
    assert report["alive"] == 0, report
    # the timers copied the requests' starting context: no context made per request
    assert report["timers"] >= 1, report
    assert report["held"] == 0, report
