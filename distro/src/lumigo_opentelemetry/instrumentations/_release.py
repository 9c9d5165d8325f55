"""Client spans whose contrib wrapper keeps the exception it re-raises: let go of it.

opentelemetry-instrumentation's DB-API `CursorTracer.traced_execution` (and its async
twin), its requests `Session.send` wrapper and its httpx transport wrappers catch the
call's exception into a local (`error = exc`, `exception = exc`) and raise it again.
The raise puts their frame into the exception's traceback while the frame's locals
hold the exception: a reference cycle (exception -> traceback -> frame -> exception)
that keeps the span, the cursor or request and every caller's frame alive. A failed
query or call the app handles (a duplicate key, a refused connection) is then freed by
the cycle collector, not when the app drops the exception.

`Releasing` wraps the contrib wrapper (wrapt): when the call fails, the finished frames
of the named functions in the traceback are cleared (`frame.clear()`, as
`traceback.clear_frames` does), so the traceback keeps every line but those frames
no longer hold the exception; nothing changes for a call that succeeds.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, Callable, FrozenSet, Mapping, Tuple


def clear_frames(exc: BaseException, codes: FrozenSet[Any]) -> None:
    """Clear the locals of the frames in `exc`'s traceback that run one of `codes`."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code in codes:
            with suppress(RuntimeError):  # still running: never once the exception left it
                frame.clear()
        tb = tb.tb_next


class Releasing:
    """A wrapt wrapper: calls through; a failure leaves `functions`' frames cleared."""

    def __init__(self, *functions: Callable[..., Any]) -> None:
        self.codes = frozenset(getattr(f, "__code__", None) for f in functions) - {None}

    def __call__(
        self,
        wrapped: Callable[..., Any],
        _instance: Any,
        args: Tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Any:
        try:
            return wrapped(*args, **kwargs)
        except Exception as exc:
            clear_frames(exc, self.codes)
            raise


class ReleasingAsync(Releasing):
    """`Releasing` for a coroutine function."""

    async def __call__(
        self,
        wrapped: Callable[..., Any],
        _instance: Any,
        args: Tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Any:
        try:
            return await wrapped(*args, **kwargs)
        except Exception as exc:
            clear_frames(exc, self.codes)
            raise


def is_releasing(attribute: Any) -> bool:
    """Whether a class attribute is a wrapt wrapper installed with `Releasing`."""
    return isinstance(getattr(attribute, "_self_wrapper", None), Releasing)
