"""`loop.block_to_param`: every content block type the SDK defines goes back to the API as the
request's block type expects it, fields under their wire names (`BetaFallbackBlock.from_` as
`from`), checked against the SDK's own param TypedDicts."""

from __future__ import annotations

import datetime
import types
import typing
from typing import Any

import pydantic
import pytest
import typing_extensions
from anthropic.types import ContentBlock, ContentBlockParam
from anthropic.types.beta import BetaContentBlock, BetaContentBlockParam

from patchwright.loop import block_to_param

from sdk_types import problems


def sample(tp: Any, depth: int = 0) -> Any:
    """A value of type `tp` in wire form (aliases as keys), the first choice of every union."""
    origin, args = typing_extensions.get_origin(tp), typing_extensions.get_args(tp)
    if origin is typing_extensions.Annotated:
        return sample(args[0], depth)
    if origin in (typing.Union, types.UnionType):
        return sample(next(a for a in args if a is not type(None)), depth)
    if origin is typing_extensions.Literal:
        return args[0]
    if origin in (list, tuple):
        return [sample(args[0], depth + 1)] if depth < 4 else []
    if origin is dict:
        return {}
    simple = {str: "x", bool: True, int: 1, float: 1.0, datetime.datetime: "2026-01-01T00:00:00Z"}
    if tp in simple:
        return simple[tp]
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return {(f.alias or name): sample(f.annotation, depth + 1) for name, f in tp.model_fields.items()}
    return {}


def block_types(union: Any) -> list[type[pydantic.BaseModel]]:
    members = typing_extensions.get_args(union)
    if typing_extensions.get_origin(union) is typing_extensions.Annotated:
        members = typing_extensions.get_args(members[0])
    return list(members)


BETA_BLOCKS = block_types(BetaContentBlock)
BLOCKS = block_types(ContentBlock)


def test_the_sdk_defines_the_aliased_block_this_guards() -> None:
    names = [cls.__name__ for cls in BETA_BLOCKS]
    assert "BetaFallbackBlock" in names and len(names) >= 15
    aliased = [cls for cls in BETA_BLOCKS if any(f.alias for f in cls.model_fields.values())]
    assert aliased, "no block with an aliased field: the by-alias check would test nothing"


@pytest.mark.parametrize(
    ("block_type", "param_union"),
    [(cls, BetaContentBlockParam) for cls in BETA_BLOCKS] + [(cls, ContentBlockParam) for cls in BLOCKS],
    ids=lambda v: getattr(v, "__name__", "param"),
)
def test_each_block_goes_back_by_its_wire_names(
    block_type: type[pydantic.BaseModel], param_union: Any
) -> None:
    block = block_type.model_validate(sample(block_type))
    sent = block_to_param(block)
    for name, field in block_type.model_fields.items():
        if field.alias and field.alias != name:
            assert field.alias in sent and name not in sent, sent
    assert problems(sent, param_union) == []


def test_a_fallback_block_keeps_its_from_key() -> None:
    from anthropic.types.beta import BetaFallbackBlock

    block = BetaFallbackBlock.model_validate(
        {
            "type": "fallback",
            "from": {"model": "claude-fable-5-2"},
            "to": {"model": "claude-opus-5-5"},
            "trigger": {"type": "refusal"},
        }
    )
    sent = block_to_param(block)
    assert sent["from"] == {"model": "claude-fable-5-2"} and "from_" not in sent
