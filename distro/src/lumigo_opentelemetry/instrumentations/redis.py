"""redis-py (sync and asyncio): one CLIENT span per command and per pipeline.

Built on opentelemetry-instrumentation-redis (span named after the command, `db.system=
redis`, `db.redis.database_index`, peer address; a pipeline is one span whose
`db.statement` lists its commands with `?` for every argument). On top of it:

- `db.statement` of a single command is the command with its arguments, each bounded,
  the whole cut to the attribute limit; a value stored under a secret key or field name
  (the masking rules: `SET session:password x`, `HSET user password x`) and every
  argument of `AUTH` become `****`;
- `db.response.body`: the reply of a single command, bounded, masked the same way (a
  `GET` of a secret key and the secret fields of an `HGETALL` reply). A pipeline's
  replies are left out: by the time they arrive its commands are gone, so they could
  not be masked.

Hooks are guarded: a capture failure drops the attribute, the command runs as it would.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from lumigo_opentelemetry.instrumentations.payloads import DB_RESPONSE_BODY
from lumigo_opentelemetry.masking import MASKED, Site

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

    from lumigo_opentelemetry.config import Config

NAME = "redis"
HOOK_MODULE = "redis"

STATEMENT = "db.statement"
#: commands whose arguments after the key are field/value pairs (`HSET h f v f v`)
PAIRED_FIELDS = frozenset({"HSET", "HMSET", "HSETNX"})
#: commands whose arguments are key/value pairs (`MSET k v k v`)
PAIRED_KEYS = frozenset({"MSET", "MSETNX"})
#: commands that carry credentials in every argument
CREDENTIALS = frozenset({"AUTH", "HELLO", "MIGRATE"})

_LOG = logging.getLogger("lumigo-opentelemetry.redis")


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    return RedisInstrumentor()


def _text(value: Any, limit: int) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value[: 4 * limit]).decode("utf-8", errors="replace")
    else:
        text = str(value)
    return text[:limit]


def masked_arguments(args: Sequence[Any], config: Config) -> List[str]:
    """The command's arguments as text, values under secret names replaced by `****`."""
    limit = config.attribute_length_limit
    if not args:
        return []
    command = _text(args[0], limit).upper()
    words = [command]
    rest = [_text(arg, limit) for arg in args[1:]]
    if command in CREDENTIALS:
        return words + [MASKED] * len(rest)
    secret = config.masking.is_secret
    if command in PAIRED_KEYS:
        pairs = zip(rest[0::2], rest[1::2])
        for key, value in pairs:
            words += [key, MASKED if secret(key) else value]
        return words + rest[len(rest) - len(rest) % 2 :]
    if not rest:
        return words
    key, values = rest[0], rest[1:]
    words.append(key)
    if secret(key):
        return words + [MASKED] * len(values)
    if command in PAIRED_FIELDS:
        for index, value in enumerate(values):
            hidden = index % 2 == 1 and secret(values[index - 1])
            words.append(MASKED if hidden else value)
        return words
    return words + values


def is_secret_command(args: Sequence[Any], config: Config) -> bool:
    """Whether the reply of this command is a secret value (the key's name is secret)."""
    if len(args) < 2:
        return False
    command = _text(args[0], 64).upper()
    return command in CREDENTIALS or config.masking.is_secret(
        _text(args[1], config.attribute_length_limit)
    )


def reply_text(reply: Any, config: Config) -> Optional[str]:
    """A reply as bounded text; the values of secret fields in a mapping masked."""
    limit = config.attribute_length_limit
    if reply is None:
        return None
    if isinstance(reply, dict):
        plain: Dict[str, Any] = {}
        for index, (key, value) in enumerate(reply.items()):
            if index * 6 > limit:
                break
            plain[_text(key, limit)] = _text(value, limit)
        return config.masking.apply(Site.DB, plain, encode=str)[:limit]
    if isinstance(reply, (list, tuple)):
        return str([_text(item, limit) for item in reply[: limit // 3 + 1]])[:limit]
    return _text(reply, limit)


class _Hooks:
    def __init__(self, config: Config) -> None:
        self.config = config
        # spans of single commands (upstream calls no request hook for a pipeline)
        self.commands: weakref.WeakSet[Span] = weakref.WeakSet()
        # spans of commands whose reply is masked as a whole
        self.secret_replies: weakref.WeakSet[Span] = weakref.WeakSet()

    def request(self, span: Span, _instance: Any, args: Sequence[Any], _kwargs: Any) -> None:
        try:
            if not span.is_recording():
                return
            self.commands.add(span)
            words = masked_arguments(args, self.config)
            span.set_attribute(STATEMENT, " ".join(words)[: self.config.attribute_length_limit])
            if is_secret_command(args, self.config):
                self.secret_replies.add(span)
        except Exception:
            _LOG.debug("redis statement capture failed; upstream statement kept", exc_info=True)

    def response(self, span: Span, _instance: Any, reply: Any) -> None:
        try:
            # a pipeline's replies cannot be matched to its (masked) commands: left out
            if not span.is_recording() or span not in self.commands:
                return
            secret = span in self.secret_replies
            text = MASKED if secret else reply_text(reply, self.config)
            if text is not None:
                span.set_attribute(DB_RESPONSE_BODY, text)
        except Exception:
            _LOG.debug("redis reply capture failed; attribute dropped", exc_info=True)


_hooks: Optional[_Hooks] = None


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    """Instrument redis-py once; a later call only refreshes the configuration."""
    global _hooks
    if _hooks is None:
        _hooks = _Hooks(config)
    else:
        _hooks.config = config
    upstream = instrumentor()
    if not upstream.is_instrumented_by_opentelemetry:
        upstream.instrument(
            tracer_provider=tracer_provider,
            request_hook=_hooks.request,
            response_hook=_hooks.response,
            skip_dep_check=True,
        )


def uninstrument() -> None:
    """Undo `instrument()` (used by tests)."""
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
