"""The host's end of the file helper (filehelper.py): one request, one reply, over an open channel.

A backend opens the helper once (`HELPER_ARGV` run in its workdir, stdin and stdout on a
socket) and hands the socket here; every later editor or search call costs one round trip.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from patchwright.errors import SandboxError
from patchwright.sandbox.programs import program_argv, program_source
from patchwright.sandbox.stream import Reader, StreamClosed, StreamTimeout

HELPER_SOURCE = program_source("filehelper.py")
MAX_REPLY_BYTES = 64 * 1024 * 1024


def helper_argv(workdir: str, python: str = "python3") -> list[str]:
    return program_argv(HELPER_SOURCE, workdir, python=python)


class ChannelBroken(SandboxError):
    """The helper died or answered nonsense; the next request opens a new one."""


@dataclass
class FileChannel:
    sock: socket.socket
    reader: Reader
    keepalive: object = None  # what owns `sock` (engine.OpenExec), kept for as long as the channel
    _pending: bytearray = field(default_factory=bytearray)
    last_end: float = 0.0  # the sandbox's clock when the last operation ended

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One round trip. The request carries a fresh nonce the reply must echo: a reply that
        does not is not the helper's answer to this request (out of step, or not the helper's)."""
        nonce = secrets.token_hex(16)
        body = json.dumps({**message, "nonce": nonce}).encode("ascii")
        try:
            self.sock.sendall(b"%d\n" % len(body) + body)
        except OSError as err:
            raise ChannelBroken(f"cannot reach the sandbox's file helper: {err}") from None
        deadline = time.monotonic() + timeout
        try:
            while b"\n" not in self._pending:
                self._pending += self.reader.read_payload(deadline)
            header, _, rest = bytes(self._pending).partition(b"\n")
            if not header.isdigit() or int(header) > MAX_REPLY_BYTES:
                raise ChannelBroken(
                    f"the sandbox's file helper answered nonsense: {bytes(self._pending[:200])!r}"
                )
            size = int(header)
            self._pending = bytearray(rest)
            while len(self._pending) < size:
                self._pending += self.reader.read_payload(deadline)
        except StreamTimeout:
            raise ChannelBroken(f"the sandbox's file helper did not answer within {timeout:g} s") from None
        except StreamClosed:
            output = bytes(self._pending[-300:]).decode("utf-8", "replace")
            raise ChannelBroken(
                f"the sandbox's file helper exited: {output.strip() or 'no output'}"
            ) from None
        reply = bytes(self._pending[:size])
        del self._pending[:size]
        try:
            parsed = json.loads(reply)
        except ValueError:
            raise ChannelBroken("the sandbox's file helper answered nonsense") from None
        if not isinstance(parsed, dict) or parsed.pop("nonce", None) != nonce:
            raise ChannelBroken("the sandbox's file helper answered out of step (its nonce did not match)")
        now = parsed.pop("now", None)
        if isinstance(now, int | float):
            self.last_end = max(self.last_end, float(now))
        return parsed

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass
class FileHelper:
    """A backend's file helper, opened on first use and again after it died. A backend may
    `attach` one it opened itself (Docker's: only ever when no process of the sandbox user runs)."""

    open_channel: Callable[[], FileChannel]
    _channel: FileChannel | None = None
    last_end: float = 0.0  # the sandbox's clock when the last operation ended, over every channel

    def attach(self, channel: FileChannel) -> None:
        self.close()
        self._channel = channel

    @property
    def channel(self) -> FileChannel | None:
        return self._channel

    def request(self, message: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """One round trip; a helper that died since its last reply (the model's `pkill`, a
        restarted shell) is opened again once."""
        if self._channel is not None:
            try:
                return self._answered(self._channel, message, timeout)
            except ChannelBroken:
                self.close()
        self._channel = self.open_channel()
        try:
            return self._answered(self._channel, message, timeout)
        except ChannelBroken:
            self.close()
            raise

    def _answered(self, channel: FileChannel, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        reply = channel.request(message, timeout)
        self.last_end = max(self.last_end, channel.last_end)
        return reply

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
