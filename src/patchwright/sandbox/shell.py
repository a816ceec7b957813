"""The persistent shell, host side: one long-lived driver per sandbox (shelldriver.py), fed
commands over an open channel.

A `docker exec` per command costs a process launch in the engine; keeping one driver open
makes a tool round trip a few milliseconds. The driver runs each command in a fresh bash in
its own process group, restores the working directory and exported variables the command
before left (the state Anthropic's bash tool promises to keep), and answers in length-prefixed
frames that no output of a command can forge (see shelldriver.py for why it holds).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import struct
import time
from dataclasses import dataclass, field

from patchwright.sandbox.base import CommandResult
from patchwright.sandbox.programs import program_argv, program_source
from patchwright.sandbox.shelldriver import KILL_GRACE
from patchwright.sandbox.stream import CappedBuffer, Reader, StreamClosed, StreamTimeout, command_result

DRIVER_SOURCE = program_source("shelldriver.py")
FRAME = struct.Struct(">cL")
MAX_CONTROL_FRAME = 1 << 16  # ready, exit and error frames are short
MAX_OUTPUT_FRAME = 1 << 20  # the driver sends output in pieces of 64 KiB; a longer frame is not its


def driver_argv(workdir: str, python: str = "python3") -> list[str]:
    return program_argv(DRIVER_SOURCE, workdir, python=python)


class ShellBroken(Exception):
    """The driver died, stopped answering or broke its protocol; the caller starts a new one."""


@dataclass
class ShellSession:
    """One driver process, reached through a socket (a hijacked exec's, or a local pipe's)."""

    sock: socket.socket
    reader: Reader
    driver_pid: int = 0
    last_end: float = 0.0  # the sandbox's clock when the last command ended
    keepalive: object = None  # what owns `sock` (engine.OpenExec), kept for as long as the session
    _pending: bytearray = field(default_factory=bytearray)

    def _frame(self, deadline: float) -> tuple[bytes, bytes]:
        """The next (kind, payload); output payloads arrive whole, however long."""
        try:
            while len(self._pending) < FRAME.size:
                self._pending += self.reader.read_payload(deadline)
            kind, size = FRAME.unpack_from(self._pending)
            if kind not in b"ROXE" or size > (MAX_OUTPUT_FRAME if kind == b"O" else MAX_CONTROL_FRAME):
                raise ShellBroken(f"the sandbox shell broke its protocol: {bytes(self._pending[:40])!r}")
            while len(self._pending) < FRAME.size + size:
                self._pending += self.reader.read_payload(deadline)
        except StreamTimeout:
            raise ShellBroken("the sandbox shell stopped answering") from None
        except StreamClosed:
            raise ShellBroken("the sandbox shell exited") from None
        payload = bytes(self._pending[FRAME.size : FRAME.size + size])
        del self._pending[: FRAME.size + size]
        if kind == b"E":
            raise ShellBroken(f"the sandbox shell failed: {payload.decode('utf-8', 'replace')[:300]}")
        return kind, payload

    @staticmethod
    def handshake(
        sock: socket.socket,
        reader: Reader,
        timeout: float = 30.0,
        keepalive: object = None,
    ) -> ShellSession:
        """Wait for the driver's ready frame; anything else means the shell could not start."""
        session = ShellSession(sock=sock, reader=reader, keepalive=keepalive)
        try:
            kind, payload = session._frame(time.monotonic() + timeout)
        except ShellBroken as err:
            raise ShellBroken(
                f"the sandbox shell did not start ({err}); the image needs bash and python3 (3.8 or later)"
            ) from None
        if kind != b"R" or not payload.isdigit():
            raise ShellBroken(f"the sandbox shell did not start: {payload[:100]!r}")
        session.driver_pid = int(payload)
        return session

    def run(self, command: str, timeout: float, output_limit: int) -> CommandResult:
        """Send one command; collect its output frames until its exit frame."""
        # bash would drop NUL bytes itself; they are dropped here so the model sees the same.
        nonce = secrets.token_hex(16)  # the exit frame must echo it (no stale or foreign ending)
        body = json.dumps(
            {"command": command.replace("\0", ""), "timeout": max(1.0, timeout), "nonce": nonce}
        ).encode()
        started = time.monotonic()
        try:
            self.sock.sendall(b"%d\n" % len(body) + body)
        except OSError as err:
            raise ShellBroken(f"cannot write to the sandbox shell: {err}") from err
        buffer = CappedBuffer(output_limit)
        deadline = started + timeout + 2 * KILL_GRACE + 10
        while True:
            kind, payload = self._frame(deadline)
            if kind == b"O":
                buffer.feed(payload)
            elif kind == b"X":
                break
            else:
                raise ShellBroken(f"the sandbox shell broke its protocol (frame {kind!r})")
        try:
            ending = json.loads(payload)
            code, timed_out = ending["code"], bool(ending["timed_out"])
            if ending.get("nonce") != nonce:
                raise ShellBroken("the sandbox shell answered out of step (its nonce did not match)")
            self.last_end = float(ending.get("now") or 0.0)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ShellBroken("the sandbox shell broke its protocol (exit frame)") from None
        return command_result(buffer, code, time.monotonic() - started, timeout, timed_out)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
