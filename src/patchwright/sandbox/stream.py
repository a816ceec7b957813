"""Reading a Docker exec's multiplexed stream with bounded memory.

Docker frames a non-TTY exec's output as 8-byte headers (stream id, size) and
payloads. Commands may print gigabytes, so output is kept as head + tail with
the middle counted and dropped, never held whole.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Protocol

from patchwright.sandbox.base import CommandResult

HEADER = struct.Struct(">BxxxL")


class Reader(Protocol):
    """Where a long-lived helper's replies come from: FrameReader (a Docker exec) or RawReader (a pipe)."""

    def read_payload(self, deadline: float | None) -> bytes: ...


class StreamClosed(Exception):
    """The exec's stream ended (the process exited or the container went away)."""


class StreamTimeout(Exception):
    """No frame arrived before the deadline."""


@dataclass
class CappedBuffer:
    """Keeps the first `limit/2` and last `limit/2` bytes of everything fed to it."""

    limit: int
    total: int = 0

    def __post_init__(self) -> None:
        self._head = bytearray()
        self._tail = bytearray()

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        half = self.limit // 2
        room = half - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            if len(self._tail) > 2 * half:  # trim in batches, not on every feed
                del self._tail[: len(self._tail) - half]

    def take(self, data: bytes) -> bool:
        """`feed` as a ContainerExec.stream sink: keeps reading to the end."""
        self.feed(data)
        return True

    @property
    def truncated(self) -> bool:
        return self.total > len(self._head) + min(len(self._tail), self.limit // 2)

    def render(self) -> tuple[str, bool]:
        """Decode to text; a cut middle is replaced by a line saying how much was dropped."""
        half = self.limit // 2
        tail = bytes(self._tail[-half:]) if half else b""
        head = bytes(self._head)
        if not self.truncated:
            return (head + bytes(self._tail)).decode("utf-8", "replace"), False
        dropped = self.total - len(head) - len(tail)
        note = f"\n[... {dropped} bytes of output cut; {self.total} bytes in all ...]\n"
        return head.decode("utf-8", "replace") + note + tail.decode("utf-8", "replace"), True


def recv_some(sock: socket.socket, deadline: float | None) -> bytes:
    """The next bytes the socket has; StreamTimeout past `deadline`, StreamClosed at its end."""
    while True:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StreamTimeout()
            sock.settimeout(min(remaining, 1.0))
        else:
            sock.settimeout(None)
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            continue
        except OSError as err:
            raise StreamClosed(str(err)) from err
        if not chunk:
            raise StreamClosed("end of stream")
        return chunk


class FrameReader:
    """Reads payloads from a hijacked Docker exec socket (stdout and stderr merged)."""

    def __init__(self, sock: socket.socket, early: bytes = b"") -> None:
        self._sock = sock
        self._pending = bytearray(early)  # output read before the socket was handed over

    def _recv_exact(self, size: int, deadline: float | None) -> bytes:
        while len(self._pending) < size:
            self._pending += recv_some(self._sock, deadline)
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    def read_payload(self, deadline: float | None) -> bytes:
        """One frame's payload; raises StreamTimeout or StreamClosed."""
        _, size = HEADER.unpack(self._recv_exact(HEADER.size, deadline))
        return self._recv_exact(size, deadline) if size else b""


def under_timeout(argv: list[str], limit: float) -> list[str]:
    """`argv` killed (with its children) after `limit` seconds, by coreutils' timeout."""
    return ["timeout", "-k", "2", str(max(1, int(limit))), *argv]


class RawReader:
    """Reads a plain byte stream (a local process's pipe) with FrameReader's interface."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def read_payload(self, deadline: float | None) -> bytes:
        return recv_some(self._sock, deadline)


def command_result(
    buffer: CappedBuffer, code: int | None, duration: float, limit: float, timed_out: bool | None = None
) -> CommandResult:
    """A finished command's result. Unless the caller knows (`timed_out`), `timeout`'s exit codes
    count as a timeout only once the limit passed."""
    if timed_out is None:
        timed_out = code in (124, 128 + 9, None) and duration >= limit - 0.5
    text, truncated = buffer.render()
    return CommandResult(
        output=text,
        exit_code=None if timed_out else code,
        timed_out=timed_out,
        truncated=truncated,
        output_bytes=buffer.total,
        duration=duration,
    )
