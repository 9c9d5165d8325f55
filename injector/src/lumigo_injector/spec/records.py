"""Frozen dataclasses that are cheap to make, for the values the admission path makes per pod.

A `@dataclass(frozen=True)` sets each field in `__init__` through `object.__setattr__` (a
frozen class refuses its own `__setattr__`), about four times the cost of a plain class: some
10 K instructions for the few records of one admission. `cheap_init` gives such a class an
`__init__` with the same signature that writes the fields into the instance's `__dict__`
directly; the class stays frozen (assigning a field afterwards still raises).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

_NO_DEFAULT = object()


def cheap_init(cls: type[T]) -> type[T]:
    """Replace a frozen dataclass's `__init__` with one that fills `__dict__` (same signature:
    positional-or-keyword fields, plain defaults and default factories; no `__post_init__`)."""
    params = cls.__dict__.get("__dataclass_params__")
    if params is None or not params.frozen:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass")
    if hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: __post_init__ and slots are not supported")
    names: dict[str, Any] = {"_NO_DEFAULT": _NO_DEFAULT}
    arguments, lines = [], []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not field.init or field.kw_only:
            raise TypeError(f"{cls.__name__}.{field.name}: only plain init fields are supported")
        name = field.name
        if name in ("self", "_fields_"):
            raise TypeError(f"{cls.__name__}.{name}: the name is taken by the generated __init__")
        if field.default is not dataclasses.MISSING:
            names[f"_default_{name}"] = field.default
            arguments.append(f"{name}=_default_{name}")
        elif field.default_factory is not dataclasses.MISSING:
            names[f"_factory_{name}"] = field.default_factory
            arguments.append(f"{name}=_NO_DEFAULT")
            lines.append(f"    if {name} is _NO_DEFAULT: {name} = _factory_{name}()")
        else:
            arguments.append(name)
        lines.append(f"    _fields_[{name!r}] = {name}")
    source = "\n".join(
        [f"def __init__(self, {', '.join(arguments)}):", "    _fields_ = self.__dict__", *lines]
    )
    exec(source, names)  # generated from the field names above, nothing else
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    setattr(cls, "__init__", init)  # noqa: B010  (mypy refuses assigning a method)
    return cls
