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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "CutStream",
    "Delay",
    "ErrorReply",
    "FakeAnthropic",
    "MessageReply",
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


Block = Text | ToolUse | Thinking


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


def _sign(thinking_text: str) -> str:
    return base64.b64encode(hashlib.sha256(_SIGNATURE_SALT + thinking_text.encode()).digest()).decode()


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
                if block.get("signature") != _sign(str(block.get("thinking", ""))):
                    raise InvalidRequest(f"{bwhere}: Invalid `signature` in `thinking` block")
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


def validate(body: Any) -> None:
    """Check a /v1/messages body the way the real API does; raises InvalidRequest."""
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
        if not breakpoints:
            return {"input_tokens": total, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        with self._lock:
            hit = -1
            for bp in breakpoints:
                for j in range(bp, max(bp - CACHE_LOOKBACK_BLOCKS - 1, -1), -1):
                    if hashes[j] in self._entries:
                        hit = max(hit, j)
                        break
            read = cumulative[hit] if hit >= 0 else 0
            last = breakpoints[-1]
            created = 0
            if last > hit and cumulative[last] >= self.min_cacheable_tokens:
                created = cumulative[last] - read
            for bp in breakpoints:
                if cumulative[bp] >= self.min_cacheable_tokens:
                    self._entries.add(hashes[bp])
        return {
            "input_tokens": total - read - created,
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }


# --------------------------------------------------------------------------- wire format


def _block_json(block: Block) -> dict[str, Any]:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUse):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {"type": "thinking", "thinking": block.thinking, "signature": _sign(block.thinking)}


def _usage_json(usage: dict[str, int], output_tokens: int) -> dict[str, Any]:
    return {
        **usage,
        "output_tokens": output_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage["cache_creation_input_tokens"],
            "ephemeral_1h_input_tokens": 0,
        },
        "service_tier": "standard",
    }


def _chunks(s: str, pieces: int = 4) -> list[str]:
    """Split into a few pieces, as the API streams text and tool input in fragments."""
    if not s:
        return []
    size = max(1, math.ceil(len(s) / pieces))
    return [s[i : i + size] for i in range(0, len(s), size)]


def _message_json(reply: MessageReply, model: str, usage: dict[str, int], msg_id: str) -> dict[str, Any]:
    content = [_block_json(b) for b in reply.blocks]
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": _usage_json(usage, max(1, estimate_tokens(content))),
    }


def _sse_events(
    reply: MessageReply, model: str, usage: dict[str, int], msg_id: str
) -> Iterator[tuple[str, Any]]:
    """The (event name, data) sequence of a streamed reply, as the real API sends it."""
    final = _message_json(reply, model, usage, msg_id)
    start = {
        **final,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage_json(usage, 1),
    }
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(reply.blocks):
        deltas: list[dict[str, Any]]
        if isinstance(block, Text):
            empty: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": part} for part in _chunks(block.text)]
        elif isinstance(block, ToolUse):
            empty = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
            # The API opens with an empty fragment, then sends the JSON in pieces.
            pieces = ["", *_chunks(json.dumps(block.input))]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        else:
            empty = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": part} for part in _chunks(block.thinking)]
            deltas.append({"type": "signature_delta", "signature": _sign(block.thinking)})
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}
        for delta in deltas:
            yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence},
            "usage": {"output_tokens": final["usage"]["output_tokens"]},
        },
    )
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

    def __init__(self, script: Script, *, min_cacheable_tokens: int = 1024) -> None:
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
        slot = self._record(
            RecordedRequest(body if isinstance(body, dict) else {}, headers, 0, path, None, received)
        )
        try:
            status = self._respond(out, handler.command, path, headers, body, slot)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, e.g. after a timeout
            handler.close_connection = True
            status = 499
        self._update(slot, status=status, answered=time.monotonic())

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
        try:
            validate(body)
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
        usage = self._cache.account(body)
        model, msg_id = body["model"], _next_id("msg")
        payload = _message_json(message_reply, model, usage, msg_id)
        # The status is recorded before the answer goes out, so a client that has its
        # answer always finds the request complete in `requests`.
        self._update(slot, status=200, usage={**usage, "output_tokens": payload["usage"]["output_tokens"]})
        if body.get("stream"):
            cut = reply.after_events if isinstance(reply, CutStream) else None
            error_type = reply.error_type if isinstance(reply, CutStream) else None
            out.sse(_sse_events(message_reply, model, usage, msg_id), cut_after=cut, error_type=error_type)
        elif isinstance(reply, CutStream):
            out.truncated_json(payload)
        else:
            out.json(200, payload)
        return 200
