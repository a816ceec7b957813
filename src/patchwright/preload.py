"""The SDK made ready on a thread begun at launch, before the CLI's own imports.

Importing `anthropic` takes about two seconds of CPU here, making its client another
few tenths (an SSL context), and the first streamed reply as much again (pydantic builds
the message types' deferred schemas and generic classes on first use). All of it is CPU
in one interpreter, so it only overlaps what waits on other processes (git, Docker, the
repo's copy), and it must begin before anything else: this module imports nothing heavy,
and `cli` starts it before importing typer. The first reply's type work is done here on a
canned stream answered in memory (httpx's MockTransport: nothing leaves the process), so
the real first reply finds the types built. Only the stream the run takes is warmed (beta,
unless the run manages no context), and the first request waits for the warm-up rather than
build the same types beside it: two threads on one interpreter, each at half speed.

The cyclic garbage collector is paused from `begin` until the warm-up ends: the import and the
type building make about 270,000 tracked objects that nearly all stay alive, and the
collections they set off took about a sixth of the import's time. Then everything is frozen
(`gc.freeze`) uncollected, so the loop's collections never walk those objects again (a full
collection of them takes 0.13 s); the start's few thousand garbage objects stay with them.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import threading
from collections.abc import Sequence
from typing import Any

COMMANDS = frozenset({"fix"})  # commands whose first work is a model request
WAIT = 120.0  # seconds a caller waits for the client before making its own
WARM_WAIT = 10.0  # seconds the first request waits for the warm-up before building the types itself
CREDENTIALS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


class SdkPreload:
    """`anthropic` imported, one client made (with the environment's credentials) and the
    streaming types warmed, on a daemon thread. Every failure leaves `client` None: the
    caller then makes its own and meets the error the usual way."""

    def __init__(self) -> None:
        self.client: Any = None
        self.beta = True  # the stream the warm-up goes through: the run's own (`expect`)
        self._made = threading.Event()
        self._warmed = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self) -> SdkPreload:
        gc.disable()  # until the warm-up ends (`_load`); see the module's docstring
        self._thread = threading.Thread(target=self._load, name="patchwright-sdk-preload", daemon=True)
        self._thread.start()
        return self

    def expect(self, beta: bool) -> None:
        """Which stream the run's requests take (`client.beta.messages` or `client.messages`),
        told once the settings are read; a warm-up already begun keeps its own."""
        self.beta = beta

    def take_client(self, timeout: float = WAIT, warmed: bool = False) -> Any:
        """The preloaded client (an `anthropic.Anthropic`), or None. `warmed`: once the warm-up
        is over too (for the client of the run's requests)."""
        if self._thread is None:
            return None
        self._made.wait(timeout)
        if warmed and self.client is not None:
            self._warmed.wait(min(timeout, WARM_WAIT))
        return self.client

    @property
    def warmed(self) -> bool:
        return self._warmed.is_set()

    def _load(self) -> None:
        try:
            import anthropic

            if any(os.environ.get(name) for name in CREDENTIALS):
                self.client = anthropic.Anthropic()
        except Exception:  # the caller's own client creation reports it
            self.client = None
        finally:
            self._made.set()
        try:
            with contextlib.suppress(Exception):  # a warm-up: the real stream does the work if this did not
                warm_streaming(beta=self.beta)
        finally:
            gc.freeze()
            gc.enable()
            self._warmed.set()


def begin_for(argv: Sequence[str]) -> SdkPreload:
    """Begun only for a command that talks to the model first (`agent fix`)."""
    preload = SdkPreload()
    if len(argv) > 1 and argv[1] in COMMANDS:
        preload.begin()
    return preload


def canned_events() -> list[dict[str, Any]]:
    """A reply with a thinking, a text and a tool_use block, as the Messages API streams it."""
    message: dict[str, Any] = {
        "id": "msg_preload",
        "type": "message",
        "role": "assistant",
        "model": "preload",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    blocks: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"type": "thinking", "thinking": "", "signature": ""}, {"type": "thinking_delta", "thinking": "."}),
        ({"type": "text", "text": ""}, {"type": "text_delta", "text": "."}),
        (
            {"type": "tool_use", "id": "toolu_preload", "name": "bash", "input": {}},
            {"type": "input_json_delta", "partial_json": '{"command": "true"}'},
        ),
    ]
    events: list[dict[str, Any]] = [{"type": "message_start", "message": message}]
    for index, (start, delta) in enumerate(blocks):
        events += [
            {"type": "content_block_start", "index": index, "content_block": start},
            {"type": "content_block_delta", "index": index, "delta": delta},
        ]
        if start["type"] == "thinking":
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": "s"},
                }
            )
        events.append({"type": "content_block_stop", "index": index})
    events += [
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 2},
        },
        {"type": "message_stop"},
    ]
    return events


def warm_streaming(beta: bool = True) -> None:
    """Stream the canned reply through the SDK's beta (or plain) message stream, in memory."""
    import anthropic
    import httpx2 as httpx  # the SDK's HTTP library (httpx's successor, same API)

    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in canned_events()).encode()

    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    with httpx.Client(transport=httpx.MockTransport(answer), trust_env=False) as http:
        client = anthropic.Anthropic(api_key="preload", base_url="http://preload.invalid", http_client=http)
        request: dict[str, Any] = {
            "model": "preload",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "."}],
        }
        if beta:
            with client.beta.messages.stream(**request, betas=["context-management-2025-06-27"]) as stream:
                stream.get_final_message()
        else:
            with client.messages.stream(**request) as plain:
                plain.get_final_message()
