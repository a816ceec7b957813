"""The model's reply, put together from the stream's events as the JSON the API sent.

The SDK's stream helper turns every event and block into pydantic objects, and the first reply
in a process builds their schemas: 0.17-0.19 s of CPU here, on top of the SDK's 1.5 s import,
before a run's first tool call can go (and about 1 ms more per reply after that). So the events
come through the SDK as plain JSON (`client.post` with `Stream[object]`: its retries, its
headers, an `error` event raised as its APIStatusError), and only putting them together is ours,
done the way the SDK's `accumulate_event` does it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jiter import from_json

# Blocks whose `input` arrives as `input_json_delta` pieces.
TOOL_INPUT_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
# A beta that streams tool input unbuffered: a cut string is kept rather than dropped.
FINE_GRAINED = "fine-grained-tool-streaming-2025-05-14"


class StreamCut(ConnectionError):
    """The stream ended, or went wrong, before the reply was whole (retried like a cut connection)."""


@dataclass
class Reply:
    """One assistant message: its blocks, why it stopped, what it cost and what the server did
    to the context, each as the API's JSON."""

    content: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    context_management: dict[str, Any] | None = None
    model: str = ""
    id: str = ""

    def text(self) -> str:
        return "".join(str(block.get("text") or "") for block in self.content if block.get("type") == "text")


def assemble(
    events: Iterable[Any], on_text: Callable[[str], None] | None = None, betas: Iterable[str] = ()
) -> Reply:
    """The reply the events make up; `on_text` gets each piece of text as it arrives."""
    partial = "trailing-strings" if FINE_GRAINED in betas else True
    reply: Reply | None = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            reply = Reply(
                content=[dict(block) for block in message.get("content") or []],
                stop_reason=message.get("stop_reason"),
                usage=dict(message.get("usage") or {}),
                context_management=message.get("context_management"),
                model=str(message.get("model") or ""),
                id=str(message.get("id") or ""),
            )
            continue
        if reply is None:
            if kind in ("ping", None):
                continue
            raise StreamCut(f"the stream sent {kind!r} before message_start")
        if kind == "content_block_start":
            block = dict(event.get("content_block") or {})
            reply.content.append(block)
            if block.get("type") == "fallback":  # the model that served the reply after a fallback
                reply.model = str((block.get("to") or {}).get("model") or reply.model)
        elif kind == "content_block_delta":
            index = event.get("index")
            if not isinstance(index, int) or not 0 <= index < len(reply.content):
                raise StreamCut(f"the stream sent a delta for block {index!r}, which it never started")
            _apply_delta(reply.content[index], event.get("delta") or {}, index, json_bufs, partial, on_text)
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            reply.stop_reason = delta.get("stop_reason")
            # counts on message_delta are running totals: they replace, and a count left out keeps
            # the message_start value
            for key, value in (event.get("usage") or {}).items():
                if value is not None:
                    reply.usage[key] = value
            if event.get("context_management") is not None:
                reply.context_management = event["context_management"]
    if reply is None:
        raise StreamCut("the stream ended before message_start")
    return reply


def _apply_delta(
    block: dict[str, Any],
    delta: dict[str, Any],
    index: int,
    json_bufs: dict[int, bytes],
    partial: Any,
    on_text: Callable[[str], None] | None,
) -> None:
    kind, block_type = delta.get("type"), block.get("type")
    if kind == "text_delta" and block_type == "text":
        piece = str(delta.get("text") or "")
        block["text"] = str(block.get("text") or "") + piece
        if on_text is not None and piece:
            on_text(piece)
    elif kind == "input_json_delta" and block_type in TOOL_INPUT_BLOCKS:
        buf = json_bufs.get(index, b"") + str(delta.get("partial_json") or "").encode()
        json_bufs[index] = buf
        if buf:  # parsed as it grows, as the SDK does: a reply cut at max_tokens keeps what came
            try:
                block["input"] = from_json(buf, partial_mode=partial)
            except ValueError as err:
                raise StreamCut(f"the model's tool input is not JSON ({err}): {buf[:200]!r}") from None
    elif kind == "thinking_delta" and block_type == "thinking":
        block["thinking"] = str(block.get("thinking") or "") + str(delta.get("thinking") or "")
    elif kind == "signature_delta" and block_type == "thinking":
        block["signature"] = delta.get("signature")
    elif kind == "citations_delta" and block_type == "text":
        block["citations"] = [*(block.get("citations") or []), delta.get("citation")]
    elif kind == "compaction_delta" and block_type == "compaction":
        block.update({k: v for k, v in delta.items() if k != "type"})


def as_param(block: dict[str, Any]) -> dict[str, Any]:
    """A reply's block as the next request sends it back: unchanged (thinking signatures
    included) but for empty (null) fields, which the request types do not take, and a text
    block's citations. A tool's `input` is the model's own JSON and goes back as it came."""
    sent = {
        key: value if key == "input" else _without_nulls(value)
        for key, value in block.items()
        if value is not None
    }
    if sent.get("type") == "text":
        sent.pop("citations", None)
    return sent


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
