"""A small MongoDB wire-protocol server for the tests (no mongod can be installed here).

It speaks OP_MSG (with document sequences, checksums and `moreToCome`) and the legacy
OP_QUERY/OP_REPLY handshake over a real TCP socket on 127.0.0.1, so a real `MongoClient`
(pymongo 3.12 to 4.x) connects, runs its handshake and fires command monitoring exactly
as against mongod. Data lives in memory: insert, find (top-level equality filters, limit,
projection ignored), update (`$set`), delete, count, drop. Anything else is answered with
`CommandNotFound` (code 59), which pymongo raises as `OperationFailure`.

    with MongoWireServer() as server:
        client = pymongo.MongoClient(server.uri)
"""

from __future__ import annotations

import datetime
import socketserver
import struct
import threading
from typing import Any

import bson
from bson.int64 import Int64

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
_CHECKSUM_PRESENT = 1
_MORE_TO_COME = 2
MAX_WIRE_VERSION = 17  # MongoDB 6.0: within pymongo 3.12's and 4.x's ranges
_HEADER = struct.Struct("<iiii")


class _Store:
    """In-memory collections keyed by (database, collection)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.collections: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.commands: list[dict[str, Any]] = []

    def docs(self, db: str, coll: str) -> list[dict[str, Any]]:
        return self.collections.setdefault((db, coll), [])


def _matches(doc: dict[str, Any], flt: dict[str, Any]) -> bool:
    return all(doc.get(k) == v for k, v in flt.items() if not k.startswith("$"))


class _Commands:
    """Answers one decoded command document."""

    def __init__(self, store: _Store, connection_id: int) -> None:
        self.store = store
        self.connection_id = connection_id

    def run(self, db: str, cmd: dict[str, Any]) -> dict[str, Any]:
        name = next(iter(cmd), "")
        handler = getattr(self, "cmd_" + name.lower(), None)
        if handler is None:
            return {
                "ok": 0.0,
                "errmsg": f"no such command: '{name}'",
                "code": 59,
                "codeName": "CommandNotFound",
            }
        with self.store.lock:
            result: dict[str, Any] = handler(db, cmd)
        result.setdefault("ok", 1.0)
        return result

    def cmd_hello(self, _db: str, _cmd: dict[str, Any]) -> dict[str, Any]:
        return {
            "helloOk": True,
            "ismaster": True,
            "isWritablePrimary": True,
            "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000,
            "localTime": datetime.datetime.now(datetime.timezone.utc),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": self.connection_id,
            "minWireVersion": 0,
            "maxWireVersion": MAX_WIRE_VERSION,
            "readOnly": False,
        }

    cmd_ismaster = cmd_hello

    def cmd_ping(self, _db: str, _cmd: dict[str, Any]) -> dict[str, Any]:
        return {}

    def cmd_buildinfo(self, _db: str, _cmd: dict[str, Any]) -> dict[str, Any]:
        return {"version": "6.0.0", "versionArray": [6, 0, 0, 0]}

    def cmd_endsessions(self, _db: str, _cmd: dict[str, Any]) -> dict[str, Any]:
        return {}

    def cmd_killcursors(self, _db: str, cmd: dict[str, Any]) -> dict[str, Any]:
        return {"cursorsKilled": list(cmd.get("cursors", []))}

    def cmd_getmore(self, db: str, cmd: dict[str, Any]) -> dict[str, Any]:
        ns = f"{db}.{cmd.get('collection', '')}"
        return {"cursor": {"id": Int64(0), "ns": ns, "nextBatch": []}}

    def cmd_insert(self, db: str, cmd: dict[str, Any]) -> dict[str, Any]:
        docs = list(cmd.get("documents", []))
        self.store.docs(db, cmd["insert"]).extend(docs)
        return {"n": len(docs)}

    def cmd_find(self, db: str, cmd: dict[str, Any]) -> dict[str, Any]:
        flt = cmd.get("filter") or {}
        found = [d for d in self.store.docs(db, cmd["find"]) if _matches(d, flt)]
        limit = abs(int(cmd.get("limit") or 0))
        if limit:
            found = found[:limit]
        ns = f"{db}.{cmd['find']}"
        return {"cursor": {"id": Int64(0), "ns": ns, "firstBatch": found}}

    def cmd_update(self, db: str, cmd: dict[str, Any]) -> dict[str, Any]:
        matched = 0
        for spec in cmd.get("updates", []):
            for doc in self.store.docs(db, cmd["update"]):
                if _matches(doc, spec.get("q") or {}):
                    doc.update((spec.get("u") or {}).get("$set", {}))
                    matched += 1
                    if not spec.get("multi"):
                        break
        return {"n": matched, "nModified": matched}

    def cmd_delete(self, db: str, cmd: dict[str, Any]) -> dict[str, Any]:
        removed = 0
        docs = self.store.docs(db, cmd["delete"])
        for spec in cmd.get("deletes", []):
            keep = []
            for doc in docs:
                hit = _matches(doc, spec.get("q") or {})
                if hit and (spec.get("limit") != 1 or not removed):
                    removed += 1
                else:
                    keep.append(doc)
            docs[:] = keep
        return {"n": removed}

    def cmd_count(self, db: str, cmd: dict[str, Any]) -> dict[str, Any]:
        flt = cmd.get("query") or {}
        return {"n": sum(1 for d in self.store.docs(db, cmd["count"]) if _matches(d, flt))}

    def cmd_drop(self, db: str, cmd: dict[str, Any]) -> dict[str, Any]:
        self.store.collections.pop((db, cmd["drop"]), None)
        return {"ns": f"{db}.{cmd['drop']}"}


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\x00", pos)
    return data[pos:end].decode(), end + 1


def parse_op_msg(payload: bytes) -> tuple[int, dict[str, Any]]:
    """(flag bits, command) from an OP_MSG body; document sequences become list fields."""
    (flags,) = struct.unpack_from("<I", payload, 0)
    end = len(payload) - (4 if flags & _CHECKSUM_PRESENT else 0)
    pos = 4
    command: dict[str, Any] = {}
    sequences: dict[str, list[Any]] = {}
    while pos < end:
        kind = payload[pos]
        pos += 1
        (size,) = struct.unpack_from("<i", payload, pos)
        if kind == 0:
            command = bson.decode(payload[pos : pos + size])
        elif kind == 1:
            ident, docs_at = _cstring(payload, pos + 4)
            sequences[ident] = bson.decode_all(payload[docs_at : pos + size])
        else:
            raise ValueError(f"unknown OP_MSG section kind {kind}")
        pos += size
    command.update(sequences)
    return flags, command


def parse_op_query(payload: bytes) -> tuple[str, dict[str, Any]]:
    """(database, command) from a legacy OP_QUERY on `<db>.$cmd`."""
    collection, pos = _cstring(payload, 4)
    pos += 8  # numberToSkip, numberToReturn
    (size,) = struct.unpack_from("<i", payload, pos)
    query = bson.decode(payload[pos : pos + size])
    if "$query" in query:
        query = query["$query"]
    return collection.split(".", 1)[0], query


class _Handler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def _read(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.request.recv(n)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def handle(self) -> None:
        commands = _Commands(self.server.store, self.server.next_connection_id())
        try:
            while True:
                length, request_id, _response_to, op_code = _HEADER.unpack(self._read(16))
                payload = self._read(length - 16)
                reply = self._answer(commands, op_code, payload)
                if reply is not None:
                    body, reply_op = reply
                    self.request.sendall(
                        _HEADER.pack(16 + len(body), 0, request_id, reply_op) + body
                    )
        except (EOFError, OSError):
            return

    def _answer(
        self, commands: _Commands, op_code: int, payload: bytes
    ) -> tuple[bytes, int] | None:
        if op_code == OP_MSG:
            flags, cmd = parse_op_msg(payload)
            db = str(cmd.pop("$db", "admin"))
            self.server.store.commands.append(dict(cmd, **{"$db": db}))
            result = commands.run(db, cmd)
            if flags & _MORE_TO_COME:
                return None
            return struct.pack("<IB", 0, 0) + bson.encode(result), OP_MSG
        if op_code == OP_QUERY:
            db, cmd = parse_op_query(payload)
            self.server.store.commands.append(dict(cmd, **{"$db": db}))
            result = commands.run(db, cmd)
            return struct.pack("<iqii", 0, 0, 0, 1) + bson.encode(result), OP_REPLY
        raise EOFError  # unsupported opcode (e.g. compression): drop the connection


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], store: _Store) -> None:
        self.store = store
        self._ids = iter(range(1, 1 << 30))
        self._id_lock = threading.Lock()
        super().__init__(address, _Handler)

    def next_connection_id(self) -> int:
        with self._id_lock:
            return next(self._ids)


class MongoWireServer:
    """The server: `start()`/`stop()` or a context manager; `port=0` picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = _Store()
        self._server = _TcpServer((host, port), self.store)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def commands(self, name: str | None = None) -> list[dict[str, Any]]:
        """Commands received so far (optionally only those named `name`)."""
        with self.store.lock:
            found = list(self.store.commands)
        return [c for c in found if name is None or next(iter(c), None) == name]

    def start(self) -> MongoWireServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mongo-wire", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MongoWireServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
