"""Check a decoded view document against its dataclasses' type hints.

Stored views (schema, statistics, anomalies, evaluation) are artifacts a teammate wrote: a
string where a number belongs would otherwise surface as a TypeError deep inside a table or a
plot. :func:`check_dataclass` walks the decoded value once, against the annotations that
describe it, and reports the first field that does not fit.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any


class TypeMismatch(ValueError):
    """A decoded field does not have the type its dataclass declares."""


def _fits(value: Any, hint: Any, path: str) -> None:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        return
    if origin is typing.Literal:
        if value not in args:
            raise TypeMismatch(f"{path}: {value!r} is not one of {args}")
        return
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            try:
                _fits(value, option, path)
                return
            except TypeMismatch as exc:
                errors.append(str(exc))
        raise TypeMismatch(errors[0] if errors else f"{path}: no type fits {value!r}")
    if hint is type(None):
        if value is not None:
            raise TypeMismatch(f"{path}: expected nothing, got {type(value).__name__}")
        return
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeMismatch(f"{path}: expected a number, got {type(value).__name__}")
        return
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeMismatch(f"{path}: expected an integer, got {type(value).__name__}")
        return
    if origin is tuple:
        if not isinstance(value, tuple):
            raise TypeMismatch(f"{path}: expected a sequence, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            for i, item in enumerate(value):
                _fits(item, args[0], f"{path}[{i}]")
        elif args:
            if len(value) != len(args):
                raise TypeMismatch(f"{path}: expected {len(args)} items, got {len(value)}")
            for i, (item, arg) in enumerate(zip(value, args, strict=True)):
                _fits(item, arg, f"{path}[{i}]")
        return
    if origin in (list, Sequence):
        if not isinstance(value, (list, tuple)):
            raise TypeMismatch(f"{path}: expected a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            _fits(item, args[0] if args else Any, f"{path}[{i}]")
        return
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise TypeMismatch(f"{path}: expected a mapping, got {type(value).__name__}")
        key_hint, value_hint = args if args else (Any, Any)
        for key, item in value.items():
            _fits(key, key_hint, f"{path} key")
            _fits(item, value_hint, f"{path}[{key!r}]")
        return
    if isinstance(hint, type):
        if not isinstance(value, hint):
            raise TypeMismatch(f"{path}: expected {hint.__name__}, got {type(value).__name__}")
        if dataclasses.is_dataclass(value):
            check_dataclass(value, path)
        return


def check_dataclass(value: Any, path: str = "") -> None:
    """Raise :class:`TypeMismatch` naming the first field of ``value`` whose type is wrong."""
    hints = typing.get_type_hints(type(value))
    for field in dataclasses.fields(value):
        if field.name in hints:
            name = f"{path}.{field.name}" if path else field.name
            _fits(getattr(value, field.name), hints[field.name], name)
