"""The persistent shell: one long-lived bash driver per sandbox, fed commands over stdin.

A `docker exec` per command costs a process launch in the engine; keeping one
driver open makes a tool round trip a few milliseconds. Each command still runs
in its own process group under `timeout`, so a hung or runaway command is killed
without losing the session. The working directory and exported variables are
saved after every command and restored before the next, which is the state
Anthropic's bash tool promises to keep.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Protocol

from patchwright.sandbox.base import CommandResult
from patchwright.sandbox.stream import CappedBuffer, FrameReader, StreamClosed, StreamTimeout, command_result

MARKER = b"\n__PW_DONE_"
KILL_GRACE = 2  # seconds between TERM and KILL for a command past its timeout

# Runs each command: restore state, save it again on any exit, then source the command.
RUNNER = r"""
__pw_dir=$1; shift
. "$__pw_dir/env" >/dev/null 2>&1
trap '__pw_rc=$?; { export -p; printf "cd -- %q\n" "$PWD"; } > "$__pw_dir/env.new" 2>/dev/null \
  && mv -f "$__pw_dir/env.new" "$__pw_dir/env"; exit $__pw_rc' EXIT
. "${PW_CMD_FILE:-/dev/null}"
"""

# The driver: reads "<nonce> <timeout> <length>\n<command bytes>" records; replies with
# the command's output followed by "\n__PW_DONE_<nonce> <exit code>\n".
DRIVER = r"""
LC_ALL=C  # read -N counts bytes; not exported, so commands keep their locale
d=$1
mkdir -p "$d" && chmod 700 "$d" || exit 90
cd "${2:-/}" 2>/dev/null || cd /
printf '%s' "$PW_RUNNER" > "$d/run"
unset PW_RUNNER
{ export -p; printf 'cd -- %q\n' "$PWD"; } > "$d/env"
printf '__PW_READY_%s %d\n' "$3" "$$"
while IFS=' ' read -r nonce limit size; do
  IFS= read -r -N "$size" cmd
  printf '%s' "$cmd" > "$d/cmd"
  timeout -k __KILL_GRACE__ "$limit" env -i PW_CMD_FILE="$d/cmd" /bin/bash --noprofile --norc "$d/run" "$d" \
    < /dev/null 2>&1
  printf '\n__PW_DONE_%s %d\n' "$nonce" "$?"
done
""".replace("__KILL_GRACE__", str(KILL_GRACE))


class Reader(Protocol):
    def read_payload(self, deadline: float | None) -> bytes: ...


class ShellBroken(Exception):
    """The driver died or stopped answering; the caller starts a new one."""


@dataclass
class ShellSession:
    """One driver process, reached through a socket (a hijacked exec's, or a local pipe's)."""

    sock: socket.socket
    reader: Reader
    driver_pid: int
    carry: bytes = b""
    keepalive: object = None  # what owns `sock` (engine.OpenExec), kept for as long as the session  # output that arrived after the last marker (background processes)

    @staticmethod
    def handshake(
        sock: socket.socket,
        token: str,
        timeout: float = 30.0,
        reader: Reader | None = None,
        keepalive: object = None,
    ) -> ShellSession:
        """Wait for the driver's ready line; anything else means the shell could not start.
        `reader`: how output frames arrive (Docker's multiplexed frames unless told)."""
        reader = reader or FrameReader(sock)
        deadline = time.monotonic() + timeout
        seen = b""
        expected = f"__PW_READY_{token} ".encode()
        while (at := seen.find(expected)) < 0 or b"\n" not in seen[at:]:
            try:
                seen += reader.read_payload(deadline)
            except (StreamTimeout, StreamClosed) as err:
                raise ShellBroken(f"the sandbox shell did not start: {seen[-300:]!r}") from err
        line = seen[at + len(expected) :].split(b"\n", 1)[0]
        return ShellSession(sock=sock, reader=reader, driver_pid=int(line), keepalive=keepalive)

    def run(self, command: str, timeout: float, output_limit: int) -> CommandResult:
        """Send one command and collect its output until the nonce marker."""
        nonce = secrets.token_hex(8)
        # bash's `read -N` drops NUL bytes without counting them, which would stall the driver.
        payload = command.replace("\0", "").encode("utf-8", "surrogateescape")
        header = f"{nonce} {max(1, round(timeout))} {len(payload)}\n".encode()
        started = time.monotonic()
        try:
            self.sock.sendall(header + payload)
        except OSError as err:
            raise ShellBroken(f"cannot write to the sandbox shell: {err}") from err

        marker = MARKER + nonce.encode() + b" "
        buffer = CappedBuffer(output_limit)
        window = self.carry  # unscanned bytes that may hold the start of the marker
        self.carry = b""
        deadline = started + timeout + KILL_GRACE + 10
        while True:
            at = window.find(marker)
            if at >= 0:
                end = window.find(b"\n", at + len(marker))
                if end >= 0:
                    buffer.feed(window[:at])
                    digits = window[at + len(marker) : end]
                    if not digits.isdigit():  # only something forging the marker writes this
                        raise ShellBroken("the sandbox shell's protocol was interfered with")
                    code = int(digits)
                    self.carry = window[end + 1 :]
                    break
            else:
                keep = len(marker) + 12
                if len(window) > keep:
                    buffer.feed(window[:-keep])
                    window = window[-keep:]
            try:
                window += self.reader.read_payload(deadline)
            except StreamTimeout as err:
                raise ShellBroken("the sandbox shell stopped answering") from err
            except StreamClosed as err:
                raise ShellBroken("the sandbox shell exited") from err

        return command_result(buffer, code, time.monotonic() - started, timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
