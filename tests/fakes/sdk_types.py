"""Check JSON against the `anthropic` SDK's own request TypedDicts, recursively.

A request body is wrong for the API if it carries a key its TypedDict does not declare, lacks
a required one, or holds a value outside a Literal; the SDK itself sends whatever it is given.
Keys are taken under their wire names (`PropertyInfo(alias=...)`, and the functional TypedDicts
the SDK uses for reserved words such as `from`).
"""

from __future__ import annotations

import collections.abc
import functools
import types
import typing
from typing import Any

import typing_extensions

_SEQUENCES = {list, tuple, collections.abc.Iterable, collections.abc.Sequence}


def problems(value: Any, tp: Any, path: str = "$") -> list[str]:
    """Every way `value` does not fit type `tp` (empty: it fits)."""
    origin = typing_extensions.get_origin(tp)
    args = typing_extensions.get_args(tp)
    if tp is Any or tp is object:
        return []
    if origin is typing_extensions.Annotated:
        return problems(value, args[0], path)
    if origin in (typing_extensions.Required, typing_extensions.NotRequired):
        return problems(value, args[0], path)
    if origin in (typing.Union, types.UnionType):
        return _union(value, args, path)
    if origin is typing_extensions.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {list(args)}"]
    if origin in _SEQUENCES or (isinstance(origin, type) and origin.__name__ == "SequenceNotStr"):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [
            p
            for i, item in enumerate(value)
            for p in problems(item, args[0] if args else Any, f"{path}[{i}]")
        ]
    if origin in (dict, collections.abc.Mapping):
        return [] if isinstance(value, dict) else [f"{path}: expected an object"]
    if typing_extensions.is_typeddict(tp):
        return _typeddict(value, tp, path)
    if tp is type(None):
        return [] if value is None else [f"{path}: expected null"]
    if tp is bool:
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean"]
    if tp is int:
        return (
            [] if isinstance(value, int) and not isinstance(value, bool) else [f"{path}: expected an integer"]
        )
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected a number"]
    if tp is str:
        return [] if isinstance(value, str) else [f"{path}: expected a string"]
    if isinstance(tp, type):  # a response model (pydantic) in a param union: a dict is none
        return [f"{path}: a {tp.__name__} object, not JSON"]
    return [f"{path}: cannot check against {tp!r}"]


def _union(value: Any, members: tuple[Any, ...], path: str) -> list[str]:
    found = [problems(value, member, path) for member in members]
    if any(not p for p in found):
        return []
    # Name the closest miss: the TypedDict whose `type` Literal matches, if any.
    if isinstance(value, dict) and "type" in value:
        for member, member_problems in zip(members, found, strict=True):
            if typing_extensions.is_typeddict(member) and _literal_type(member) == value["type"]:
                return member_problems
    # Or the member the value's shape fits, whose problems all lie deeper inside it.
    deeper = [f for f in found if all(not p.startswith(f"{path}: ") for p in f)]
    if deeper:
        return min(deeper, key=len)
    return [f"{path}: matches none of {len(members)} types: {min(found, key=len)[0]}"]


@functools.cache
def _fields(td: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """Wire name -> type, and the required wire names, of a TypedDict."""
    hints = typing_extensions.get_type_hints(td, include_extras=True)
    fields: dict[str, Any] = {}
    required: set[str] = set(getattr(td, "__required_keys__", ()))
    for name, hint in hints.items():
        wire = name
        inner = hint
        for _ in range(3):
            origin = typing_extensions.get_origin(inner)
            if origin is typing_extensions.Annotated:
                for meta in typing_extensions.get_args(inner)[1:]:
                    wire = getattr(meta, "alias", None) or wire
                inner = typing_extensions.get_args(inner)[0]
            elif origin is typing_extensions.Required:
                required.add(name)
                inner = typing_extensions.get_args(inner)[0]
            elif origin is typing_extensions.NotRequired:
                required.discard(name)
                inner = typing_extensions.get_args(inner)[0]
        if wire != name and name in required:
            required.discard(name)
            required.add(wire)
        fields[wire] = inner
    return fields, frozenset(required)


def _literal_type(td: Any) -> Any:
    hint = _fields(td)[0].get("type")
    if typing_extensions.get_origin(hint) is typing_extensions.Literal:
        return typing_extensions.get_args(hint)[0]
    return None


def _typeddict(value: Any, td: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected an object ({td.__name__})"]
    fields, required = _fields(td)
    out = [f"{path}: unknown key {key!r} for {td.__name__}" for key in value if key not in fields]
    out += [f"{path}: missing required key {key!r} of {td.__name__}" for key in sorted(required - set(value))]
    for key, item in value.items():
        if key in fields:
            out += problems(item, fields[key], f"{path}.{key}")
    return out
