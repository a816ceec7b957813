"""`reply.py`: a streamed reply put together from its JSON events, as the SDK's own stream
helper would have it, and every content block type the SDK defines sent back the way the
request's block type expects it (checked against the SDK's param TypedDicts)."""

from __future__ import annotations

import datetime
import types
import typing
from typing import Any

import anthropic
import pydantic
import pytest
import typing_extensions
from anthropic.types import ContentBlock, ContentBlockParam
from anthropic.types.beta import BetaContentBlock, BetaContentBlockParam

from patchwright.model import ModelClient, Usage
from patchwright.reply import StreamCut, as_param, assemble

from fakeapi import FakeAnthropic, message, text, thinking, tool_use
from sdk_types import problems

MODEL = "claude-sonnet-5-5"


def start(**usage: Any) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 7, **usage},
        },
    }


def block(index: int, content_block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": content_block}


def delta(index: int, **fields: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": fields}


def end(stop_reason: str, **usage: Any) -> dict[str, Any]:
    return {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": usage}


# --------------------------------------------------------------------------- assemble


def test_blocks_are_built_from_their_deltas_and_text_is_passed_on_as_it_comes() -> None:
    pieces: list[str] = []
    events = [
        start(),
        {"type": "ping"},
        block(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, type="thinking_delta", thinking="look "),
        delta(0, type="thinking_delta", thinking="first"),
        delta(0, type="signature_delta", signature="sig"),
        {"type": "content_block_stop", "index": 0},
        block(1, {"type": "text", "text": "", "citations": None}),
        delta(1, type="text_delta", text="Running "),
        delta(1, type="text_delta", text="it."),
        block(2, {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {}}),
        delta(2, type="input_json_delta", partial_json='{"comm'),
        delta(2, type="input_json_delta", partial_json='and": "ls", "n": null}'),
        {"type": "content_block_stop", "index": 2},
        end("tool_use", output_tokens=42),
        {"type": "message_stop"},
    ]
    reply = assemble(events, pieces.append)
    assert pieces == ["Running ", "it."]
    assert reply.content == [
        {"type": "thinking", "thinking": "look first", "signature": "sig"},
        {"type": "text", "text": "Running it.", "citations": None},
        {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"command": "ls", "n": None}},
    ]
    assert reply.stop_reason == "tool_use" and reply.text() == "Running it."
    # message_delta's counts replace message_start's; one it leaves out keeps the start's value
    assert Usage.from_counts(reply.usage) == Usage(10, 42, 0, 7)


def test_a_tool_input_cut_at_max_tokens_keeps_what_arrived() -> None:
    events = [
        start(),
        block(0, {"type": "tool_use", "id": "toolu_1", "name": "editor", "input": {}}),
        delta(0, type="input_json_delta", partial_json='{"path": "a.py", "file_text": "print(1)\\npri'),
        end("max_tokens", output_tokens=9),
    ]
    reply = assemble(events)
    assert reply.stop_reason == "max_tokens"
    assert reply.content[0]["input"] == {"path": "a.py"}  # the cut string is dropped, as the SDK does
    fine = assemble(events, betas=["fine-grained-tool-streaming-2025-05-14"])
    assert fine.content[0]["input"] == {"path": "a.py", "file_text": "print(1)\npri"}


def test_what_the_server_did_to_the_context_and_a_fallback_model_are_kept() -> None:
    edits = {"applied_edits": [{"type": "clear_tool_uses_20250919", "cleared_input_tokens": 900}]}
    events = [
        start(),
        block(0, {"type": "compaction", "content": None}),
        delta(0, type="compaction_delta", content="summary", encrypted_content="enc"),
        block(1, {"type": "fallback", "from": {"model": MODEL}, "to": {"model": "claude-opus-5-5"}}),
        {**end("end_turn", output_tokens=3), "context_management": edits},
    ]
    reply = assemble(events)
    assert reply.content[0] == {"type": "compaction", "content": "summary", "encrypted_content": "enc"}
    assert reply.context_management == edits
    assert reply.model == "claude-opus-5-5"


@pytest.mark.parametrize(
    ("events", "said"),
    [
        ([], "ended before message_start"),
        ([block(0, {"type": "text", "text": ""})], "before message_start"),
        ([start(), delta(3, type="text_delta", text="x")], "never started"),
        (
            [
                start(),
                block(0, {"type": "tool_use", "id": "t", "name": "n", "input": {}}),
                delta(0, type="input_json_delta", partial_json='{"a": ]'),
            ],
            "not JSON",
        ),
    ],
)
def test_a_stream_that_makes_no_whole_reply_is_a_cut_stream(events: list[dict[str, Any]], said: str) -> None:
    with pytest.raises(StreamCut, match=said):
        assemble(events)


# --------------------------------------------------------------------------- the real SDK, the fake API


def test_the_reply_matches_what_the_sdks_own_stream_helper_makes_of_the_same_stream() -> None:
    script = [
        message(
            thinking("plan it"),
            text("I will look."),
            tool_use("bash", {"command": "ls -la", "timeout": None}),
        ),
    ]
    request = {"model": MODEL, "max_tokens": 2048, "messages": [{"role": "user", "content": "fix"}]}
    request["thinking"] = {"type": "adaptive"}
    with FakeAnthropic(script * 2) as api:
        client = anthropic.Anthropic(base_url=api.base_url, api_key="sk-ant-test", max_retries=0)
        with client.messages.stream(**request) as stream:  # type: ignore[call-overload]
            theirs = stream.get_final_message()
        ours = ModelClient(client, MODEL, max_tokens=2048).create([], [], request["messages"])
    expected = [b.model_dump(mode="json", exclude_none=True, by_alias=True) for b in theirs.content]
    for sent in expected:
        if sent["type"] == "text":
            sent.pop("citations", None)
    sent_back = [as_param(b) for b in ours.content]
    # the same blocks, but ids (the fake API makes new ones per reply) and signatures (per reply)
    assert [{k: v for k, v in b.items() if k not in ("id", "signature")} for b in sent_back] == [
        {k: v for k, v in b.items() if k not in ("id", "signature")} for b in expected
    ]
    assert sent_back[2]["input"] == {"command": "ls -la", "timeout": None}  # a tool's input as it came
    assert ours.stop_reason == theirs.stop_reason == "tool_use"
    assert Usage.from_counts(ours.usage) == Usage.from_counts(theirs.usage.model_dump())


# --------------------------------------------------------------------------- as_param


def sample(tp: Any, depth: int = 0, nulls: bool = False) -> Any:
    """A value of type `tp` in wire form (aliases as keys), the first choice of every union;
    with `nulls`, every optional field null, as the API sends a field it leaves empty."""
    origin, args = typing_extensions.get_origin(tp), typing_extensions.get_args(tp)
    if origin is typing_extensions.Annotated:
        return sample(args[0], depth, nulls)
    if origin in (typing.Union, types.UnionType):
        if nulls and type(None) in args:
            return None
        return sample(next(a for a in args if a is not type(None)), depth, nulls)
    if origin is typing_extensions.Literal:
        return args[0]
    if origin in (list, tuple):
        return [sample(args[0], depth + 1, nulls)] if depth < 4 else []
    if origin is dict:
        return {}
    simple = {str: "x", bool: True, int: 1, float: 1.0, datetime.datetime: "2026-01-01T00:00:00Z"}
    if tp in simple:
        return simple[tp]
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return {
            (f.alias or name): sample(f.annotation, depth + 1, nulls) for name, f in tp.model_fields.items()
        }
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
    assert aliased, "no block with an aliased field: the wire-name check would test nothing"


@pytest.mark.parametrize("nulls", [False, True], ids=["filled", "nulls"])
@pytest.mark.parametrize(
    ("block_type", "param_union"),
    [(cls, BetaContentBlockParam) for cls in BETA_BLOCKS] + [(cls, ContentBlockParam) for cls in BLOCKS],
    ids=lambda v: getattr(v, "__name__", "param"),
)
def test_each_block_goes_back_as_the_request_takes_it(
    block_type: type[pydantic.BaseModel], param_union: Any, nulls: bool
) -> None:
    wire = sample(block_type, nulls=nulls)
    sent = as_param(wire)
    for name, field in block_type.model_fields.items():
        if field.alias and field.alias != name and wire.get(field.alias) is not None:
            assert field.alias in sent and name not in sent, sent
    assert problems(sent, param_union) == []


def test_a_fallback_block_keeps_its_from_key() -> None:
    sent = as_param(
        {
            "type": "fallback",
            "from": {"model": "claude-fable-5-2"},
            "to": {"model": "claude-opus-5-5"},
            "trigger": {"type": "refusal", "detail": None},
        }
    )
    assert sent == {
        "type": "fallback",
        "from": {"model": "claude-fable-5-2"},
        "to": {"model": "claude-opus-5-5"},
        "trigger": {"type": "refusal"},
    }
