"""Each FastAPI server span carries its own client's address and port.

The lean ASGI path keeps contrib's request attributes in a memo per request shape; a
real server's clients come from a new port with each connection (and from many
addresses), so the memo holds one entry for all of them and each span gets its own
`net.peer.ip` / `net.peer.port`, in the place contrib puts them.
"""

from __future__ import annotations

import json

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.distro_apps import run_app, traced_env


def test_every_connection_gets_its_own_peer_attributes() -> None:
    with OtlpReceiver() as receiver:
        done = run_app("asgi_peers.py", traced_env(receiver))
        assert done.returncode == 0, done.stderr
        clients = json.loads(done.stdout.strip().splitlines()[-1])["clients"]
        spans = receiver.wait_for_spans(10, where=lambda s: s.kind.endswith("SERVER"))
    spans = [s for s in spans if s.kind.endswith("SERVER")]
    assert len(spans) == 10
    peers = sorted([s.attributes["net.peer.ip"], s.attributes["net.peer.port"]] for s in spans)
    assert peers == sorted(clients * 2)
    assert len({(address, port) for address, port in clients}) == 5  # five connections
    # all else is the same request's, in contrib's order: the peer last but the route
    keys = [list(s.attributes) for s in spans]
    assert all(k == keys[0] for k in keys)
    first = keys[0]
    assert first.index("net.peer.port") == first.index("net.peer.ip") + 1
    assert first[first.index("net.peer.port") + 1] == "http.route"
    rest = [{k: v for k, v in s.attributes.items() if not k.startswith("net.peer.")} for s in spans]
    assert all(r == rest[0] for r in rest)
    assert {s.name for s in spans} == {"GET /items"}


def test_a_global_propagator_set_later_finds_its_parent() -> None:
    """The same header set, remembered as carrying no W3C header, still goes through
    the global propagator once the app has set its own."""
    done = run_app("asgi_propagator.py", traced_env())
    assert done.returncode == 0, done.stderr
    traces = json.loads(done.stdout.strip().splitlines()[-1])["traces"]
    parent = "0af7651916cd43dd8448eb211c80319c"
    assert parent not in traces[:2]
    assert len(set(traces[:2])) == 2
    assert traces[2:] == [parent, parent]
