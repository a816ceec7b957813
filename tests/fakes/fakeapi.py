"""A local fake of the Anthropic Messages API, for testing the real `anthropic` SDK offline.

The API cannot be reached from the test machines, and mocking the SDK would test our
assumptions about it rather than the SDK itself. So this module serves real HTTP on
127.0.0.1 (stdlib only) in the wire format the SDK parses: JSON replies, SSE streams,
error bodies and headers that drive the SDK's retry logic. Replies come from a script
(a list, or a callable that can react to the request), requests are validated the way
the real API validates them, and usage is accounted with a deterministic model of
prompt caching so benchmarks can compare billed input tokens.

    with FakeAnthropic([message(tool_use("bash", {"command": "ls"})), message(text("done"))]) as api:
        client = anthropic.Anthropic(base_url=api.base_url, api_key="sk-ant-test-key")
        ...
        assert len(api.requests) == 2
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import re
import socket
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Compaction",
    "CutStream",
    "Delay",
    "ErrorReply",
    "FakeAnthropic",
    "MessageReply",
    "ModelSpec",
    "RecordedRequest",
    "Reply",
    "Script",
    "Text",
    "Thinking",
    "ToolUse",
    "cut_stream",
    "delay",
    "error",
    "estimate_tokens",
    "last_tool_results",
    "last_user_text",
    "message",
    "render_content",
    "text",
    "thinking",
    "tool_use",
]

MAX_CACHE_BREAKPOINTS = 4
CACHE_LOOKBACK_BLOCKS = 20
STOP_REASONS = frozenset(
    {
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
    }
)
# Anthropic-defined tool types and the name each one must be given.
SERVER_TOOL_NAMES = {
    "bash_20241022": "bash",
    "bash_20250124": "bash",
    "text_editor_20241022": "str_replace_editor",
    "text_editor_20250124": "str_replace_editor",
    "text_editor_20250429": "str_replace_based_edit_tool",
    "text_editor_20250728": "str_replace_based_edit_tool",
    "computer_20241022": "computer",
    "computer_20250124": "computer",
    "memory_20250818": "memory",
    "web_search_20250305": "web_search",
    "web_fetch_20250910": "web_fetch",
    "code_execution_20250522": "code_execution",
    "code_execution_20250825": "code_execution",
}
# USD per million tokens, from the platform pricing and model pages (docs corpus):
# the server's own rate card, kept apart from patchwright's prices.toml so a wrong row there
# shows up as a cost that differs from what the server charged.
RATE_CARD: dict[str, dict[str, float]] = {
    "claude-sonnet-5-5": {
        "input": 2.0,
        "cache_write_5m": 2.5,
        "cache_write_1h": 4.0,
        "cache_read": 0.2,
        "output": 10.0,
    },
    "claude-opus-5-5": {
        "input": 4.0,
        "cache_write_5m": 5.0,
        "cache_write_1h": 8.0,
        "cache_read": 0.2,
        "output": 20.0,
    },
    "claude-fable-5-1": {
        "input": 10.0,
        "cache_write_5m": 12.5,
        "cache_write_1h": 20.0,
        "cache_read": 0.25,
        "output": 50.0,
    },
    "claude-opus-5": {
        "input": 5.0,
        "cache_write_5m": 6.25,
        "cache_write_1h": 10.0,
        "cache_read": 0.5,
        "output": 25.0,
    },
    "claude-haiku-4-5": {
        "input": 1.0,
        "cache_write_5m": 1.25,
        "cache_write_1h": 2.0,
        "cache_read": 0.1,
        "output": 5.0,
    },
}


@dataclass(frozen=True)
class ModelSpec:
    """What the fake's Models API says a model can do (GET /v1/models/{id}); the Messages API
    refuses an effort level or thinking type the model's spec lacks, as the real one would."""

    context: int = 200_000
    max_output: int = 64_000
    thinking: str | None = "adaptive"  # "adaptive", "enabled" (manual budgets only) or None
    efforts: tuple[str, ...] = ("low", "medium", "high", "xhigh", "max")
    edits: tuple[str, ...] = ("clear_thinking_20251015", "clear_tool_uses_20250919", "compact_20260112")
    display_name: str = ""

    def as_json(self, model_id: str) -> dict[str, Any]:
        """The wire form of the SDK's ModelInfo, every capability key present."""

        def support(on: bool) -> dict[str, bool]:
            return {"supported": on}

        efforts = {level: support(level in self.efforts) for level in EFFORTS}
        edits = {kind: support(kind in self.edits) for kind in EDIT_BETAS}
        return {
            "type": "model",
            "id": model_id,
            "display_name": self.display_name or model_id,
            "created_at": "2026-11-09T00:00:00Z",
            "lifecycle": "active",
            "max_input_tokens": self.context,
            "max_tokens": self.max_output,
            "capabilities": {
                "batch": support(True),
                "citations": support(True),
                "code_execution": support(True),
                "context_management": {"supported": bool(self.edits), **edits},
                "effort": {"supported": bool(self.efforts), **efforts},
                "image_input": support(True),
                "pdf_input": support(True),
                "server_tools": {
                    "supported": True,
                    "code_execution": support(True),
                    "web_search": support(True),
                },
                "structured_outputs": support(True),
                "thinking": {
                    "supported": self.thinking is not None,
                    "types": {
                        "adaptive": support(self.thinking == "adaptive"),
                        "enabled": support(self.thinking == "enabled"),
                        "disabled": support(True),
                        "between_tools": support(False),
                    },
                },
            },
        }


_ALL_EFFORTS = ("low", "medium", "high", "xhigh", "max")
_NO_XHIGH = ("low", "medium", "high", "max")
_BIG = {"context": 1_000_000, "max_output": 128_000}
# The server's own catalogue: every model in the SDK's Model list, as the platform docs describe
# them (effort page, model overviews), kept apart from patchwright's prices.toml.
MODEL_CATALOGUE: dict[str, ModelSpec] = {
    **{
        m: ModelSpec(**_BIG)  # type: ignore[arg-type]
        for m in (
            "claude-fable-5-2",
            "claude-mythos-5-2",
            "claude-fable-5-1",
            "claude-mythos-5-1",
            "claude-fable-5",
            "claude-mythos-5",
            "claude-opus-5-5",
            "claude-opus-5",
            "claude-sonnet-5-5",
            "claude-sonnet-5",
            "claude-haiku-5-5",
            "claude-opus-4-8",
            "claude-opus-4-7",
        )
    },
    "claude-mythos-preview": ModelSpec(efforts=_NO_XHIGH),
    "claude-opus-4-6": ModelSpec(efforts=_NO_XHIGH),
    "claude-sonnet-4-6": ModelSpec(efforts=_NO_XHIGH),
    "claude-opus-4-5": ModelSpec(thinking="enabled", efforts=("low", "medium", "high")),
    "claude-opus-4-5-20251101": ModelSpec(thinking="enabled", efforts=("low", "medium", "high")),
    "claude-haiku-4-5": ModelSpec(thinking="enabled", efforts=()),
    "claude-haiku-4-5-20251001": ModelSpec(thinking="enabled", efforts=()),
}

TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_SIGNATURE_SALT = b"fakeapi-thinking-signature:"

_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    """Deterministic ids of a constant length, so token estimates do not depend on them."""
    return f"{prefix}_fake{next(_ids):020d}"


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: dict[str, Any]
    id: str = field(default_factory=lambda: _next_id("toolu"))


@dataclass(frozen=True)
class Thinking:
    """A thinking block; the server signs it so a round trip can be verified like the real API does."""

    thinking: str


@dataclass(frozen=True)
class Compaction:
    """A compaction block (server-side compaction summarised the conversation before it)."""

    content: str


Block = Text | ToolUse | Thinking | Compaction


@dataclass(frozen=True)
class MessageReply:
    blocks: tuple[Block, ...]
    stop_reason: str
    stop_sequence: str | None = None


@dataclass(frozen=True)
class ErrorReply:
    status: int
    type: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CutStream:
    """Send the first `after_events` SSE events of `reply` (ping included), then drop the connection.

    A non-streaming request gets half of the JSON body instead.
    """

    after_events: int
    reply: MessageReply
    error_type: str | None = None  # instead of dropping, send an SSE `error` event (e.g. overloaded_error)


@dataclass(frozen=True)
class Delay:
    """Sleep before answering, so a client timeout fires first."""

    seconds: float
    reply: Reply


Reply = MessageReply | ErrorReply | CutStream | Delay


def text(s: str) -> Text:
    return Text(s)


def tool_use(name: str, input: dict[str, Any], id: str | None = None) -> ToolUse:
    return ToolUse(name, dict(input)) if id is None else ToolUse(name, dict(input), id)


def thinking(s: str) -> Thinking:
    return Thinking(s)


def message(
    *blocks: Block | str, stop_reason: str | None = None, stop_sequence: str | None = None
) -> MessageReply:
    """An assistant message; stop_reason defaults to "tool_use" if it calls a tool, else "end_turn"."""
    parts = tuple(Text(b) if isinstance(b, str) else b for b in blocks)
    if stop_reason is None:
        stop_reason = "tool_use" if any(isinstance(b, ToolUse) for b in parts) else "end_turn"
    if stop_reason not in STOP_REASONS:
        raise ValueError(f"unknown stop_reason {stop_reason!r}")
    if stop_reason == "stop_sequence" and stop_sequence is None:
        raise ValueError('stop_reason="stop_sequence" needs the stop_sequence that was hit')
    return MessageReply(parts, stop_reason, stop_sequence)


def error(status: int, type: str, message: str, headers: dict[str, str] | None = None) -> ErrorReply:
    """An API error, e.g. error(429, "rate_limit_error", "slow down", {"retry-after-ms": "1"})."""
    return ErrorReply(status, type, message, tuple((headers or {}).items()))


def stream_error(after_events: int, error_type: str = "overloaded_error") -> CutStream:
    """A 200 stream that sends `after_events` events, then an SSE `error` event, as the API does when
    it is overloaded mid-message."""
    return CutStream(after_events, message(text("never completed")), error_type)


def cut_stream(after_events: int, reply: MessageReply | None = None) -> CutStream:
    if reply is None:
        reply = message(
            text("This reply is cut off before the stream ends, so nobody should ever see it whole.")
        )
    return CutStream(after_events, reply)


def delay(seconds: float, reply: Reply) -> Delay:
    return Delay(seconds, reply)


def _as_reply(item: Reply | Block | str) -> Reply:
    """Let a script say "done" or text("done") where it means message(text("done"))."""
    if isinstance(item, str | Text | ToolUse | Thinking):
        return message(item)
    return item


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it. `status` is 0 while the script is still deciding."""

    body: dict[str, Any]
    headers: dict[str, str]  # lower-cased names
    status: int
    path: str = "/v1/messages"
    usage: dict[str, int] | None = None  # what the reply billed, for a message reply
    iterations: tuple[dict[str, Any], ...] = ()  # a compaction iteration's usage, billed on top
    applied_edits: tuple[dict[str, Any], ...] = ()  # what server-side context editing did
    received: float = 0.0  # time.monotonic() when the request arrived
    answered: float = 0.0  # time.monotonic() when the last byte of the reply was sent: a stopwatch's view


Script = Sequence[Reply | Block | str] | Callable[[RecordedRequest, int], Reply | Block | str]


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, dict) and block.get("type") == "text":
        return str(block.get("text", ""))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (_block_text(b) for b in content) if t)
    return ""


def _last_user_content(request: RecordedRequest) -> Any:
    for msg in reversed(request.body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return msg.get("content")
    return None


def last_tool_results(request: RecordedRequest) -> list[dict[str, Any]]:
    """The tool_result blocks of the last user message as {tool_use_id, is_error, text}."""
    content = _last_user_content(request)
    if not isinstance(content, list):
        return []
    return [
        {
            "tool_use_id": b.get("tool_use_id"),
            "is_error": bool(b.get("is_error", False)),
            "text": _content_text(b.get("content", "")),
        }
        for b in content
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]


def last_user_text(request: RecordedRequest) -> str:
    """The plain text (not tool results) of the last user message."""
    return _content_text(_last_user_content(request))


# --------------------------------------------------------------------------- validation


class InvalidRequest(Exception):
    """Raised inside the server; becomes a 400 invalid_request_error."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(text: str) -> str:
    return hashlib.sha256(_SIGNATURE_SALT + text.encode()).hexdigest()


def _sign(thinking_text: str, prefix: str = "") -> str:
    """A thinking block's signature: its text, and the prefix (model, system, tools, every
    earlier message and block) it was produced on. The docs' prefix check: a thinking block
    is bound to that prefix, so a later request that changed any of it is refused."""
    payload = {"t": _digest(thinking_text)[:32], "p": prefix[:32]}
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def _signature_parts(signature: Any) -> tuple[str, str] | None:
    try:
        payload = json.loads(base64.b64decode(str(signature), validate=True))
        return str(payload["t"]), str(payload["p"])
    except (ValueError, KeyError, TypeError):
        return None


def _sign_compaction(content: str) -> str:
    return base64.b64encode(bytes.fromhex(_digest("compaction:" + content))).decode()


def _validate_cache_control(where: str, block: dict[str, Any]) -> int:
    """Count one breakpoint if `block` has a well-formed cache_control; `where` is its path prefix."""
    cc = block.get("cache_control")
    if cc is None:
        return 0
    if not isinstance(cc, dict) or cc.get("type") != "ephemeral":
        raise InvalidRequest(f"{where}cache_control.type: Input should be 'ephemeral'")
    if cc.get("ttl", "5m") not in ("5m", "1h"):
        raise InvalidRequest(f"{where}cache_control.ttl: Input should be '5m' or '1h'")
    return 1


def _validate_tools(tools: Any) -> int:
    if not isinstance(tools, list):
        raise InvalidRequest("tools: Input should be a valid list")
    names: set[str] = set()
    breakpoints = 0
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise InvalidRequest(f"{where}.name: Field required")
        name, kind = tool["name"], tool.get("type", "custom")
        if kind in (None, "custom"):
            if not TOOL_NAME_RE.match(name):
                raise InvalidRequest(
                    f"{where}.custom.name: String should match pattern '{TOOL_NAME_RE.pattern}'"
                )
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise InvalidRequest(
                    f"{where}.custom.input_schema: a JSON schema of type 'object' is required"
                )
        elif kind in SERVER_TOOL_NAMES:
            if name != SERVER_TOOL_NAMES[kind]:
                raise InvalidRequest(f"{where}.{kind}.name: Input should be '{SERVER_TOOL_NAMES[kind]}'")
            if "max_characters" in tool and kind != "text_editor_20250728":
                raise InvalidRequest(f"{where}.{kind}.max_characters: Extra inputs are not permitted")
        else:
            raise InvalidRequest(
                f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
            )
        if name in names:
            raise InvalidRequest("tools: Tool names must be unique.")
        names.add(name)
        breakpoints += _validate_cache_control(f"{where}.", tool)
    return breakpoints


def _validate_system(system: Any) -> int:
    if isinstance(system, str):
        return 0
    if not isinstance(system, list):
        raise InvalidRequest("system: Input should be a valid string or list of text blocks")
    breakpoints = 0
    for i, block in enumerate(system):
        if (
            not isinstance(block, dict)
            or block.get("type") != "text"
            or not isinstance(block.get("text"), str)
        ):
            raise InvalidRequest(f"system.{i}: Input should be a text block")
        if not block["text"].strip():
            raise InvalidRequest(f"system.{i}: text content blocks must contain non-whitespace text")
        breakpoints += _validate_cache_control(f"system.{i}.", block)
    return breakpoints


def _missing_tool_results(index: int, ids: list[str]) -> InvalidRequest:
    return InvalidRequest(
        f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: "
        f"{', '.join(ids)}. Each `tool_use` block must have a corresponding `tool_result` block "
        "in the next message."
    )


def _validate_messages(messages: Any) -> int:
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Input should be a valid list")
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    breakpoints = 0
    pending_tool_uses: list[str] = []  # ids the previous assistant message is waiting on
    for i, msg in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"{where}.role: Input should be 'user' or 'assistant'")
        role, content = msg["role"], msg.get("content")
        if i == 0 and role != "user":
            raise InvalidRequest('messages: first message must use the "user" role')
        if i > 0 and role == messages[i - 1].get("role"):
            raise InvalidRequest(
                f'messages: roles must alternate between "user" and "assistant", but found '
                f'multiple "{role}" roles in a row (messages.{i - 1} and {where})'
            )
        is_final_assistant = i == len(messages) - 1 and role == "assistant"
        if isinstance(content, str):
            blocks: list[Any] = [{"type": "text", "text": content}] if content else []
        elif isinstance(content, list):
            blocks = content
        else:
            raise InvalidRequest(f"{where}.content: Input should be a valid string or list of content blocks")
        if not blocks and not is_final_assistant:
            raise InvalidRequest(
                f"{where}: all messages must have non-empty content "
                "except for the optional final assistant message"
            )
        tool_uses: list[str] = []
        seen_other = False
        answered: list[str] = []
        for j, block in enumerate(blocks):
            bwhere = f"{where}.content.{j}"
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise InvalidRequest(f"{bwhere}.type: Field required")
            kind = block["type"]
            if kind == "text":
                if not isinstance(block.get("text"), str) or not block["text"]:
                    raise InvalidRequest(f"{bwhere}.text: text content blocks must be non-empty")
            elif kind == "tool_use":
                if role != "assistant":
                    raise InvalidRequest(f"{bwhere}: tool_use blocks may only appear in assistant messages")
                tool_uses.append(str(block.get("id")))
            elif kind == "tool_result":
                if role != "user":
                    raise InvalidRequest(f"{bwhere}: tool_result blocks may only appear in user messages")
                tool_use_id = block.get("tool_use_id")
                if tool_use_id not in pending_tool_uses:
                    raise InvalidRequest(
                        f"{bwhere}: unexpected `tool_use_id` found in `tool_result` blocks: {tool_use_id}. "
                        "Each `tool_result` block must have a corresponding `tool_use` block "
                        "in the previous message."
                    )
                if seen_other:
                    raise InvalidRequest(
                        f"{bwhere}: `tool_result` blocks must come first in the user message content, "
                        "before any other blocks"
                    )
                answered.append(tool_use_id)
            elif kind == "thinking":
                if role != "assistant":
                    raise InvalidRequest(f"{bwhere}: thinking blocks may only appear in assistant messages")
                parts = _signature_parts(block.get("signature"))
                if parts is None or parts[0] != _digest(str(block.get("thinking", "")))[:32]:
                    raise InvalidRequest(f"{bwhere}: Invalid `signature` in `thinking` block")
            elif kind == "compaction":
                if role != "assistant":
                    raise InvalidRequest(f"{bwhere}: compaction blocks may only appear in assistant messages")
                content_text = block.get("content")
                if content_text is not None and block.get("signature") != _sign_compaction(str(content_text)):
                    raise InvalidRequest(
                        f"{bwhere}: the compaction block's content does not match its signature"
                    )
            if kind != "tool_result":
                seen_other = True
            breakpoints += _validate_cache_control(f"{bwhere}.", block)
        missing = [t for t in pending_tool_uses if t not in answered]
        if missing:
            raise _missing_tool_results(i - 1, missing)
        pending_tool_uses = tool_uses
    if pending_tool_uses:
        raise _missing_tool_results(len(messages) - 1, pending_tool_uses)
    return breakpoints


def _uses_tools(messages: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result")
        for m in messages
        if isinstance(m.get("content"), list)
        for b in m["content"]
    )


def validate(
    body: Any, betas: frozenset[str] = frozenset(), catalogue: dict[str, ModelSpec] | None = None
) -> None:
    """Check a /v1/messages body the way the real API does; raises InvalidRequest.

    `betas`: the request's anthropic-beta header values."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object")
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise InvalidRequest(f"{name}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise InvalidRequest("model: Input should be a valid string")
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be an integer greater than or equal to 1")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequest("stream: Input should be a valid boolean")
    breakpoints = _validate_messages(body["messages"])
    if not body.get("tools") and _uses_tools(body["messages"]):
        raise InvalidRequest("Requests which include `tool_use` or `tool_result` blocks must define tools.")
    if "tools" in body:
        breakpoints += _validate_tools(body["tools"])
    if "system" in body:
        breakpoints += _validate_system(body["system"])
    breakpoints += _validate_cache_control("", body)
    if breakpoints > MAX_CACHE_BREAKPOINTS:
        raise InvalidRequest(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {breakpoints}."
        )
    _validate_thinking(body)
    _validate_output_config(body)
    _validate_against_catalogue(body, catalogue)
    _validate_context_management(body, betas)
    _check_thinking_prefixes(body)


# --------------------------------------------------------------------------- thinking, effort, context management
#
# The rules below follow the platform docs as stored in the docs corpus when this was written:
# effort (build-with-claude/effort: output_config.effort, five levels), thinking (the SDK's
# ThinkingConfigParam: budget_tokens >= 1024 and < max_tokens; models/sonnet-5/overview:
# manual thinking is a 400 on Sonnet 5; models/opus-5-5/overview: thinking cannot be turned
# off on Opus 5.5 and Fable 5.1), preserved-thinking/prefix-checks (a thinking block is bound
# to system, tools and every earlier message; a change before it is refused with 400),
# context-editing and compaction (beta headers, edit types, clear_thinking first).

EFFORTS = ("low", "medium", "high", "xhigh", "max")
MANUAL_THINKING_REFUSED = frozenset({"claude-sonnet-5", "claude-sonnet-5-5"})
THINKING_ALWAYS_ON = frozenset({"claude-opus-5-5", "claude-fable-5-1"})
CONTEXT_MANAGEMENT_BETA = "context-management-2025-06-27"
COMPACT_BETA = "compact-2026-01-12"
EDIT_BETAS = {
    "clear_tool_uses_20250919": CONTEXT_MANAGEMENT_BETA,
    "clear_thinking_20251015": CONTEXT_MANAGEMENT_BETA,
    "compact_20260112": COMPACT_BETA,
}
DEFAULT_CLEAR_TRIGGER = 100_000  # input tokens, the documented default of clear_tool_uses
DEFAULT_KEEP_TOOL_USES = 3
DEFAULT_COMPACT_TRIGGER = 150_000  # the SDK's BetaCompact20260112EditParam docstring
CLEARED_PLACEHOLDER = "[tool result cleared by context management]"


def thinking_enabled(body: dict[str, Any]) -> bool:
    thinking_cfg = body.get("thinking")
    return isinstance(thinking_cfg, dict) and thinking_cfg.get("type") in ("enabled", "adaptive")


def _validate_thinking(body: dict[str, Any]) -> None:
    if "thinking" not in body:
        return
    cfg = body["thinking"]
    kinds = ("enabled", "disabled", "adaptive", "between_tools")
    if not isinstance(cfg, dict) or cfg.get("type") not in kinds:
        raise InvalidRequest(
            "thinking.type: Input should be 'enabled', 'disabled', 'adaptive' or 'between_tools'"
        )
    if "display" in cfg and cfg["display"] not in (None, "summarized", "omitted"):
        raise InvalidRequest("thinking.display: Input should be 'summarized' or 'omitted'")
    model = str(body.get("model"))
    if cfg["type"] == "enabled":
        budget = cfg.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1024:
            raise InvalidRequest(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        if budget >= body["max_tokens"]:
            raise InvalidRequest("`max_tokens` must be greater than `thinking.budget_tokens`")
        if model in MANUAL_THINKING_REFUSED:
            raise InvalidRequest(
                f'thinking.type "enabled" is not supported for {model}; use thinking.type "adaptive" and effort'
            )
    if cfg["type"] == "disabled" and model in THINKING_ALWAYS_ON:
        raise InvalidRequest(f"thinking cannot be disabled for {model}")


def _validate_output_config(body: dict[str, Any]) -> None:
    if "output_config" not in body:
        return
    cfg = body["output_config"]
    if not isinstance(cfg, dict):
        raise InvalidRequest("output_config: Input should be an object")
    unknown = set(cfg) - {"effort", "format"}
    if unknown:
        raise InvalidRequest(f"output_config.{sorted(unknown)[0]}: Extra inputs are not permitted")
    if "effort" in cfg and cfg["effort"] is not None and cfg["effort"] not in EFFORTS:
        raise InvalidRequest(
            "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
        )


def _validate_against_catalogue(body: dict[str, Any], catalogue: dict[str, ModelSpec] | None) -> None:
    """An effort level, thinking type or context edit the model's spec lacks is a 400."""
    spec = (catalogue or {}).get(str(body.get("model")))
    if spec is None:
        return
    effort = (body.get("output_config") or {}).get("effort")
    if effort is not None and effort not in spec.efforts:
        has = ", ".join(spec.efforts) or "none"
        raise InvalidRequest(
            f"output_config.effort: {effort!r} is not supported by {body['model']} (levels: {has})"
        )
    kind = (body.get("thinking") or {}).get("type")
    if kind in ("adaptive", "enabled") and kind != spec.thinking:
        raise InvalidRequest(f"thinking.type {kind!r} is not supported by {body['model']}")
    for edit in (body.get("context_management") or {}).get("edits") or []:
        if isinstance(edit, dict) and edit.get("type") not in spec.edits:
            raise InvalidRequest(
                f"context_management: {edit.get('type')} is not supported by {body['model']}"
            )


def _token_threshold(where: str, value: Any, kinds: tuple[str, ...]) -> None:
    if (
        not isinstance(value, dict)
        or value.get("type") not in kinds
        or not isinstance(value.get("value"), int)
        or isinstance(value.get("value"), bool)
        or value["value"] < 0
    ):
        raise InvalidRequest(
            f"{where}: Input should be {{type: {' | '.join(kinds)}, value: a non-negative integer}}"
        )


def _validate_context_management(body: dict[str, Any], betas: frozenset[str]) -> None:
    if body.get("context_management") is None:
        return
    cm = body["context_management"]
    if not isinstance(cm, dict) or not isinstance(cm.get("edits"), list):
        raise InvalidRequest("context_management.edits: Input should be a valid list")
    seen: list[str] = []
    for i, edit in enumerate(cm["edits"]):
        where = f"context_management.edits.{i}"
        kind = edit.get("type") if isinstance(edit, dict) else None
        if kind not in EDIT_BETAS:
            raise InvalidRequest(f"{where}.type: Input tag {kind!r} does not match any of the expected tags")
        assert isinstance(edit, dict)
        if EDIT_BETAS[kind] not in betas:
            raise InvalidRequest(f"{where}: {kind} requires the anthropic-beta header {EDIT_BETAS[kind]}")
        if kind in seen:
            raise InvalidRequest(f"{where}: {kind} is given twice")
        if kind == "clear_thinking_20251015":
            if seen:
                raise InvalidRequest(f"{where}: clear_thinking_20251015 must come first in edits")
            if not thinking_enabled(body):
                raise InvalidRequest(f"{where}: clear_thinking_20251015 needs thinking to be enabled")
            keep = edit.get("keep", {"type": "thinking_turns", "value": 1})
            if keep != "all" and keep != {"type": "all"}:
                _token_threshold(f"{where}.keep", keep, ("thinking_turns",))
        if kind == "clear_tool_uses_20250919":
            for name, kinds in (
                ("trigger", ("input_tokens", "tool_uses")),
                ("keep", ("tool_uses",)),
                ("clear_at_least", ("input_tokens",)),
            ):
                if edit.get(name) is not None:
                    _token_threshold(f"{where}.{name}", edit[name], kinds)
        if kind == "compact_20260112" and edit.get("trigger") is not None:
            _token_threshold(f"{where}.trigger", edit["trigger"], ("input_tokens",))
        seen.append(kind)


def _normal_blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content) if isinstance(content, list) else []


class _PrefixChain:
    """A running hash over the prompt as the model reads it: model, system, tools, then each
    message (its role) and each block, cache_control left out (it is not content)."""

    def __init__(self, body: dict[str, Any]) -> None:
        system = body.get("system")
        head = {
            "model": body.get("model"),
            "system": [_strip_cache_control(b) for b in _normal_blocks(system)],
            "tools": [_strip_cache_control(t) for t in body.get("tools") or []],
        }
        self.digest = _digest(_canonical(head))

    def start_message(self, role: str) -> None:
        self.digest = _digest(f"{self.digest}|message|{role}")

    def add(self, block: Any) -> None:
        self.digest = _digest(f"{self.digest}|{_canonical(_strip_cache_control(block))}")


def _last_compaction(messages: list[Any]) -> tuple[int, int] | None:
    found = None
    for i, msg in enumerate(messages):
        for j, block in enumerate(_normal_blocks(msg.get("content"))):
            if isinstance(block, dict) and block.get("type") == "compaction":
                found = (i, j)
    return found


def _check_thinking_prefixes(body: dict[str, Any]) -> None:
    """Refuse a request whose history changed before a thinking block (the docs' prefix check).
    Blocks before the last compaction block are dropped by the server and not checked."""
    messages = body["messages"]
    dropped_until = _last_compaction(messages) or (-1, -1)
    chain = _PrefixChain(body)
    for i, msg in enumerate(messages):
        chain.start_message(msg["role"])
        for j, block in enumerate(_normal_blocks(msg.get("content"))):
            if isinstance(block, dict) and block.get("type") == "thinking" and (i, j) > dropped_until:
                parts = _signature_parts(block.get("signature"))
                if parts is not None and parts[1] != chain.digest[:32]:
                    raise InvalidRequest(
                        f"messages.{i}.content.{j}: The block is bound to a different conversation: "
                        "`system`, `tools` or an earlier message changed after this thinking block was produced"
                    )
            chain.add(block)


# --------------------------------------------------------------------------- usage accounting


def estimate_tokens(value: Any) -> int:
    """The fake tokenizer: a quarter of the canonical JSON's length, rounded up."""
    return math.ceil(len(_canonical(value)) / 4)


def _strip_cache_control(block: Any) -> Any:
    if isinstance(block, dict):
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _prompt_blocks(body: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    """The prompt as (role, block without cache_control, has breakpoint): tools, system, then messages."""
    out: list[tuple[str, Any, bool]] = []
    for tool in body.get("tools") or []:
        out.append(("tool", _strip_cache_control(tool), "cache_control" in tool))
    system = body.get("system")
    if isinstance(system, str):
        out.append(("system", {"type": "text", "text": system}, False))
    elif isinstance(system, list):
        out.extend(("system", _strip_cache_control(b), "cache_control" in b) for b in system)
    for msg in body["messages"]:
        content = msg["content"]
        if isinstance(content, str):
            if content:
                out.append((msg["role"], {"type": "text", "text": content}, False))
        else:
            out.extend((msg["role"], _strip_cache_control(b), "cache_control" in b) for b in content)
    if body.get("cache_control") and out:  # top-level "automatic" caching marks the last block
        role, block, _ = out[-1]
        out[-1] = (role, block, True)
    return out


def _breakpoint_ttls(body: dict[str, Any]) -> list[str]:
    """The cache TTL of each prompt block's breakpoint ("5m" where none), in _prompt_blocks order."""
    ttls: list[str] = []

    def ttl(block: Any) -> str:
        cc = block.get("cache_control") if isinstance(block, dict) else None
        return str(cc.get("ttl", "5m")) if isinstance(cc, dict) else "5m"

    ttls.extend(ttl(t) for t in body.get("tools") or [])
    system = body.get("system")
    if isinstance(system, str):
        ttls.append("5m")
    elif isinstance(system, list):
        ttls.extend(ttl(b) for b in system)
    for msg in body["messages"]:
        content = msg["content"]
        if isinstance(content, str):
            if content:
                ttls.append("5m")
        else:
            ttls.extend(ttl(b) for b in content)
    if body.get("cache_control") and ttls:
        ttls[-1] = ttl(body)
    return ttls


class PromptCache:
    """Prefix-hash prompt caching shared by all requests to one server (no TTL).

    Like the real API: an entry is written at each breakpoint whose prefix is long enough;
    each breakpoint checks its own boundary and up to 20 block boundaries before it for
    the longest prefix written before; reads are what that hit covers, creation is the
    rest up to the last breakpoint, and input is whatever follows.
    """

    def __init__(self, min_cacheable_tokens: int) -> None:
        self.min_cacheable_tokens = min_cacheable_tokens
        self._entries: set[str] = set()
        self._lock = threading.Lock()

    def account(self, body: dict[str, Any]) -> dict[str, int]:
        blocks = _prompt_blocks(body)
        cumulative: list[int] = []
        hashes: list[str] = []
        running, digest = 0, hashlib.sha256(_canonical(body["model"]).encode()).hexdigest()
        for role, block, _ in blocks:
            running += estimate_tokens(block)
            digest = hashlib.sha256(f"{digest}|{role}|{_canonical(block)}".encode()).hexdigest()
            cumulative.append(running)
            hashes.append(digest)
        total = running
        breakpoints = [i for i, (_, _, marked) in enumerate(blocks) if marked]
        ttls = _breakpoint_ttls(body)
        if not breakpoints:
            return {
                "input_tokens": total,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "cache_creation_1h_input_tokens": 0,
            }
        with self._lock:
            hit = -1
            for bp in breakpoints:
                for j in range(bp, max(bp - CACHE_LOOKBACK_BLOCKS - 1, -1), -1):
                    if hashes[j] in self._entries:
                        hit = max(hit, j)
                        break
            read = cumulative[hit] if hit >= 0 else 0
            last = breakpoints[-1]
            created = one_hour = 0
            if last > hit and cumulative[last] >= self.min_cacheable_tokens:
                created = cumulative[last] - read
                covered = read
                for bp in breakpoints:  # each segment is written with its breakpoint's TTL
                    if cumulative[bp] > covered:
                        if ttls[bp] == "1h":
                            one_hour += cumulative[bp] - covered
                        covered = cumulative[bp]
            for bp in breakpoints:
                if cumulative[bp] >= self.min_cacheable_tokens:
                    self._entries.add(hashes[bp])
        return {
            "input_tokens": total - read - created,
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
            "cache_creation_1h_input_tokens": one_hour,
        }


# --------------------------------------------------------------------------- server-side context management


def _prompt_tokens(body: dict[str, Any]) -> int:
    return sum(estimate_tokens(block) for _, block, _ in _prompt_blocks(body))


def _after_compaction(body: dict[str, Any]) -> dict[str, Any]:
    """The prompt the model reads: the API drops every block before the last compaction block."""
    found = _last_compaction(body["messages"])
    if found is None:
        return body
    i, j = found
    kept = [{"role": "assistant", "content": _normal_blocks(body["messages"][i]["content"])[j:]}]
    return {**body, "messages": kept + list(body["messages"][i + 1 :])}


def _edit(body: dict[str, Any], kind: str) -> dict[str, Any] | None:
    cm = body.get("context_management")
    for edit in cm.get("edits", []) if isinstance(cm, dict) else []:
        if edit.get("type") == kind:
            return dict(edit)
    return None


def _clear_thinking(
    body: dict[str, Any], edit: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    keep = edit.get("keep", {"type": "thinking_turns", "value": 1})
    if keep in ("all", {"type": "all"}):
        return body, None
    turns = [
        i
        for i, m in enumerate(body["messages"])
        if m["role"] == "assistant"
        and any(isinstance(b, dict) and b.get("type") == "thinking" for b in _normal_blocks(m["content"]))
    ]
    cleared = turns[: max(0, len(turns) - int(keep["value"]))]
    if not cleared:
        return body, None
    messages, freed = list(body["messages"]), 0
    for i in cleared:
        blocks = _normal_blocks(messages[i]["content"])
        freed += sum(estimate_tokens(b) for b in blocks if b.get("type") == "thinking")
        messages[i] = {**messages[i], "content": [b for b in blocks if b.get("type") != "thinking"]}
    applied = {
        "type": "clear_thinking_20251015",
        "cleared_thinking_turns": len(cleared),
        "cleared_input_tokens": freed,
    }
    return {**body, "messages": messages}, applied


def _clear_tool_uses(
    body: dict[str, Any], edit: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Past the trigger, every tool result but the last `keep` is replaced by a placeholder,
    oldest first, when that frees at least `clear_at_least` tokens (the fake's model of the API)."""
    trigger = edit.get("trigger") or {"type": "input_tokens", "value": DEFAULT_CLEAR_TRIGGER}
    keep = int((edit.get("keep") or {"value": DEFAULT_KEEP_TOOL_USES})["value"])
    at_least = int((edit.get("clear_at_least") or {"value": 0})["value"])
    excluded = set(edit.get("exclude_tools") or [])
    names = {
        b.get("id"): b.get("name")
        for m in body["messages"]
        for b in _normal_blocks(m["content"])
        if isinstance(b, dict) and b.get("type") == "tool_use"
    }
    results = [
        (i, j)
        for i, m in enumerate(body["messages"])
        for j, b in enumerate(_normal_blocks(m["content"]))
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]
    if trigger["type"] == "tool_uses":
        triggered = len(results) > int(trigger["value"])
    else:
        triggered = _prompt_tokens(body) > int(trigger["value"])
    candidates = [
        (i, j)
        for i, j in results[: max(0, len(results) - keep)]
        if names.get(_normal_blocks(body["messages"][i]["content"])[j].get("tool_use_id")) not in excluded
    ]
    if not triggered or not candidates:
        return body, None
    messages = [{**m, "content": _normal_blocks(m["content"])} for m in body["messages"]]
    freed, cleared = 0, 0
    for i, j in candidates:
        block = messages[i]["content"][j]
        if block.get("content") == CLEARED_PLACEHOLDER:
            continue
        replaced = {**block, "content": CLEARED_PLACEHOLDER}
        freed += estimate_tokens(_strip_cache_control(block)) - estimate_tokens(
            _strip_cache_control(replaced)
        )
        messages[i]["content"] = [*messages[i]["content"][:j], replaced, *messages[i]["content"][j + 1 :]]
        cleared += 1
    if cleared == 0 or freed < at_least:
        return body, None
    applied = {
        "type": "clear_tool_uses_20250919",
        "cleared_tool_uses": cleared,
        "cleared_input_tokens": freed,
    }
    return {**body, "messages": messages}, applied


def _summary_of(body: dict[str, Any]) -> str:
    first = next((m for m in body["messages"] if m["role"] == "user"), None)
    task = _content_text(first.get("content")) if first else ""
    return (
        f"Summary of {len(body['messages'])} earlier messages ({_prompt_tokens(body)} tokens). "
        f"The user's task, verbatim: {task}"
    )


# --------------------------------------------------------------------------- wire format


def _block_json(block: Block, prefix: str = "") -> dict[str, Any]:
    """A reply block as the API returns it; a thinking block is signed over `prefix`."""
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUse):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if isinstance(block, Compaction):
        return {"type": "compaction", "content": block.content, "signature": _sign_compaction(block.content)}
    return {"type": "thinking", "thinking": block.thinking, "signature": _sign(block.thinking, prefix)}


def render_content(blocks: Sequence[Block], body: dict[str, Any]) -> list[dict[str, Any]]:
    """The reply's content for this request: each thinking block signed over the prefix it was
    produced on (the request as sent, then the reply's earlier blocks). A reply to a request
    ending with an assistant message continues that message (pause_turn)."""
    chain = _PrefixChain(body)
    messages = body["messages"]
    for msg in messages:
        chain.start_message(msg["role"])
        for block in _normal_blocks(msg.get("content")):
            chain.add(block)
    if not messages or messages[-1]["role"] != "assistant":
        chain.start_message("assistant")
    content = []
    for block in blocks:
        rendered = _block_json(block, chain.digest)
        content.append(rendered)
        chain.add(rendered)
    return content


def _usage_json(usage: dict[str, int], output_tokens: int) -> dict[str, Any]:
    one_hour = usage.get("cache_creation_1h_input_tokens", 0)
    return {
        "input_tokens": usage["input_tokens"],
        "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
        "cache_read_input_tokens": usage["cache_read_input_tokens"],
        "output_tokens": output_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage["cache_creation_input_tokens"] - one_hour,
            "ephemeral_1h_input_tokens": one_hour,
        },
        "service_tier": "standard",
    }


def _chunks(s: str, pieces: int = 4) -> list[str]:
    """Split into a few pieces, as the API streams text and tool input in fragments."""
    if not s:
        return []
    size = max(1, math.ceil(len(s) / pieces))
    return [s[i : i + size] for i in range(0, len(s), size)]


def _output_tokens(content: list[dict[str, Any]]) -> int:
    """Output of the message iteration; a compaction summary is billed in its own iteration."""
    return max(1, estimate_tokens([b for b in content if b.get("type") != "compaction"]))


@dataclass(frozen=True)
class _Outcome:
    """What the server makes of one request: the reply, its usage and what context management did."""

    reply: MessageReply
    usage: dict[str, int]
    applied_edits: list[dict[str, Any]] | None = None  # None: the request had no context_management
    iterations: list[dict[str, Any]] | None = None  # set when a compaction iteration ran


def _message_json(
    outcome: _Outcome, content: list[dict[str, Any]], model: str, msg_id: str
) -> dict[str, Any]:
    usage = _usage_json(outcome.usage, _output_tokens(content))
    if outcome.iterations is not None:
        usage["iterations"] = [
            *outcome.iterations,
            {**{k: v for k, v in usage.items() if k not in ("service_tier",)}, "type": "message"},
        ]
    payload: dict[str, Any] = {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": outcome.reply.stop_reason,
        "stop_sequence": outcome.reply.stop_sequence,
        "usage": usage,
    }
    if outcome.applied_edits is not None:
        payload["context_management"] = {"applied_edits": outcome.applied_edits}
    return payload


def _sse_events(final: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The (event name, data) sequence of a streamed reply, as the real API sends it."""
    start = {
        **{k: v for k, v in final.items() if k != "context_management"},
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**{k: v for k, v in final["usage"].items() if k != "iterations"}, "output_tokens": 1},
    }
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(final["content"]):
        deltas: list[dict[str, Any]]
        kind = block["type"]
        if kind == "text":
            empty: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": part} for part in _chunks(block["text"])]
        elif kind == "tool_use":
            empty = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            # The API opens with an empty fragment, then sends the JSON in pieces.
            pieces = ["", *_chunks(json.dumps(block["input"]))]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        elif kind == "compaction":
            empty = {"type": "compaction", "content": None, "signature": block["signature"]}
            deltas = [{"type": "compaction_delta", "content": block["content"], "encrypted_content": None}]
        else:
            empty = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": part} for part in _chunks(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}
        for delta in deltas:
            yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    delta_event: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": final["stop_reason"], "stop_sequence": final["stop_sequence"]},
        "usage": {
            "output_tokens": final["usage"]["output_tokens"],
            **({"iterations": final["usage"]["iterations"]} if "iterations" in final["usage"] else {}),
        },
    }
    if "context_management" in final:
        delta_event["context_management"] = final["context_management"]
    yield "message_delta", delta_event
    yield "message_stop", {"type": "message_stop"}


def _error_json(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


# --------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked SSE, like the real API
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and
        # the client's delayed ACK add 40 ms to every reply on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    def do_GET(self) -> None:
        self.server.fake._handle(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeAnthropic


class _Exchange:
    """Writes one HTTP response on a handler; knows whether the client already went away."""

    def __init__(self, handler: _Handler, request_id: str) -> None:
        self.handler = handler
        self.request_id = request_id

    def _head(self, status: int, content_type: str, headers: dict[str, str], length: int | None) -> None:
        h = self.handler
        h.send_response(status)
        h.send_header("content-type", content_type)
        h.send_header("request-id", self.request_id)
        for name, value in headers.items():
            h.send_header(name, value)
        if length is None:
            h.send_header("transfer-encoding", "chunked")
            h.send_header("cache-control", "no-cache")
        else:
            h.send_header("content-length", str(length))
        h.end_headers()

    def json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self._head(status, "application/json", headers or {}, len(data))
        self.handler.wfile.write(data)

    def error(
        self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self.json(status, _error_json(error_type, message, self.request_id), headers)

    def sse(
        self, events: Iterator[tuple[str, Any]], cut_after: int | None = None, error_type: str | None = None
    ) -> None:
        self._head(200, "text/event-stream; charset=utf-8", {}, None)
        for n, (name, data) in enumerate(events):
            if cut_after is not None and n >= cut_after:
                break
            self._chunk(name, data)
        if cut_after is not None and error_type is None:
            self.drop()
            return
        if error_type is not None:
            self._chunk(
                "error",
                {"type": "error", "error": {"type": error_type, "message": "fakeapi: error mid-stream"}},
            )
        self.handler.wfile.write(b"0\r\n\r\n")

    def _chunk(self, name: str, data: Any) -> None:
        chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        self.handler.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))

    def truncated_json(self, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self._head(200, "application/json", {}, len(data))
        self.handler.wfile.write(data[: len(data) // 2])
        self.drop()

    def drop(self) -> None:
        """Close the socket without finishing the body, as a dying connection would."""
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)


class FakeAnthropic:
    """A scripted Messages API on 127.0.0.1; use as a context manager, or start()/close().

    `script` is a list of replies consumed in order, or a callable
    `script(request, index) -> reply` called for each request that passes auth and
    validation (`index` counts those calls from 0; concurrent requests may call it
    from several threads at once). Requests failing auth or validation are answered
    by the server itself and consume nothing.
    """

    def __init__(
        self,
        script: Script,
        *,
        min_cacheable_tokens: int = 1024,
        think: bool = False,
        context_window: int | None = None,
        models: dict[str, ModelSpec] | None = None,
    ) -> None:
        """`think`: when a request turns thinking on, a reply without a thinking block gets one
        (signed, so the client must send it back unchanged). `context_window`: a prompt longer
        than this is a 400, and a reply that would not fit stops with model_context_window_exceeded."""
        self.think = think
        self.context_window = context_window
        # GET /v1/models: MODEL_CATALOGUE with `models` added or replaced; those requests are
        # recorded apart (model_requests), so `requests` stays the Messages traffic.
        self.models = {**MODEL_CATALOGUE, **(models or {})}
        self._model_requests: list[RecordedRequest] = []
        self._script = script if callable(script) else list(script)
        self._script_calls = 0
        self._cache = PromptCache(min_cacheable_tokens)
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeAnthropic:
        if self._server is None:
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self._server.fake = self
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fakeapi", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes delayed replies
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeAnthropic is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self, api_key: str = "sk-ant-test-fakeapi") -> dict[str, str]:
        """Environment variables that point a subprocess's SDK client at this server."""
        return {"ANTHROPIC_BASE_URL": self.base_url, "ANTHROPIC_API_KEY": api_key}

    # -- recorded traffic

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def model_requests(self) -> list[RecordedRequest]:
        """Every Models API request (GET /v1/models, /v1/models/{id}) so far, in arrival order."""
        with self._lock:
            return list(self._model_requests)

    def total_cost(self) -> float:
        """What the requests so far cost at the rate card (RATE_CARD) of each request's model,
        cache writes by TTL and compaction iterations included."""
        total = 0.0
        for request in self.requests:
            if request.usage is None:
                continue
            rates = RATE_CARD[str(request.body["model"])]
            for usage in (request.usage, *request.iterations):
                nested = usage.get("cache_creation") or {}  # an iteration is in wire form
                one_hour = usage.get(
                    "cache_creation_1h_input_tokens", nested.get("ephemeral_1h_input_tokens", 0)
                )
                total += (
                    usage.get("input_tokens", 0) * rates["input"]
                    + (usage.get("cache_creation_input_tokens", 0) - one_hour) * rates["cache_write_5m"]
                    + one_hour * rates["cache_write_1h"]
                    + usage.get("cache_read_input_tokens", 0) * rates["cache_read"]
                    + usage.get("output_tokens", 0) * rates["output"]
                ) / 1_000_000
        return total

    def total_usage(self) -> dict[str, int]:
        """Token totals over all answered messages, e.g. to compare billed input with and without caching."""
        keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
        totals = dict.fromkeys(keys, 0)
        for request in self.requests:
            for key in keys:
                totals[key] += (request.usage or {}).get(key, 0)
        return totals

    # -- request handling

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self._requests.append(request)
            return len(self._requests) - 1

    def _update(self, slot: int, **changes: Any) -> None:
        with self._lock:
            self._requests[slot] = dataclasses.replace(self._requests[slot], **changes)

    def _next_reply(self, request: RecordedRequest) -> Reply | ErrorReply:
        with self._lock:
            index = self._script_calls
            self._script_calls += 1
            script = self._script
            if not callable(script):
                if index >= len(script):
                    return ErrorReply(
                        500,
                        "api_error",
                        f"fakeapi script ran out: it has {len(script)} replies "
                        f"and request #{index + 1} asked for another",
                        (("x-should-retry", "false"),),
                    )
                return _as_reply(script[index])
        try:
            return _as_reply(script(request, index))
        except Exception:
            return ErrorReply(
                500,
                "api_error",
                f"fakeapi script raised:\n{traceback.format_exc()}",
                (("x-should-retry", "false"),),
            )

    def _with_thinking(self, body: dict[str, Any], reply: MessageReply) -> MessageReply:
        if not self.think or not thinking_enabled(body) or any(isinstance(b, Thinking) for b in reply.blocks):
            return reply
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant") + 1
        note = Thinking(f"Turn {turn}: weighing what the last result means before acting.")
        return dataclasses.replace(reply, blocks=(note, *reply.blocks))

    def _serve(self, body: dict[str, Any], reply: MessageReply) -> _Outcome | ErrorReply:
        """Context management (compaction, clearing), prompt-cache accounting and the window."""
        effective = _after_compaction(body)
        applied: list[dict[str, Any]] | None = [] if body.get("context_management") is not None else None
        for kind, apply in (
            ("clear_thinking_20251015", _clear_thinking),
            ("clear_tool_uses_20250919", _clear_tool_uses),
        ):
            edit = _edit(body, kind)
            if edit is not None and applied is not None:
                effective, done = apply(effective, edit)
                if done is not None:
                    applied.append(done)
        iterations: list[dict[str, Any]] | None = None
        compact = _edit(body, "compact_20260112")
        if compact is not None:
            trigger = int((compact.get("trigger") or {"value": DEFAULT_COMPACT_TRIGGER})["value"])
            if _prompt_tokens(effective) > trigger:
                summary = _summary_of(effective)
                spent = self._cache.account(effective)
                iterations = [
                    {**_usage_json(spent, estimate_tokens(summary)), "type": "compaction"},
                ]
                iterations[0].pop("service_tier", None)
                block = Compaction(summary)
                effective = {
                    **effective,
                    "messages": [
                        {"role": "user", "content": [{"type": "text", "text": "(conversation compacted)"}]},
                        {"role": "assistant", "content": [_block_json(block)]},
                    ],
                }
                blocks = (block,) if compact.get("pause_after_compaction") else (block, *reply.blocks)
                stop = "compaction" if compact.get("pause_after_compaction") else reply.stop_reason
                reply = dataclasses.replace(reply, blocks=blocks, stop_reason=stop)
        usage = self._cache.account(effective)
        if self.context_window is not None:
            prompt = (
                usage["input_tokens"]
                + usage["cache_creation_input_tokens"]
                + usage["cache_read_input_tokens"]
            )
            if prompt > self.context_window:
                return ErrorReply(
                    400,
                    "invalid_request_error",
                    f"prompt is too long: {prompt} tokens > {self.context_window} maximum",
                )
            produced = estimate_tokens(
                [_block_json(b) for b in reply.blocks if not isinstance(b, Compaction)]
            )
            if prompt + produced > self.context_window:  # the window fills while the model writes
                kept = tuple(b for b in reply.blocks if not isinstance(b, ToolUse))
                reply = dataclasses.replace(reply, blocks=kept, stop_reason="model_context_window_exceeded")
        return _Outcome(reply, usage, applied, iterations)

    def _handle(self, handler: _Handler) -> None:
        request_id = _next_id("req")
        out = _Exchange(handler, request_id)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        path = handler.path.split("?", 1)[0]
        received = time.monotonic()
        if handler.command == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
            with self._lock:
                self._model_requests.append(RecordedRequest({}, headers, 0, path, received=received))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._models_api(out, path, headers)
                handler.wfile.flush()
            return
        slot = self._record(
            RecordedRequest(body if isinstance(body, dict) else {}, headers, 0, path, received=received)
        )
        try:
            status = self._respond(out, handler.command, path, headers, body, slot)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, e.g. after a timeout
            handler.close_connection = True
            status = 499
        self._update(slot, status=status, answered=time.monotonic())

    def _models_api(self, out: _Exchange, path: str, headers: dict[str, str]) -> None:
        """GET /v1/models/{id} and GET /v1/models (one page), in the SDK's ModelInfo format."""
        if not (headers.get("x-api-key") or headers.get("authorization", "").startswith("Bearer ")):
            out.error(401, "authentication_error", "x-api-key header is required")
            return
        if path == "/v1/models":
            data = [spec.as_json(name) for name, spec in self.models.items()]
            page = {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None}
            out.json(200, {**page, "last_id": data[-1]["id"] if data else None})
            return
        name = urllib.parse.unquote(path.removeprefix("/v1/models/"))
        spec = self.models.get(name)
        if spec is None:
            out.error(404, "not_found_error", f"model: {name}")
            return
        out.json(200, spec.as_json(name))

    def _respond(
        self, out: _Exchange, method: str, path: str, headers: dict[str, str], body: Any, slot: int
    ) -> int:
        if method != "POST" or path != "/v1/messages":
            self._update(slot, status=404)
            out.error(404, "not_found_error", f"{method} {path} is not served by fakeapi")
            return 404
        has_key = headers.get("x-api-key") or headers.get("authorization", "").startswith("Bearer ")
        if not has_key:
            self._update(slot, status=401)
            out.error(401, "authentication_error", "x-api-key header is required")
            return 401
        if not headers.get("anthropic-version"):
            self._update(slot, status=400)
            out.error(400, "invalid_request_error", "anthropic-version: header is required")
            return 400
        betas = frozenset(b.strip() for b in headers.get("anthropic-beta", "").split(",") if b.strip())
        try:
            validate(body, betas, self.models)
        except InvalidRequest as err:
            self._update(slot, status=400)
            out.error(400, "invalid_request_error", str(err))
            return 400
        assert isinstance(body, dict)
        reply = self._next_reply(self.requests[slot])
        while isinstance(reply, Delay):
            if self._closing.wait(reply.seconds):
                out.drop()
                return 0
            reply = reply.reply
        if isinstance(reply, ErrorReply):
            self._update(slot, status=reply.status)
            out.error(reply.status, reply.type, reply.message, dict(reply.headers))
            return reply.status
        message_reply = reply.reply if isinstance(reply, CutStream) else reply
        outcome = self._serve(body, self._with_thinking(body, message_reply))
        if isinstance(outcome, ErrorReply):
            self._update(slot, status=outcome.status)
            out.error(outcome.status, outcome.type, outcome.message)
            return outcome.status
        model, msg_id = body["model"], _next_id("msg")
        content = render_content(outcome.reply.blocks, body)
        payload = _message_json(outcome, content, model, msg_id)
        # The status is recorded before the answer goes out, so a client that has its
        # answer always finds the request complete in `requests`.
        self._update(
            slot,
            status=200,
            usage={**outcome.usage, "output_tokens": payload["usage"]["output_tokens"]},
            iterations=tuple(outcome.iterations or ()),
            applied_edits=tuple(outcome.applied_edits or ()),
        )
        if body.get("stream"):
            cut = reply.after_events if isinstance(reply, CutStream) else None
            error_type = reply.error_type if isinstance(reply, CutStream) else None
            out.sse(_sse_events(payload), cut_after=cut, error_type=error_type)
        elif isinstance(reply, CutStream):
            out.truncated_json(payload)
        else:
            out.json(200, payload)
        return 200
